"""Alarm rules of DOMAIN.md §10.1 (smart covers) and §10.2 (积水点 gauges), as data.

A rule raises when its condition holds for ``debounce`` seconds (device time between samples,
or wall time on the periodic tick) or for ``samples`` consecutive samples; ``immediate`` raises
at once. It clears when ``clear`` holds for ``clear_hold`` seconds, at once on ``clear_now``,
after ``expires`` seconds, or only by a dispatcher when ``manual``. Raise and clear thresholds
differ (hysteresis). Conditions return None when the message carries no relevant reading.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULTS_FILE = Path(__file__).with_name("thresholds.toml")
LEVEL_ORDER = {"信息": 0, "提示": 1, "预警": 2, "报警": 3, "紧急": 4}

# Device fields that override a layer default (DOMAIN.md §9.2, §9.8).
DEVICE_OVERRIDES = {
    "smart_covers": {"tilt_threshold_deg": "tilt_warn_deg", "baseline_tilt_deg": "baseline_deg",
                     "heartbeat_s": "heartbeat_s"},
    "waterlogging_points": {"warn_depth_cm": "warn_depth_cm", "close_depth_cm": "close_depth_cm",
                            "heartbeat_s": "heartbeat_s"},
}


@dataclass
class Ctx:
    """What a condition sees: this message's readings, the device's thresholds, derived values."""

    values: dict[str, Any]
    flags: dict[str, bool]
    th: dict[str, float]
    spikes: int = 0                 # tilt spikes in the loose window (engine-maintained)
    rise_cm: float | None = None    # depth rise over the rise window (engine-maintained)
    flat: int = 0                   # identical wet depth readings running (engine-maintained)

    def tilt(self) -> float | None:
        t = self.values.get("tilt_deg")
        return None if t is None else abs(t - self.th.get("baseline_deg", 0.0))

    def raw_depth(self) -> float | None:
        d = self.values.get("depth_cm")
        if d is None and self.values.get("water_level_m") is not None:
            d = self.values["water_level_m"] * 100  # a gauge's level above its zero = the depth
        return d

    def depth(self) -> float | None:
        """The depth to judge ponding by; a negative reading is a gauge fault, not a measurement."""
        d = self.raw_depth()
        return None if d is None or d < self.th.get("fault_negative_cm", -1) else d


Cond = Callable[[Ctx], "bool | None"]


@dataclass(frozen=True)
class Rule:
    code: str
    name: str
    level: str
    layer: str
    when: Cond
    clear: Cond | None = None
    immediate: Cond | None = None
    clear_now: Cond | None = None
    debounce: str | None = None      # threshold key (seconds)
    samples: str | int | None = None  # threshold key or count
    clear_hold: str | None = None    # threshold key (seconds)
    expires: str | None = None       # threshold key (seconds)
    manual: bool = False             # only a dispatcher closes it (the clear condition is logged)
    suppressible: bool = False       # 撤防 suppresses it (cover alarms, DOMAIN.md §10.1)
    counts_spikes: bool = False      # a pending raise that falls back is a tilt spike
    escalate: Cond | None = None     # raise at, or escalate an active alarm to, escalate_level
    escalate_level: str | None = None

    def level_for(self, ctx: Ctx) -> str:
        if self.escalate is not None and self.escalate(ctx) is True:
            return self.escalate_level or self.level
        return self.level

    def seconds(self, key: str | None, th: dict[str, float]) -> float:
        return float(th.get(key, 0)) if key else 0.0

    def sample_count(self, th: dict[str, float]) -> int:
        if self.samples is None:
            return 0
        return int(self.samples if isinstance(self.samples, int) else th.get(self.samples, 0))


def _ge(x: float | None, limit: float) -> bool | None:
    return None if x is None else x >= limit


def _lt(x: float | None, limit: float) -> bool | None:
    return None if x is None else x < limit


def _any(*xs: bool | None) -> bool | None:
    if any(x is True for x in xs):
        return True
    return None if all(x is None for x in xs) else False


def _all(*xs: bool | None) -> bool | None:
    known = [x for x in xs if x is not None]
    return None if not known else all(known)


def _state(c: Ctx, name: str, *states: str) -> bool | None:
    v = c.values.get(name)
    return None if v is None else v in states


def _flag(name: str) -> Cond:
    return lambda c: c.flags.get(name)


def _band(x: float | None, lo: float, hi: float) -> bool | None:
    return None if x is None else lo <= x < hi


def _water_gap(c: Ctx) -> float | None:
    return c.values.get("water_level_m")


SMART_COVER_RULES = (
    Rule("COVER_TILT_WARN", "井盖倾斜预警", "预警", "smart_covers",
         when=lambda c: _all(_band(c.tilt(), c.th["tilt_warn_deg"], c.th["tilt_open_deg"]),
                             None if c.values.get("cover_state") is None else c.values["cover_state"] != "打开"),
         clear=lambda c: _lt(c.tilt(), c.th["tilt_warn_clear_deg"]),
         debounce="tilt_warn_debounce_s", samples="tilt_warn_samples", clear_hold="tilt_warn_clear_s",
         suppressible=True, counts_spikes=True),
    Rule("COVER_OPEN", "井盖开启/翻转", "报警", "smart_covers",
         when=lambda c: _any(_ge(c.tilt(), c.th["tilt_open_deg"]), _state(c, "cover_state", "打开")),
         immediate=lambda c: _any(_ge(c.tilt(), c.th["tilt_unconditional_deg"]), _state(c, "cover_state", "打开")),
         clear=lambda c: _all(_lt(c.tilt(), c.th["tilt_open_clear_deg"]),
                              None if c.values.get("cover_state") is None else c.values["cover_state"] != "打开"),
         clear_now=lambda c: _state(c, "cover_state", "复位") is True and _lt(c.tilt(), c.th["tilt_open_clear_deg"]) is not False,
         debounce="tilt_open_debounce_s", clear_hold="tilt_open_clear_s", suppressible=True, counts_spikes=True),
    Rule("COVER_LOOSE", "井盖松动", "预警", "smart_covers",
         when=lambda c: _any(_state(c, "cover_state", "松动"), c.spikes >= c.th["loose_spikes"] or None),
         immediate=lambda c: True, manual=True, suppressible=True),
    Rule("COVER_DISPLACED", "井盖位移", "报警", "smart_covers", when=_flag("displaced"),
         immediate=lambda c: True, manual=True, suppressible=True),
    Rule("COVER_VIBRATION", "强震动", "预警", "smart_covers", when=_flag("vibration"),
         immediate=lambda c: True, expires="vibration_clear_s", suppressible=True),
    Rule("COVER_TAMPER", "终端拆卸/防拆", "报警", "smart_covers", when=_flag("tamper"),
         immediate=lambda c: True, manual=True, suppressible=True),
    Rule("SMOKE", "烟感", "紧急", "smart_covers", when=_flag("smoke"), immediate=lambda c: True, manual=True),
    Rule("WELL_WATER_HIGH", "井下水位高", "预警", "smart_covers",
         when=lambda c: _any(_band(_water_gap(c), c.th["water_full_gap_m"] + 1e-9, c.th["water_high_gap_m"] + 1e-9),
                             _state(c, "water_state", "中水位")),
         clear=lambda c: _any(_ge(_water_gap(c), c.th["water_clear_gap_m"]), _state(c, "water_state", "正常", "低水位")),
         immediate=lambda c: True, clear_hold="water_clear_s"),
    Rule("WELL_WATER_FULL", "井下满溢", "报警", "smart_covers",
         when=lambda c: _any(_lt(_water_gap(c), c.th["water_full_gap_m"] + 1e-9), _state(c, "water_state", "水满")),
         clear=lambda c: _any(_ge(_water_gap(c), c.th["water_high_gap_m"]),
                              _state(c, "water_state", "正常", "低水位", "中水位")),
         immediate=lambda c: True),
    Rule("GAS_LEL_1", "可燃气体一级", "报警", "smart_covers",
         when=lambda c: _band(c.values.get("gas_lel_pct"), c.th["gas_lel_1"], c.th["gas_lel_2"]),
         clear=lambda c: _lt(c.values.get("gas_lel_pct"), c.th["gas_lel_1_clear"]), immediate=lambda c: True),
    Rule("GAS_LEL_2", "可燃气体二级", "紧急", "smart_covers",
         when=lambda c: _ge(c.values.get("gas_lel_pct"), c.th["gas_lel_2"]),
         clear=lambda c: _lt(c.values.get("gas_lel_pct"), c.th["gas_lel_2_clear"]), immediate=lambda c: True),
    # One code, two levels (§10.1): 预警 from 10 ppm, 报警 from 20 ppm; an active warning escalates.
    Rule("GAS_H2S", "硫化氢", "预警", "smart_covers",
         when=lambda c: _ge(c.values.get("h2s_ppm"), c.th["h2s_warn_ppm"]),
         clear=lambda c: _lt(c.values.get("h2s_ppm"), c.th["h2s_clear_ppm"]), immediate=lambda c: True,
         escalate=lambda c: _ge(c.values.get("h2s_ppm"), c.th["h2s_alarm_ppm"]), escalate_level="报警"),
    Rule("TEMP_HIGH", "高温", "预警", "smart_covers",
         when=lambda c: _any(_ge(c.values.get("temp_c"), c.th["temp_high_c"]), c.flags.get("temp_high")),
         clear=lambda c: _all(_lt(c.values.get("temp_c"), c.th["temp_high_clear_c"]),
                              None if c.flags.get("temp_high") is None else not c.flags["temp_high"]),
         immediate=lambda c: True),
    Rule("BATTERY_LOW", "低电量", "预警", "smart_covers",
         when=lambda c: _band(c.values.get("battery_pct"), c.th["battery_critical_pct"] + 1e-9,
                              c.th["battery_low_pct"] + 1e-9),
         clear=lambda c: None if c.values.get("battery_pct") is None else c.values["battery_pct"] > c.th["battery_low_clear_pct"],
         immediate=lambda c: True),
    Rule("BATTERY_CRITICAL", "超低电量", "报警", "smart_covers",
         when=lambda c: None if c.values.get("battery_pct") is None else c.values["battery_pct"] <= c.th["battery_critical_pct"],
         clear=lambda c: None if c.values.get("battery_pct") is None else c.values["battery_pct"] > c.th["battery_critical_clear_pct"],
         immediate=lambda c: True),
    Rule("SIGNAL_WEAK", "信号弱", "提示", "smart_covers",
         when=lambda c: _any(_lt(c.values.get("rsrp_dbm"), c.th["rsrp_weak_dbm"]), _lt(c.values.get("csq"), c.th["csq_weak"])),
         clear=lambda c: _all(_ge(c.values.get("rsrp_dbm"), c.th["rsrp_weak_clear_dbm"]),
                              _ge(c.values.get("csq"), c.th["csq_weak_clear"])),
         samples="signal_weak_samples"),
)

PONDING_RULES = (
    Rule("PONDING_START", "开始积水", "提示", "waterlogging_points",
         when=lambda c: _ge(c.depth(), c.th["ponding_start_cm"]),
         clear=lambda c: _lt(c.depth(), c.th["ponding_start_clear_cm"]),
         debounce="ponding_debounce_s", clear_hold="ponding_clear_s"),
    Rule("PONDING_WARN", "积水预警", "预警", "waterlogging_points",
         when=lambda c: _ge(c.depth(), c.th["warn_depth_cm"]), clear=lambda c: _lt(c.depth(), c.th["warn_clear_cm"]),
         debounce="ponding_debounce_s", clear_hold="ponding_clear_s"),
    Rule("PONDING_CLOSE", "积水封闭", "报警", "waterlogging_points",
         when=lambda c: _ge(c.depth(), c.th["close_depth_cm"]), clear=lambda c: _lt(c.depth(), c.th["close_clear_cm"]),
         debounce="ponding_debounce_s", clear_hold="ponding_clear_s", manual=True),
    Rule("PONDING_SEVERE", "严重积水", "紧急", "waterlogging_points",
         when=lambda c: _ge(c.depth(), c.th["close_depth_cm"]), immediate=lambda c: _ge(c.depth(), c.th["severe_depth_cm"]),
         clear=lambda c: _lt(c.depth(), c.th["close_depth_cm"]), debounce="severe_hold_s"),
    Rule("PONDING_RISE_FAST", "水位快速上涨", "预警", "waterlogging_points",
         when=lambda c: _ge(c.rise_cm, c.th["rise_cm"]), clear=lambda c: _lt(c.rise_cm, c.th["rise_clear_cm"]),
         immediate=lambda c: True),
    Rule("PONDING_LONG", "长时间积水", "预警", "waterlogging_points",
         when=lambda c: _ge(c.depth(), c.th["warn_depth_cm"]), clear=lambda c: _lt(c.depth(), c.th["warn_depth_cm"]),
         debounce="long_hold_s"),
    # §10.2: a negative or flat-lined reading means the gauge, not the road, needs attention.
    Rule("GAUGE_FAULT", "设备故障", "预警", "waterlogging_points",
         when=lambda c: _any(_lt(c.raw_depth(), c.th["fault_negative_cm"]), c.flat >= c.th["flat_samples"] or None),
         clear=lambda c: None if c.raw_depth() is None else
         (c.raw_depth() >= c.th["fault_negative_cm"] and c.flat < c.th["flat_samples"]),
         immediate=lambda c: True, clear_hold="fault_clear_s"),
)

RULES: dict[str, tuple[Rule, ...]] = {"smart_covers": SMART_COVER_RULES, "waterlogging_points": PONDING_RULES}
# Raised by the periodic check, not by a message.
OFFLINE = {"smart_covers": ("DEVICE_OFFLINE", "设备离线", "预警"),
           "waterlogging_points": ("GAUGE_OFFLINE", "设备离线", "预警")}
MISSING = ("COVER_MISSING_INFERRED", "疑似井盖缺失", "紧急")
ALARM_NAMES = {r.code: r.name for rules in RULES.values() for r in rules} | {
    OFFLINE["smart_covers"][0]: "设备离线", OFFLINE["waterlogging_points"][0]: "设备离线", MISSING[0]: MISSING[1]}
SUPPRESSIBLE = {r.code for r in SMART_COVER_RULES if r.suppressible} | {MISSING[0]}


def load_thresholds(site_file: Path | None = None) -> dict[str, dict[str, float]]:
    """Per-layer defaults from thresholds.toml, overlaid by a site file with the same tables."""
    with DEFAULTS_FILE.open("rb") as fh:
        th: dict[str, dict[str, float]] = tomllib.load(fh)
    if site_file is not None:
        with Path(site_file).open("rb") as fh:
            site = tomllib.load(fh)
        for layer, values in site.items():
            if layer not in th or not isinstance(values, dict):
                raise ValueError(f"{site_file}: unknown threshold table [{layer}]; known: {', '.join(th)}")
            unknown = set(values) - set(th[layer])
            if unknown:
                raise ValueError(f"{site_file}: unknown thresholds in [{layer}]: {', '.join(sorted(unknown))}")
            th[layer].update(values)
    return th


def device_thresholds(layer_th: dict[str, float], layer_id: str, props: dict[str, Any]) -> dict[str, float]:
    """The layer defaults with the device's own fields (tilt_threshold_deg, warn_depth_cm …) on top."""
    th = dict(layer_th)
    th.setdefault("heartbeat_s", th.get("default_heartbeat_s", 86400))
    for field, key in DEVICE_OVERRIDES.get(layer_id, {}).items():
        if props.get(field) is not None:
            th[key] = float(props[field])
    return th
