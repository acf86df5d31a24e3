"""MQTT end to end: the simulated fleet publishes to a real Mosquitto, geoapi subscribes.

Uses the machine's broker at 127.0.0.1:1883 with a private topic, and a private broker on a
free port (started and stopped here, by pid) for the restart test.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from geoapi.api.app import create_app
from geoapi.storage import schema

from .conftest import IMEIS, fleet_module, wait_for


def _broker_up(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _telemetry_count(store) -> int:
    with store.read() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(schema.telemetry)).scalar_one()


def _mqtt_client(tel_settings, store, port: int):
    topic = f"geoapi-test/{uuid.uuid4().hex[:8]}"
    s = tel_settings.model_copy(update={"mqtt_url": f"mqtt://127.0.0.1:{port}", "mqtt_topic": f"{topic}/#",
                                        "mqtt_client_id": f"geoapi-test-{uuid.uuid4().hex[:8]}"})
    return TestClient(create_app(s, store)), topic


@pytest.mark.skipif(not _broker_up(1883), reason="no MQTT broker at 127.0.0.1:1883")
def test_mqtt_message_is_processed_end_to_end(tel_settings, store, devices):
    client, topic = _mqtt_client(tel_settings, store, 1883)
    with client:
        app = client.app
        wait_for(lambda: app.state.mqtt.connected, timeout=5)
        fleet = fleet_module.Fleet.create(1)
        fleet.devices[0].imei = IMEIS[0]
        pub = fleet_module.MqttPublisher(topic_prefix=topic)
        try:
            pub.publish([fleet.heartbeat(fleet.devices[0]), fleet.open_cover(fleet.devices[0])])
            pub.client.publish(f"{topic}/{IMEIS[0]}", b"{broken", qos=1).wait_for_publish(5)
        finally:
            pub.close()
        wait_for(lambda: _telemetry_count(store) == 2)
        alarms = wait_for(lambda: client.get("/alarms", params={"state": "open"}).json()["alarms"])
        assert [a["type"] for a in alarms] == ["COVER_OPEN"]
        assert store.get("smart_covers", devices[IMEIS[0]]).props["status"] == "报警"
        wait_for(lambda: app.state.mqtt.rejected == 1)


def _start_broker(port: int, tmp_path) -> subprocess.Popen:
    # mosquitto started as root drops to its own user: the persistence dir must be writable by it
    tmp_path.chmod(0o777)
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
                    f"persistence_location {tmp_path}/\n", encoding="utf-8")
    proc = subprocess.Popen([shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c", str(conf)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: _broker_up(port), timeout=5)
    return proc


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.skipif(not (shutil.which("mosquitto") or shutil.which("/usr/sbin/mosquitto")), reason="no mosquitto")
def test_broker_restart_loses_no_delivered_message(tel_settings, store, devices):
    tmp_path = Path(tempfile.mkdtemp(prefix="geoapi-mosquitto-"))
    port = _free_port()
    broker = _start_broker(port, tmp_path)
    try:
        client, topic = _mqtt_client(tel_settings, store, port)
        with client:
            app = client.app
            wait_for(lambda: app.state.mqtt.connected, timeout=5)
            fleet = fleet_module.Fleet.create(3)
            for d, imei in zip(fleet.devices, IMEIS, strict=True):
                d.imei = imei
            pub = fleet_module.MqttPublisher(port=port, topic_prefix=topic)
            pub.publish([fleet.heartbeat(d) for d in fleet.devices for _ in range(3)])
            pub.close()
            wait_for(lambda: _telemetry_count(store) == 9)
            # the broker saves its state and stops; our subscriber reconnects to the new one
            broker.terminate()
            broker.wait(timeout=10)
            wait_for(lambda: not app.state.mqtt.connected, timeout=5)
            broker = _start_broker(port, tmp_path)
            pub = fleet_module.MqttPublisher(port=port, topic_prefix=topic)
            pub.publish([fleet.heartbeat(d) for d in fleet.devices for _ in range(2)])
            pub.close()
            wait_for(lambda: app.state.mqtt.connected, timeout=20)
            wait_for(lambda: _telemetry_count(store) == 15, timeout=20)
            assert app.state.mqtt.connected
    finally:
        broker.terminate()
        broker.wait(timeout=10)
        shutil.rmtree(tmp_path, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.skipif(not _broker_up(1883), reason="no MQTT broker at 127.0.0.1:1883")
@pytest.mark.parametrize("transport", ["mqtt", "http"])
def test_fleet_benchmark_small(transport):
    """The benchmark itself, tiny: every message processed, every opened cover alarmed on /events."""
    result = fleet_module.run_benchmark(n_devices=20, rate=200, seconds=2, transport=transport, port=_free_port())
    assert result["processed"] == result["sent"] > 0
    assert result["alarms_seen"] == result["alarms_expected"]
