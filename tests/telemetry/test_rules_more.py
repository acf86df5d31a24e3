"""Rules added for DOMAIN.md §10.1/§10.2: GAS_H2S, SIGNAL_WEAK, TEMP_HIGH state, first power-on,
GAUGE_FAULT and per-gauge GAUGE_OFFLINE (the engine alone, no database)."""

from __future__ import annotations

import datetime as dt

from geoapi.telemetry.engine import Clear, Escalate, RulesEngine
from geoapi.telemetry.model import Reading
from geoapi.telemetry.rules import load_thresholds

from .test_rules import T0, codes, cover, feed, gauge, reading


def engine() -> RulesEngine:
    return RulesEngine(load_thresholds())


def flagged(seconds: float, flags: dict[str, bool], **values) -> Reading:
    r = reading(seconds, **values)
    r.flags = flags
    return r


def test_h2s_warns_at_10_ppm_and_escalates_at_20():
    e, d = engine(), cover()
    [raised] = feed(e, d, [reading(0, h2s_ppm=12)])
    assert (raised.code, raised.level) == ("GAS_H2S", "预警")
    [esc] = feed(e, d, [reading(10, h2s_ppm=24)])
    assert isinstance(esc, Escalate) and (esc.code, esc.level) == ("GAS_H2S", "报警")
    assert e.asset_state(d)["alarm_state"] == "报警"
    assert feed(e, d, [reading(20, h2s_ppm=30)]) == []  # already 报警: no second escalation


def test_h2s_at_20_ppm_raises_an_alarm_at_once():
    e, d = engine(), cover()
    [raised] = feed(e, d, [reading(0, h2s_ppm=20)])
    assert (raised.code, raised.level) == ("GAS_H2S", "报警")


def test_h2s_clears_only_under_5_ppm():
    e, d = engine(), cover()
    feed(e, d, [reading(0, h2s_ppm=15)])
    assert feed(e, d, [reading(10, h2s_ppm=7)]) == []  # under 10 but not under 5: hysteresis
    assert codes(feed(e, d, [reading(20, h2s_ppm=4)]), Clear) == ["GAS_H2S"]


def test_signal_weak_needs_three_reports_running():
    e, d = engine(), cover()
    assert feed(e, d, [reading(0, rsrp_dbm=-120), reading(60, rsrp_dbm=-118)]) == []
    assert feed(e, d, [reading(120, rsrp_dbm=-100)]) == []  # a good report starts the count over
    assert feed(e, d, [reading(180, rsrp_dbm=-117), reading(240, rsrp_dbm=-119)]) == []
    assert codes(feed(e, d, [reading(300, rsrp_dbm=-121)])) == ["SIGNAL_WEAK"]
    assert e.asset_state(d)["alarm_state"] == "正常"  # 提示 is not an alarm state
    assert feed(e, d, [reading(360, rsrp_dbm=-112)]) == []  # under −110: hysteresis
    assert codes(feed(e, d, [reading(420, rsrp_dbm=-108)]), Clear) == ["SIGNAL_WEAK"]


def test_signal_weak_by_csq():
    e, d = engine(), cover()
    actions = feed(e, d, [reading(i * 60, csq=8) for i in range(3)])
    assert codes(actions) == ["SIGNAL_WEAK"]
    assert codes(feed(e, d, [reading(300, csq=15)]), Clear) == ["SIGNAL_WEAK"]


def test_temperature_state_high_raises_temp_high():
    e, d = engine(), cover()
    assert codes(feed(e, d, [flagged(0, {"temp_high": True})])) == ["TEMP_HIGH"]
    assert codes(feed(e, d, [flagged(60, {"temp_high": False}, temp_c=30)]), Clear) == ["TEMP_HIGH"]
    assert codes(feed(engine(), cover(), [reading(0, temp_c=61)])) == ["TEMP_HIGH"]


def test_first_power_on_raises_nothing():
    e, d = engine(), cover()
    actions = feed(e, d, [flagged(0, {"first_power_on": True}, tilt_deg=0.4, cover_state="正常", battery_pct=100)])
    assert actions == []
    assert e.asset_state(d) == {"status": "正常", "alarm_state": "正常", "online_state": "在线"}


def test_negative_depth_is_a_gauge_fault_not_a_dry_road():
    e, g = engine(), gauge()
    feed(e, g, [reading(0, depth_cm=20)])
    actions = feed(e, g, [reading(60, depth_cm=-8)])
    assert codes(actions) == ["GAUGE_FAULT"]
    assert codes(actions, Clear) == []  # the faulty reading does not clear the ponding alarms
    assert feed(e, g, [reading(120, depth_cm=-0.5)]) == []  # within the noise band: not a fault
    assert codes(feed(e, g, [reading(120 + 1800, depth_cm=21)]), Clear) == ["GAUGE_FAULT"]


def test_flat_line_while_wet_is_a_gauge_fault():
    e, g = engine(), gauge()
    wet = feed(e, g, [reading(i * 300, depth_cm=8.0) for i in range(11)])
    assert "GAUGE_FAULT" not in codes(wet)
    assert codes(feed(e, g, [reading(11 * 300, depth_cm=8.0)])) == ["GAUGE_FAULT"]


def test_a_dry_road_reading_zero_is_not_flat_lined():
    e, g = engine(), gauge()
    assert feed(e, g, [reading(i * 300, depth_cm=0.0) for i in range(30)]) == []


def test_gauge_offline_follows_the_gauges_own_interval():
    e, fast, default = engine(), gauge(heartbeat_s=60), gauge()
    default.fid = 3
    feed(e, fast, [reading(0, depth_cm=0)])
    feed(e, default, [reading(0, depth_cm=0)])
    assert codes(e.tick([fast, default], T0 + dt.timedelta(seconds=179))) == []
    assert codes(e.tick([fast, default], T0 + dt.timedelta(seconds=181))) == ["GAUGE_OFFLINE"]
    assert codes(e.tick([fast, default], T0 + dt.timedelta(seconds=901))) == ["GAUGE_OFFLINE"]  # 3 × 300 s


def test_simulator_keeps_the_rate_and_resets_what_it_opened():
    from geoapi.telemetry.simulate import Fleet, drive

    batches: list[list[dict]] = []
    stats = drive(Fleet.create(5), batches.append, rate=100, seconds=1, open_share=0.3, reset_after_s=0.2)
    msgs = [m for b in batches for m in b]
    assert stats.sent == len(msgs) and 90 <= stats.sent <= 115
    assert stats.opened > 0 and stats.reset > 0
    assert sum(m.get("cover_state") == "复位" for m in msgs) == stats.reset
