"""`geoapi fleet`, run as a user runs it (a subprocess), against a real server and a real broker."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import uuid

import pytest
import sqlalchemy as sa

from geoapi.api.app import create_app
from geoapi.storage import schema

from .conftest import IMEIS, wait_for


def fleet_cmd(args: list[str], tmp_path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    e = {**os.environ, "GEOAPI_DATA_DIR": str(tmp_path / "data"), **(env or {})}
    e.pop("GEOAPI_DATABASE_URL", None)
    return subprocess.run([sys.executable, "-m", "geoapi", "fleet", *args], capture_output=True, text=True,
                          timeout=120, env=e)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _broker_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 1883), timeout=1):
            return True
    except OSError:
        return False


def _sent(stdout: str) -> int:
    line = next(line for line in stdout.splitlines() if line.startswith("sent "))
    return int(line.split()[1])


def test_fleet_over_http_reaches_the_server(tel_settings, store, devices, tmp_path):
    import uvicorn

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(tel_settings, store), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, timeout=10)
    try:
        out = fleet_cmd(["--transport", "http", "--url", f"http://127.0.0.1:{port}", "--rate", "20",
                         "--seconds", "1", "--db", tel_settings.database_url], tmp_path,
                        env={"GEOAPI_TELEMETRY_PUSH_TOKEN": "push-secret"})
        assert out.returncode == 0, out.stderr[-2000:]
        assert "fleet: 3 smart covers" in out.stdout
        sent = _sent(out.stdout)
        assert sent >= 2  # the first 100 ms slice at least; a busy server slows the HTTP posts

        def stored() -> int:
            with store.read() as conn:
                return conn.execute(sa.select(sa.func.count()).select_from(schema.telemetry)).scalar_one()

        wait_for(lambda: stored() == sent)
        with store.read() as conn:
            keys = set(conn.execute(sa.select(schema.telemetry.c.device_key).distinct()).scalars())
        assert keys <= set(IMEIS) and keys
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.mark.skipif(not _broker_up(), reason="no MQTT broker at 127.0.0.1:1883")
def test_fleet_over_mqtt_publishes_every_message(settings, store, devices, tmp_path):
    import orjson
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    prefix = f"geoapi-test/{uuid.uuid4().hex[:8]}"
    got: list[tuple[str, dict]] = []
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"fleet-test-{uuid.uuid4().hex[:6]}")
    sub.on_message = lambda c, u, m: got.append((m.topic, orjson.loads(m.payload)))
    sub.connect("127.0.0.1", 1883)
    sub.subscribe(f"{prefix}/#", qos=1)
    sub.loop_start()
    try:
        time.sleep(0.3)
        out = fleet_cmd(["--transport", "mqtt", "--topic", prefix, "--rate", "30", "--seconds", "1",
                         "--open-share", "0.2", "--db", settings.database_url], tmp_path)
        assert out.returncode == 0, out.stderr[-2000:]
        sent = _sent(out.stdout)
        assert sent >= 20  # 30 msg/s for 1 s; publishing does not wait for the broker
        wait_for(lambda: len(got) == sent, timeout=5)
    finally:
        sub.loop_stop()
        sub.disconnect()
    assert all(topic == f"{prefix}/{m['imei']}" and m["imei"] in IMEIS for topic, m in got)
    assert any(m.get("cover_state") == "打开" for _, m in got)


def test_fleet_without_smart_covers_says_what_to_do(settings, store, tmp_path):
    store.upgrade()
    out = fleet_cmd(["--transport", "http", "--key", "x", "--seconds", "1", "--db", settings.database_url], tmp_path)
    assert out.returncode == 2 and "geoapi demo" in out.stderr
