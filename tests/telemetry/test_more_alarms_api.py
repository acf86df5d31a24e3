"""GAS_H2S, first power-on and gauge faults over real HTTP, and revision 0003, on SpatiaLite and PostGIS."""

from __future__ import annotations

import sqlalchemy as sa

from geoapi.storage import schema
from geoapi.storage.migrate import head_revision

from .conftest import GAUGE, IMEIS

COVER = IMEIS[0]


def alarms(client, **params) -> list[dict]:
    r = client.get("/alarms", params=params)
    assert r.status_code == 200
    return r.json()["alarms"]


def test_h2s_is_stored_raised_and_escalated(tel_client, push, devices, store):
    r = tel_client.post("/telemetry", json={"imei": COVER, "h2s_ppm": 12}, headers=push)
    assert r.status_code == 200 and r.json()["accepted"] == 1
    [a] = alarms(tel_client, state="open")
    assert (a["type"], a["level"]) == ("GAS_H2S", "预警")
    tel_client.post("/telemetry", json={"imei": COVER, "h2s_ppm": 26}, headers=push)
    [a] = alarms(tel_client, state="open")
    assert (a["type"], a["level"]) == ("GAS_H2S", "报警")
    history = tel_client.get(f"/alarms/{a['id']}").json()["history"]
    assert [h["action"] for h in history] == ["raised", "escalated"]
    props = store.get("smart_covers", devices[COVER]).props
    assert (props["alarm_state"], props["last_h2s_ppm"]) == ("报警", 26)
    with store.read() as conn:
        stored = conn.execute(sa.select(schema.telemetry.c.h2s_ppm).order_by(schema.telemetry.c.ts)).scalars().all()
    assert stored == [12, 26]
    tel_client.post("/telemetry", json={"imei": COVER, "h2s_ppm": 3}, headers=push)
    assert alarms(tel_client, state="active") == []


def test_first_power_on_raises_no_alarm(tel_client, push, devices, store):
    body = {"imei": COVER, "status_code": 3, "tilt_deg": 0.3, "cover_state": "正常", "battery_pct": 100}
    assert tel_client.post("/telemetry", json=body, headers=push).json()["accepted"] == 1
    assert alarms(tel_client) == []
    assert store.get("smart_covers", devices[COVER]).props["status"] == "正常"
    with store.read() as conn:
        assert conn.execute(sa.select(schema.telemetry.c.flags)).scalar_one() == {"first_power_on": True}


def test_negative_gauge_reading_raises_gauge_fault(tel_client, push):
    r = tel_client.post("/telemetry", json={"device_id": GAUGE, "depth_cm": -12}, headers=push)
    assert r.status_code == 200 and r.json()["accepted"] == 1
    assert [(a["type"], a["layer"]) for a in alarms(tel_client)] == [("GAUGE_FAULT", "waterlogging_points")]


def test_revision_0003_adds_h2s_to_an_older_telemetry_table(store):
    store.upgrade()
    with store.engine.connect().execution_options(geoapi_write=True) as conn, conn.begin():
        conn.exec_driver_sql("ALTER TABLE telemetry DROP COLUMN h2s_ppm")
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0002'")
    with store.read() as conn:
        assert "h2s_ppm" not in {c["name"] for c in sa.inspect(conn).get_columns("telemetry")}
    store.upgrade()
    with store.read() as conn:
        assert "h2s_ppm" in {c["name"] for c in sa.inspect(conn).get_columns("telemetry")}
        assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == head_revision()
