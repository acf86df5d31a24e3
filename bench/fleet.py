"""A simulated smart-cover fleet that talks to geoapi over real MQTT and real HTTP.

Used by tests/telemetry with a handful of devices, and as a benchmark with many:

    .venv/bin/python bench/fleet.py --devices 859 --rate 1000 --seconds 20 --transport mqtt
    .venv/bin/python bench/fleet.py --devices 859 --rate 1000 --seconds 20 --transport http

The benchmark starts its own server (uvicorn, a fresh SpatiaLite file, the fleet loaded as
smart covers), sends heartbeats at ``--rate`` messages/s with ~1 % cover-open events, listens
on ``GET /events`` and reports the sustained ingest rate and the p95 time from sending an
opening message to its COVER_OPEN alarm on the event stream.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

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
    """QoS 1 publisher; waits until the broker has acknowledged every message."""

    def __init__(self, host: str = "127.0.0.1", port: int = 1883, topic_prefix: str = "geoapi/telemetry"):
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.prefix = topic_prefix
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"fleet-{uuid.uuid4().hex[:8]}")
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        self.client.connect(host, port, keepalive=30)
        self.client.loop_start()

    def publish(self, messages: Iterable[dict[str, Any]], wait: bool = True) -> list:
        import orjson

        infos = [self.client.publish(f"{self.prefix}/{m['imei']}", orjson.dumps(m), qos=1) for m in messages]
        if wait:
            for info in infos:
                info.wait_for_publish(timeout=30)
        return infos

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


class HttpPublisher:
    def __init__(self, base_url: str, headers: dict[str, str]):
        import httpx

        self.client = httpx.Client(base_url=base_url, headers=headers, timeout=30)

    def publish(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        r = self.client.post("/telemetry", json=messages)
        r.raise_for_status()
        return r.json()

    def close(self) -> None:
        self.client.close()


# -- benchmark ---------------------------------------------------------------------------------------
def _serve(app, port: int):
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    while not server.started:
        time.sleep(0.05)
    return server, t


def _listen(base_url: str, sent: dict[str, float], latencies: list[float], stop: threading.Event) -> None:
    import httpx
    import orjson

    with httpx.Client(base_url=base_url, timeout=None) as c, c.stream("GET", "/events?kinds=alarm") as r:
        for line in r.iter_lines():
            if stop.is_set():
                return
            if line.startswith("data:"):
                data = orjson.loads(line[5:])
                alarm = data.get("alarm", {})
                mid = (alarm.get("value") or {}).get("msg_id")
                if data.get("action") == "raised" and mid in sent:
                    latencies.append(time.monotonic() - sent[mid])


def run_benchmark(n_devices: int, rate: int, seconds: float, transport: str, port: int = 18766) -> dict[str, Any]:
    import tempfile
    from pathlib import Path

    from geoapi.api.app import create_app
    from geoapi.auth import create_key
    from geoapi.settings import Settings
    from geoapi.storage import Store

    tmp = Path(tempfile.mkdtemp(prefix="geoapi-fleet-"))
    topic = f"geoapi-bench/{uuid.uuid4().hex[:8]}"
    settings = Settings(database_url=f"sqlite:///{tmp / 'bench.sqlite'}", data_dir=tmp,
                        mqtt_url="mqtt://127.0.0.1:1883" if transport == "mqtt" else None,
                        mqtt_topic=f"{topic}/#", mqtt_client_id=f"geoapi-bench-{uuid.uuid4().hex[:6]}")
    store = Store.open(settings)
    store.upgrade()
    fleet = Fleet.create(n_devices)
    store.bulk_write("smart_covers", fleet.features(), actor="bench")
    key = create_key(store.engine, "dispatcher", "bench")
    app = create_app(settings, store)
    server, thread = _serve(app, port)
    base = f"http://127.0.0.1:{port}"
    sent: dict[str, float] = {}
    latencies: list[float] = []
    stop = threading.Event()
    threading.Thread(target=_listen, args=(base, sent, latencies, stop), daemon=True).start()
    time.sleep(0.5)
    pub = MqttPublisher(topic_prefix=topic) if transport == "mqtt" else \
        HttpPublisher(base, {"Authorization": f"Bearer {key}"})
    svc = app.state.telemetry
    # warm-up: every device's first message switches it 在线 (a versioned write); not measured
    warm = [fleet.heartbeat(d) for d in fleet.devices]
    pub.publish(warm) if transport == "http" else pub.publish(warm, wait=True)
    while svc.stats["messages"] < len(warm):
        time.sleep(0.1)
    base_count = svc.stats["messages"]
    rng = random.Random(1)
    total, opened = 0, []
    start = time.monotonic()
    step = 0.1  # send in 100 ms slices
    while time.monotonic() - start < seconds:
        t0 = time.monotonic()
        batch = []
        for _ in range(int(rate * step)):
            d = rng.choice(fleet.devices)
            if rng.random() < 0.01 and d not in opened:
                m = fleet.open_cover(d)
                opened.append(d)
                sent[m["msg_id"]] = time.monotonic()
            else:
                m = fleet.heartbeat(d)
            batch.append(m)
        pub.publish(batch, wait=False) if transport == "mqtt" else pub.publish(batch)
        total += len(batch)
        time.sleep(max(0.0, step - (time.monotonic() - t0)))
    elapsed = time.monotonic() - start
    deadline = time.monotonic() + 60
    while svc.stats["messages"] - base_count < total and time.monotonic() < deadline:
        time.sleep(0.2)
    drained = time.monotonic() - start
    time.sleep(1.5)
    stop.set()
    pub.close()
    lat = sorted(latencies)
    result = {"transport": transport, "devices": n_devices, "sent": total, "send_seconds": round(elapsed, 1),
              "processed": svc.stats["messages"] - base_count,
              "sustained_msg_per_s": round((svc.stats["messages"] - base_count) / drained),
              "batches": svc.stats["batches"], "batch_errors": svc.stats["errors"],
              "mqtt_received": app.state.mqtt.received if app.state.mqtt else None, "alarms_expected": len(opened), "alarms_seen": len(lat),
              "p50_ms": round(lat[len(lat) // 2] * 1000) if lat else None,
              "p95_ms": round(lat[int(len(lat) * 0.95) - 1 if len(lat) > 1 else 0] * 1000) if lat else None}
    server.should_exit = True
    thread.join(timeout=10)
    store.close()
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--devices", type=int, default=859)
    p.add_argument("--rate", type=int, default=1000, help="messages per second")
    p.add_argument("--seconds", type=float, default=20)
    p.add_argument("--transport", choices=("mqtt", "http"), default="mqtt")
    p.add_argument("--port", type=int, default=18766)
    a = p.parse_args()
    print(run_benchmark(a.devices, a.rate, a.seconds, a.transport, a.port))


if __name__ == "__main__":
    main()
