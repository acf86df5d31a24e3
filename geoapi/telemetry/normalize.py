"""Vendor field names and codes → the canonical readings of model.READING_FIELDS.

Sources (DOMAIN.md §3.2): cover state 0 正常 / 1 打开 / 2 松动 / 3 复位; water state 0 正常 /
1 水满 / 2 中水位 / 3 低水位; some devices send RSRP as a positive magnitude (114 = −114 dBm);
battery % from a 3.6 V Li-SOCl₂ cell's voltage when the device sends no percentage ⚠️.
"""

from __future__ import annotations

import math
from typing import Any

from geoapi.errors import BadRequestError
from geoapi.telemetry.model import COVER_STATES, FLAG_FIELDS, READING_FIELDS, WATER_STATES


class PayloadError(BadRequestError):
    """A device message we cannot read; the reason names the field."""

    code = "invalid_payload"


# lower-case vendor name → canonical name (public vendor code, CTWing/OneNET thing models)
ALIASES: dict[str, str] = {
    **{n: n for n in READING_FIELDS + FLAG_FIELDS},
    "tilt": "tilt_deg", "angle": "tilt_deg", "levelangle": "tilt_deg", "dip_angle": "tilt_deg",
    "dipangle": "tilt_deg", "incline": "tilt_deg", "realdata": "tilt_deg",
    "cover_status": "cover_state", "coverstate": "cover_state", "manhole_state": "cover_state",
    "lid_state": "cover_state",
    "water_level": "water_level_m", "liquid_level": "water_level_m", "liquidlevel": "water_level_m",
    "water_status": "water_state", "waterstate": "water_state", "water_level_state": "water_state",
    "depth": "depth_cm", "water_depth_cm": "depth_cm", "ponding_depth_cm": "depth_cm",
    "gas_lel": "gas_lel_pct", "methane_lel": "gas_lel_pct", "ch4_lel": "gas_lel_pct", "lel": "gas_lel_pct",
    "h2s": "h2s_ppm", "h2s_concentration": "h2s_ppm", "h2sconcentration": "h2s_ppm", "hydrogen_sulfide": "h2s_ppm",
    "hydrogen_sulphide": "h2s_ppm",
    "battery_level": "battery_pct", "battery": "battery_pct", "batterylevel": "battery_pct",
    "battery_voltage": "voltage_v", "voltage": "voltage_v",
    "rsrp": "rsrp_dbm", "signal_intensity": "csq", "signalintensity": "csq",
    "temperature": "temp_c", "temp": "temp_c",
    "vibrationalarm": "vibration", "vibration_alarm": "vibration",
    "displacement": "displaced", "displacement_alarm": "displaced",
    "tamper_alarm": "tamper", "dismantle": "tamper", "smoke_alarm": "smoke",
}
STATUS_CODE_KEYS = ("status_code", "report_type", "reporttype")
# 温度状态 0 正常 / 1 低温 / 2 高温 (DOMAIN.md §3.2): only 高温 matters (TEMP_HIGH), kept as a flag.
TEMP_STATE_KEYS = ("temp_state", "temperature_state", "temperaturestate", "tempstate")

_RANGES: dict[str, tuple[float, float]] = {
    "tilt_deg": (-180, 180), "water_level_m": (0, 50), "depth_cm": (-50, 1000), "gas_lel_pct": (0, 100),
    "h2s_ppm": (0, 10000), "battery_pct": (0, 100), "voltage_v": (0, 60), "rsrp_dbm": (-160, 160),
    "snr": (-50, 60), "csq": (0, 99), "temp_c": (-60, 150),
}
_CODES = {"cover_state": dict(enumerate(COVER_STATES)),
          "water_state": {0: "正常", 1: "水满", 2: "中水位", 3: "低水位"}}
_VOCAB = {"cover_state": COVER_STATES, "water_state": WATER_STATES}


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise PayloadError(f"{name} must be a number, not {type(value).__name__}",
                           [{"field": name, "message": "not a number"}])
    try:
        x = float(value)
    except ValueError:
        raise PayloadError(f"{name} must be a number, not {value!r}",
                           [{"field": name, "message": "not a number"}]) from None
    lo, hi = _RANGES[name]
    if not math.isfinite(x) or not lo <= x <= hi:
        raise PayloadError(f"{name}={value!r} is outside {lo}…{hi}", [{"field": name, "message": "out of range"}])
    return x


def _state(name: str, value: Any) -> str:
    codes = _CODES[name]
    if isinstance(value, (int, str)) and not isinstance(value, bool):
        if isinstance(value, int) or value.strip().isdigit():
            code = int(value)
            if code in codes:
                return codes[code]
        elif value.strip() in _VOCAB[name]:
            return value.strip()
    allowed = " | ".join(_VOCAB[name])
    raise PayloadError(f"{name}={value!r} is not one of {allowed} (or codes {min(codes)}–{max(codes)})",
                       [{"field": name, "message": "unknown state"}])


def _flag(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if value in (0, 1, "0", "1"):
        return int(value) == 1
    raise PayloadError(f"{name} must be true/false or 0/1, not {value!r}", [{"field": name, "message": "not a flag"}])


def _temp_high(value: Any) -> bool:
    if isinstance(value, (int, str)) and not isinstance(value, bool) and str(value).strip() in ("0", "1", "2"):
        return str(value).strip() == "2"
    if isinstance(value, str) and value.strip() in ("正常", "低温", "高温"):
        return value.strip() == "高温"
    raise PayloadError(f"temp_state={value!r} is not one of 正常 | 低温 | 高温 (or codes 0–2)",
                       [{"field": "temp_state", "message": "unknown state"}])


def normalise(fields: dict[str, Any]) -> tuple[dict[str, Any], dict[str, bool]]:
    """Canonical readings and flags from vendor-named fields; unknown names are ignored."""
    values: dict[str, Any] = {}
    flags: dict[str, bool] = {}
    for key, value in fields.items():
        if value is None:
            continue
        lower = str(key).lower()
        if lower in STATUS_CODE_KEYS:
            if str(value) == "3":  # 上电第一次上报: information, never an alarm (DOMAIN.md §3.2)
                flags["first_power_on"] = True
            continue
        if lower in TEMP_STATE_KEYS:
            flags["temp_high"] = _temp_high(value)
            continue
        name = ALIASES.get(lower)
        if name is None:
            continue
        if name in FLAG_FIELDS:
            flags[name] = _flag(name, value)
        elif name in _CODES:
            values[name] = _state(name, value)
        else:
            values[name] = _number(name, value)
    if "rsrp_dbm" in values and values["rsrp_dbm"] > 0:
        values["rsrp_dbm"] = -values["rsrp_dbm"]  # positive magnitude 114 means −114 dBm
    if "battery_pct" not in values and "voltage_v" in values:
        values["battery_pct"] = round(min(100.0, max(0.0, values["voltage_v"] / 3.6 * 100)), 1)
    return values, flags
