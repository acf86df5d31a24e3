"""Plain data of the telemetry pipeline: one normalised device reading and its results."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

# The readings a message may carry (any subset). Units are fixed here; adapters convert.
READING_FIELDS = (
    "tilt_deg",        # ° from the vertical axis of the lid (0 = flat)
    "cover_state",     # 正常 | 打开 | 松动 | 复位
    "water_level_m",   # m from the cover down to the water surface (well water)
    "water_state",     # 正常 | 低水位 | 中水位 | 水满
    "depth_cm",        # cm of standing water on the road (积水点 gauges)
    "gas_lel_pct",     # % LEL combustible gas
    "h2s_ppm",         # ppm hydrogen sulphide (toxic-gas sensor)
    "battery_pct",     # %
    "voltage_v",       # V
    "rsrp_dbm",        # dBm, negative
    "snr",
    "csq",             # 0–31
    "temp_c",          # °C
)
# Boolean vendor flags (DOMAIN.md §3.2/§3.3), kept in telemetry.flags.
FLAG_FIELDS = ("vibration", "displaced", "tamper", "smoke", "temp_high", "first_power_on")

COVER_STATES = ("正常", "打开", "松动", "复位")
WATER_STATES = ("正常", "低水位", "中水位", "水满")


@dataclass
class Reading:
    """One device message after its adapter: who, when, what it measured."""

    device_key: str                    # IMEI, platform device id or gauge id, as sent
    alt_keys: tuple[str, ...]          # other ids in the same message (e.g. CTWing deviceId)
    ts: dt.datetime                    # device time (UTC); receive time when the device sent none
    source: str                        # http | ctwing | onenet | mqtt
    msg_id: str                        # platform message id, or derived from device + time + values
    values: dict[str, Any] = field(default_factory=dict)  # subset of READING_FIELDS
    flags: dict[str, bool] = field(default_factory=dict)  # subset of FLAG_FIELDS
    online: bool | None = None         # platform online/offline notices (no readings)
    raw: Any = None
    received_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    received_mono: float = 0.0         # time.monotonic() at receipt, for latency and debounce


@dataclass
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    out_of_order: int = 0
    unknown_devices: list[str] = field(default_factory=list)

    def merge(self, other: IngestResult) -> None:
        self.accepted += other.accepted
        self.duplicates += other.duplicates
        self.out_of_order += other.out_of_order
        self.unknown_devices += [d for d in other.unknown_devices if d not in self.unknown_devices]

    def as_dict(self) -> dict[str, Any]:
        return {"accepted": self.accepted, "duplicates": self.duplicates, "out_of_order": self.out_of_order,
                "unknown_devices": self.unknown_devices}
