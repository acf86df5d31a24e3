"""The rules engine alone: debounce, hysteresis, flapping, suppression, ponding (no database)."""

from __future__ import annotations

import datetime as dt

from geoapi.telemetry.devices import Device
from geoapi.telemetry.engine import Clear, Raise, RulesEngine
from geoapi.telemetry.model import Reading
from geoapi.telemetry.rules import load_thresholds

T0 = dt.datetime(2025, 7, 1, 8, 0, tzinfo=dt.UTC)


def cover(**props) -> Device:
    return Device("smart_covers", 1, ("IMEI1",), {"heartbeat_s": 60, "fortify_state": "设防", **props})


def gauge(**props) -> Device:
    return Device("waterlogging_points", 2, ("G1",), {"warn_depth_cm": 15, "close_depth_cm": 25, **props})


def reading(seconds: float, **values) -> Reading:
    at = T0 + dt.timedelta(seconds=seconds)
    return Reading(device_key="IMEI1", alt_keys=(), ts=at, source="test", msg_id=f"m{seconds}",
                   values=values, received_at=at)


def feed(engine: RulesEngine, device: Device, readings) -> list:
    out = []
    for r in readings:
        actions, _ = engine.evaluate(device, r)
        out += actions
    return out


def codes(actions, kind=Raise) -> list[str]:
    return [a.code for a in actions if isinstance(a, kind)]


def test_a_passing_truck_raises_nothing():
    e, d = RulesEngine(load_thresholds()), cover()
    actions = feed(e, d, [reading(0, tilt_deg=35), reading(0.8, tilt_deg=1)])
    assert codes(actions) == []


def test_a_tilt_held_past_the_debounce_opens():
    e, d = RulesEngine(load_thresholds()), cover()
    actions = feed(e, d, [reading(0, tilt_deg=45), reading(1, tilt_deg=46), reading(2.5, tilt_deg=46)])
    assert codes(actions) == ["COVER_OPEN"]


def test_the_clock_raises_a_pending_open_when_no_further_message_comes():
    e, d = RulesEngine(load_thresholds()), cover()
    assert codes(feed(e, d, [reading(0, tilt_deg=45)])) == []
    assert codes(e.tick([d], T0 + dt.timedelta(seconds=1))) == []
    assert codes(e.tick([d], T0 + dt.timedelta(seconds=2.1))) == ["COVER_OPEN"]


def test_open_state_or_upside_down_raises_at_once():
    e = RulesEngine(load_thresholds())
    assert codes(feed(e, cover(), [reading(0, cover_state="打开")])) == ["COVER_OPEN"]
    e2 = RulesEngine(load_thresholds())
    assert codes(feed(e2, cover(), [reading(0, tilt_deg=120)])) == ["COVER_OPEN"]


def test_flapping_tilt_raises_one_loose_alarm_and_no_open():
    e, d = RulesEngine(load_thresholds()), cover()
    flaps = [reading(i * 0.5, tilt_deg=35 if i % 2 == 0 else 1) for i in range(40)]
    actions = feed(e, d, flaps)
    assert codes(actions) == ["COVER_LOOSE"]


def test_open_clears_on_reset_and_a_low_tilt_needs_a_hold():
    e, d = RulesEngine(load_thresholds()), cover()
    feed(e, d, [reading(0, cover_state="打开")])
    assert codes(feed(e, d, [reading(5, tilt_deg=2)]), Clear) == []  # below 10° but not yet held 10 s
    assert codes(feed(e, d, [reading(16, tilt_deg=2)]), Clear) == ["COVER_OPEN"]
    feed(e, d, [reading(20, cover_state="打开")])
    assert codes(feed(e, d, [reading(21, cover_state="复位", tilt_deg=0.5)]), Clear) == ["COVER_OPEN"]


def test_tilt_warning_has_hysteresis():
    e, d = RulesEngine(load_thresholds()), cover()
    assert codes(feed(e, d, [reading(0, tilt_deg=18), reading(1, tilt_deg=19)])) == ["COVER_TILT_WARN"]
    # 12° is under the 15° raise line but above the 10° clear line: stays raised
    assert feed(e, d, [reading(100, tilt_deg=12), reading(200, tilt_deg=12)]) == []


def test_device_threshold_overrides_the_layer_default():
    e, d = RulesEngine(load_thresholds()), cover(tilt_threshold_deg=25)
    assert codes(feed(e, d, [reading(0, tilt_deg=20), reading(3, tilt_deg=20)])) == []


def test_disarmed_cover_raises_no_cover_alarm_but_still_battery():
    e, d = RulesEngine(load_thresholds()), cover(fortify_state="撤防")
    actions = feed(e, d, [reading(0, cover_state="打开", battery_pct=8)])
    assert codes(actions) == ["BATTERY_CRITICAL"]


def test_out_of_order_reading_is_not_evaluated():
    e, d = RulesEngine(load_thresholds()), cover()
    feed(e, d, [reading(10, tilt_deg=1)])
    actions, late = e.evaluate(d, reading(5, cover_state="打开"))
    assert late and actions == []


def test_ponding_levels_follow_the_points_own_depths():
    e, g = RulesEngine(load_thresholds()), gauge(warn_depth_cm=20)
    assert codes(feed(e, g, [reading(0, depth_cm=16)])) == ["PONDING_START"]  # 16 < 20: no warning here
    assert sorted(codes(feed(e, g, [reading(60, depth_cm=26)]))) == ["PONDING_CLOSE", "PONDING_RISE_FAST",
                                                                     "PONDING_WARN"]
    assert e.asset_state(g) == {"status": "封闭"}


def test_silence_raises_offline_and_a_message_clears_it():
    e, d = RulesEngine(load_thresholds()), cover()
    feed(e, d, [reading(0, battery_pct=80)])
    assert codes(e.tick([d], T0 + dt.timedelta(seconds=149))) == []
    assert codes(e.tick([d], T0 + dt.timedelta(seconds=151))) == ["DEVICE_OFFLINE"]
    assert e.asset_state(d)["status"] == "离线"
    assert codes(feed(e, d, [reading(200, battery_pct=80)]), Clear) == ["DEVICE_OFFLINE"]
