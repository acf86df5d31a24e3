"""A simulated smart-cover fleet: realistic plain-JSON device messages (docs/telemetry.md) and
publishers for real MQTT and real HTTP. Drives `geoapi fleet` (demos), bench/fleet.py
(the ingest benchmark) and the telemetry tests."""

from __future__ import annotations

import datetime as dt
import random
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlparse

import sqlalchemy as sa

from geoapi.storage import Store

# 焦作 城区 around 113.24E 35.21N (EPSG:4490)
CENTRE = (113.24, 35.21)


@dataclass
class SimDevice:
    imei: str
    tilt: float = 0.5
    battery: float = 90.0
    rsrp: float = -95.0
    seq: int = 0


@dataclass
class Fleet:
    devices: list[SimDevice]
    rng: random.Random = field(default_factory=lambda: random.Random(7))

    @classmethod
    def create(cls, n: int, prefix: str = "8612340", seed: int = 7) -> Fleet:
        rng = random.Random(seed)
        devs = [SimDevice(imei=f"{prefix}{i:08d}"[:15], tilt=round(rng.uniform(0, 2), 1),
                          battery=round(rng.uniform(40, 100)), rsrp=-rng.randint(80, 110)) for i in range(n)]
        return cls(devs, rng)

    @classmethod
    def from_store(cls, store: Store, limit: int | None = None, seed: int = 7) -> Fleet:
        """The smart covers with an IMEI in the database (the demo's), at their stored state:
        tilt at the device's background angle, its last battery and signal."""
        t = store.table("smart_covers")
        stmt = (sa.select(t.c.imei, t.c.baseline_tilt_deg, t.c.last_battery_pct, t.c.last_rsrp_dbm)
                .where(t.c.imei.is_not(None), t.c.imei != "").order_by(t.c.id))
        if limit is not None:
            stmt = stmt.limit(limit)
        with store.read() as conn:
            rows = conn.execute(stmt).all()
        devs = [SimDevice(imei=r.imei, tilt=r.baseline_tilt_deg or 0.0,
                          battery=90.0 if r.last_battery_pct is None else r.last_battery_pct,
                          rsrp=-95.0 if r.last_rsrp_dbm is None else r.last_rsrp_dbm) for r in rows]
        return cls(devs, random.Random(seed))

    def features(self) -> list[tuple[dict[str, Any], Any]]:
        """The fleet as smart-cover rows for ``store.bulk_write("smart_covers", …)``."""
        from shapely.geometry import Point

        out = []
        for i, d in enumerate(self.devices):
            x = CENTRE[0] + (i % 100) * 0.0005
            y = CENTRE[1] + (i // 100) * 0.0005
            out.append(({"device_sn": f"SIM-{d.imei[-8:]}", "imei": d.imei, "platform": "MQTT直连",
                         "heartbeat_s": 3600, "fortify_state": "设防"}, Point(x, y)))
        return out

    def _msg(self, d: SimDevice, ts: dt.datetime | None = None, **values: Any) -> dict[str, Any]:
        d.seq += 1
        return {"imei": d.imei, "msg_id": f"{d.imei}-{d.seq}-{uuid.uuid4().hex[:6]}",
                "ts": (ts or dt.datetime.now(dt.UTC)).isoformat(), **values}

    def heartbeat(self, d: SimDevice, ts: dt.datetime | None = None) -> dict[str, Any]:
        d.battery = max(0.0, d.battery - self.rng.random() * 0.01)
        rsrp = d.rsrp + self.rng.randint(-3, 3)
        # Some NB-IoT modules report RSRP as a positive magnitude (DOMAIN.md §3.2).
        return self._msg(d, ts, tilt_deg=round(d.tilt + self.rng.uniform(-0.3, 0.3), 1), cover_state="正常",
                         battery_pct=round(d.battery, 1), rsrp_dbm=-rsrp if self.rng.random() < 0.2 else rsrp)

    def open_cover(self, d: SimDevice, ts: dt.datetime | None = None) -> dict[str, Any]:
        return self._msg(d, ts, tilt_deg=round(self.rng.uniform(60, 95), 1), cover_state="打开")

    def tilt(self, d: SimDevice, deg: float, ts: dt.datetime | None = None) -> dict[str, Any]:
        return self._msg(d, ts, tilt_deg=deg)

    def reset(self, d: SimDevice, ts: dt.datetime | None = None) -> dict[str, Any]:
        return self._msg(d, ts, tilt_deg=round(d.tilt, 1), cover_state="复位")


class MqttPublisher:
    """QoS 1 publisher to ``<topic_prefix>/<imei>``; ``flush`` waits until the broker has every message."""

    def __init__(self, host: str = "127.0.0.1", port: int = 1883, topic_prefix: str = "geoapi/telemetry",
                 username: str | None = None, password: str | None = None):
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.prefix = topic_prefix.rstrip("/")
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"fleet-{uuid.uuid4().hex[:8]}")
        if username:
            self.client.username_pw_set(username, password)
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        self.client.connect(host, port, keepalive=30)
        self.client.loop_start()
        self._pending: list = []

    @classmethod
    def from_url(cls, url: str, topic_prefix: str) -> MqttPublisher:
        u = urlparse(url)
        if u.scheme not in ("mqtt", "tcp"):
            raise ValueError(f"MQTT URL must be mqtt://host:port, not {url!r}")
        return cls(u.hostname or "127.0.0.1", u.port or 1883, topic_prefix,
                   unquote(u.username) if u.username else None, unquote(u.password) if u.password else None)

    def publish(self, messages: Iterable[dict[str, Any]], wait: bool = True) -> list:
        import orjson

        infos = [self.client.publish(f"{self.prefix}/{m['imei']}", orjson.dumps(m), qos=1) for m in messages]
        self._pending += infos
        if wait:
            self.flush()
        return infos

    def flush(self, timeout: float = 30) -> None:
        for info in self._pending:
            info.wait_for_publish(timeout=timeout)
        self._pending.clear()

    def close(self) -> None:
        self.flush()
        self.client.loop_stop()
        self.client.disconnect()


class HttpPublisher:
    """POSTs lists of messages to ``/telemetry``; keeps the server's counts."""

    def __init__(self, base_url: str, headers: dict[str, str]):
        import httpx

        self.client = httpx.Client(base_url=base_url, headers=headers, timeout=30)
        self.accepted = 0
        self.unknown: set[str] = set()

    def publish(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        r = self.client.post("/telemetry", json=messages)
        r.raise_for_status()
        body = r.json()
        self.accepted += body.get("accepted", 0)
        self.unknown.update(body.get("unknown_devices", []))
        return body

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.client.close()


@dataclass
class RunStats:
    sent: int = 0
    opened: int = 0
    reset: int = 0
    seconds: float = 0.0


def drive(fleet: Fleet, publish: Callable[[list[dict[str, Any]]], Any], *, rate: float, seconds: float,
          open_share: float = 0.01, reset_after_s: float = 30.0, seed: int = 1,
          step_s: float = 0.1) -> RunStats:
    """Send ``rate`` messages/s for ``seconds``: heartbeats from random devices, a share of them
    cover openings, and each opened cover reset ``reset_after_s`` later (so alarms raise and clear)."""
    if not fleet.devices:
        raise ValueError("the fleet has no devices")
    rng = random.Random(seed)
    stats = RunStats()
    open_until: dict[str, tuple[SimDevice, float]] = {}
    start = time.monotonic()
    while (now := time.monotonic()) - start < seconds:
        batch = []
        for imei, (d, until) in list(open_until.items()):
            if now >= until:
                batch.append(fleet.reset(d))
                del open_until[imei]
                stats.reset += 1
        due = int(rate * (now - start + step_s)) - stats.sent - len(batch)
        for _ in range(max(0, due)):
            d = rng.choice(fleet.devices)
            if d.imei in open_until:
                batch.append(fleet.open_cover(d))  # an open lid keeps reporting 打开 until it is reset
            elif rng.random() < open_share:
                batch.append(fleet.open_cover(d))
                open_until[d.imei] = (d, now + reset_after_s)
                stats.opened += 1
            else:
                batch.append(fleet.heartbeat(d))
        if batch:
            publish(batch)
            stats.sent += len(batch)
        time.sleep(max(0.0, step_s - (time.monotonic() - now)))
    stats.seconds = round(time.monotonic() - start, 1)
    return stats
