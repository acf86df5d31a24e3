"""A simulated smart-cover fleet that talks to geoapi over real MQTT and real HTTP.

Used by tests/telemetry with a handful of devices, and as a benchmark with many:

    .venv/bin/python bench/fleet.py --devices 859 --rate 1000 --seconds 20 --transport mqtt
    .venv/bin/python bench/fleet.py --devices 859 --rate 1000 --seconds 20 --transport http

The benchmark starts its own server (uvicorn, a fresh SpatiaLite file, the fleet loaded as
smart covers), sends heartbeats at ``--rate`` messages/s with ~1 % cover-open events, listens
on ``GET /events`` and reports the sustained ingest rate and the p95 time from sending an
opening message to its COVER_OPEN alarm on the event stream. For demos against a running
server use `geoapi fleet` instead (same simulator, geoapi/telemetry/simulate.py).
"""

from __future__ import annotations

import argparse
import random
import threading
import time
import uuid
from typing import Any

# The simulator lives in the package (`geoapi fleet` uses it too); re-exported for the tests.
from geoapi.telemetry.simulate import CENTRE, Fleet, HttpPublisher, MqttPublisher, SimDevice  # noqa: F401


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
