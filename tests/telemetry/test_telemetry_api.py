"""Telemetry over real HTTP (TestClient) on SpatiaLite and PostGIS: alarms, events, status."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import sqlalchemy as sa

from geoapi.storage import FeatureQuery, schema
from geoapi.telemetry.adapters import onenet_signature

from .conftest import GAUGE, IMEIS, fleet_module, wait_for

COVER = IMEIS[0]


def sse(client, after: int = 0, kinds: str | None = None, timeout: float = 0.3) -> list[dict]:
    params = {"after": after, "timeout": timeout, **({"kinds": kinds} if kinds else {})}
    r = client.get("/events", params=params)
    assert r.status_code == 200
    out = []
    for block in r.text.replace("\r\n", "\n").split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "data" in fields:
            out.append({"id": fields.get("id"), "event": fields.get("event"), "data": json.loads(fields["data"])})
    return out


def alarms(client, **params) -> list[dict]:
    r = client.get("/alarms", params=params)
    assert r.status_code == 200
    return r.json()["alarms"]


def test_opened_cover_raises_cover_open_on_alarms_and_events(tel_client, push, devices):
    fleet = fleet_module.Fleet.create(1)
    fleet.devices[0].imei = COVER
    r = tel_client.post("/telemetry", json=fleet.tilt(fleet.devices[0], 48.0), headers=push)
    assert r.status_code == 200 and r.json()["accepted"] == 1
    # raised by the debounce (2 s) on the clock, without a second message
    found = wait_for(lambda: [a for a in alarms(tel_client, state="open") if a["type"] == "COVER_OPEN"], timeout=5)
    assert found[0]["feature_id"] == devices[COVER] and found[0]["level"] == "报警"
    events = sse(tel_client, kinds="alarm")
    assert [e["data"]["alarm"]["type"] for e in events if e["data"]["action"] == "raised"] == ["COVER_OPEN"]
    status = [e["data"] for e in sse(tel_client, kinds="status")]
    assert status[-1]["status"] == "报警" and status[-1]["id"] == devices[COVER]


def test_reset_clears_the_alarm_and_the_status(tel_client, push, devices, store):
    tel_client.post("/telemetry", json={"imei": COVER, "cover_state": "打开", "tilt_deg": 80}, headers=push)
    assert [a["type"] for a in alarms(tel_client, state="open")] == ["COVER_OPEN"]  # 打开 raises at once
    assert store.get("smart_covers", devices[COVER]).props["status"] == "报警"
    tel_client.post("/telemetry", json={"imei": COVER, "cover_state": "复位", "tilt_deg": 0.4}, headers=push)
    [a] = alarms(tel_client)
    assert a["state"] == "cleared" and a["condition_cleared_at"]
    props = store.get("smart_covers", devices[COVER]).props
    assert (props["status"], props["alarm_state"], props["last_cover_state"]) == ("正常", "正常", "复位")
    assert [e["data"]["action"] for e in sse(tel_client, kinds="alarm")] == ["raised", "cleared"]


def test_a_silent_device_goes_offline_and_comes_back(tel_client, push, devices, store):
    # offline_factor 0.05 × heartbeat 60 s = 3 s (tests/telemetry/conftest.py)
    tel_client.post("/telemetry", json={"imei": IMEIS[1], "battery_pct": 77}, headers=push)
    assert store.get("smart_covers", devices[IMEIS[1]]).props["online_state"] == "在线"
    wait_for(lambda: store.get("smart_covers", devices[IMEIS[1]]).props["online_state"] == "离线", timeout=8)
    assert store.get("smart_covers", devices[IMEIS[1]]).props["status"] == "离线"
    assert [a["type"] for a in alarms(tel_client, state="open")] == ["DEVICE_OFFLINE"]
    tel_client.post("/telemetry", json={"imei": IMEIS[1], "battery_pct": 77}, headers=push)
    assert store.get("smart_covers", devices[IMEIS[1]]).props["online_state"] == "在线"
    assert alarms(tel_client, state="open") == []


def test_flapping_tilt_does_not_flood(tel_client, push):
    fleet = fleet_module.Fleet.create(1)
    fleet.devices[0].imei = IMEIS[2]
    t0 = dt.datetime.now(dt.UTC)
    msgs = [fleet.tilt(fleet.devices[0], 35.0 if i % 2 == 0 else 1.0, ts=t0 + dt.timedelta(seconds=i * 0.4))
            for i in range(30)]
    r = tel_client.post("/telemetry", json=msgs, headers=push)
    assert r.json()["accepted"] == 30
    assert [a["type"] for a in alarms(tel_client)] == ["COVER_LOOSE"]


@pytest.mark.parametrize("body", [
    b"{not json", b"\xff\xfe", b"[]", b"42", b'{"tilt_deg": 3}', b'{"imei": "1", "tilt_deg": "x"}',
    b'{"imei": "1", "ts": "soon"}', b'[{"imei": "1"}, "text"]', b'{"imei": "1", "rsrp_dbm": 1e400}',
])
def test_malformed_payloads_get_400_with_a_reason(tel_client, push, body):
    r = tel_client.post("/telemetry", content=body, headers={**push, "Content-Type": "application/json"})
    assert r.status_code == 400
    assert r.json()["code"] == "invalid_payload" and r.json()["detail"]


def test_duplicate_message_ids_are_ignored(tel_client, push, store):
    msg = {"imei": COVER, "msg_id": "abc-1", "battery_pct": 60}
    assert tel_client.post("/telemetry", json=msg, headers=push).json()["accepted"] == 1
    again = tel_client.post("/telemetry", json=[msg, {**msg}], headers=push).json()
    assert again["accepted"] == 0 and again["duplicates"] == 2
    with store.read() as conn:
        n = conn.execute(sa.select(sa.func.count()).select_from(schema.telemetry)).scalar_one()
    assert n == 1


def test_heartbeats_write_history_only_when_state_changes(tel_client, push, devices, store):
    for pct in (90, 89, 88):
        tel_client.post("/telemetry", json={"imei": COVER, "battery_pct": pct, "tilt_deg": 1}, headers=push)
    history = store.history("smart_covers", devices[COVER])
    assert [h.op for h in history] == ["insert", "update"]  # the update: online_state → 在线
    props = store.get("smart_covers", devices[COVER]).props
    assert props["last_battery_pct"] == 88 and props["last_seen_at"] is not None
    with store.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(schema.telemetry)).scalar_one() == 3


def test_unknown_devices_are_reported_not_stored(tel_client, push):
    r = tel_client.post("/telemetry", json={"imei": "999", "tilt_deg": 1}, headers=push).json()
    assert r == {"accepted": 0, "duplicates": 0, "out_of_order": 0, "unknown_devices": ["999"]}


def test_push_needs_a_token_or_a_dispatcher_key(tel_client, keys):
    msg = {"imei": COVER, "battery_pct": 50}
    assert tel_client.post("/telemetry", json=msg).status_code == 401
    assert tel_client.post("/telemetry", json=msg, headers={"X-Push-Token": "wrong"}).status_code == 401
    assert tel_client.post("/telemetry", json=msg, headers=keys["viewer"]).status_code == 403
    assert tel_client.post("/telemetry", json=msg, headers=keys["dispatcher"]).status_code == 200
    assert tel_client.post("/telemetry?token=push-secret", json={**msg, "battery_pct": 49}).status_code == 200


def test_ack_and_resolve_keep_a_history(tel_client, push, keys, store, devices):
    tel_client.post("/telemetry", json={"imei": COVER, "displaced": 1}, headers=push)
    [a] = alarms(tel_client, state="open", type="COVER_DISPLACED")
    assert tel_client.post(f"/alarms/{a['id']}/ack", headers=keys["viewer"]).status_code == 403
    acked = tel_client.post(f"/alarms/{a['id']}/ack", headers=keys["dispatcher"])
    assert acked.status_code == 200 and acked.json()["state"] == "acknowledged" and acked.json()["acked_by"]
    done = tel_client.post(f"/alarms/{a['id']}/resolve", json={"note": "已复位加固"}, headers=keys["dispatcher"])
    assert done.json()["state"] == "resolved" and done.json()["note"] == "已复位加固"
    assert tel_client.post(f"/alarms/{a['id']}/resolve", headers=keys["dispatcher"]).status_code == 409
    detail = tel_client.get(f"/alarms/{a['id']}").json()
    assert [h["action"] for h in detail["history"]] == ["raised", "acknowledged", "resolved"]
    assert store.get("smart_covers", devices[COVER]).props["status"] == "正常"
    assert tel_client.post("/alarms/99999/ack", headers=keys["dispatcher"]).status_code == 404


def test_disarmed_cover_is_not_alarmed(tel_client, push, store, devices):
    store.patch("smart_covers", devices[COVER], {"fortify_state": "撤防"}, actor="test")
    tel_client.post("/telemetry", json={"imei": COVER, "cover_state": "打开"}, headers=push)
    assert alarms(tel_client) == []


def test_gauge_depth_raises_ponding_alarms(tel_client, push, store):
    tel_client.post("/telemetry", json={"device_id": GAUGE, "depth_cm": 27}, headers=push)
    types = {a["type"] for a in alarms(tel_client, layer="waterlogging_points")}
    assert {"PONDING_START", "PONDING_WARN", "PONDING_CLOSE"} <= types
    [point] = store.query("waterlogging_points", FeatureQuery()).features
    assert point.props["status"] == "封闭" and point.props["last_depth_cm"] == 27


def test_alarm_filters(tel_client, push):
    tel_client.post("/telemetry", json=[{"imei": IMEIS[0], "cover_state": "打开"},
                                        {"imei": IMEIS[1], "battery_pct": 5}], headers=push)
    assert {a["type"] for a in alarms(tel_client, type="BATTERY_CRITICAL")} == {"BATTERY_CRITICAL"}
    assert len(alarms(tel_client, state="active", district="410800")) == 2
    assert alarms(tel_client, since="2999-01-01T00:00:00Z") == []
    assert tel_client.get("/alarms", params={"state": "sleeping"}).status_code == 400


def test_ctwing_push(tel_client, devices, store):
    body = {"messageType": "dataReport", "deviceId": "ctw-1", "IMEI": "undefined", "timestamp": 1750000000000,
            "payload": {"serviceId": "notification", "serviceData": {"Battery_Level": 66, "RSRP": 99}}}
    assert tel_client.post("/telemetry/ctwing", json=body).status_code == 401
    r = tel_client.post("/telemetry/ctwing?token=ctw-secret", json=body)
    assert r.json()["accepted"] == 1
    props = store.get("smart_covers", devices[IMEIS[1]]).props
    assert props["last_battery_pct"] == 66 and props["last_rsrp_dbm"] == -99


def test_onenet_verification_and_signed_push(tel_client, devices, store):
    sig = onenet_signature("onenet-secret", "n0nce", "hello")
    r = tel_client.get("/telemetry/onenet", params={"msg": "hello", "nonce": "n0nce", "signature": sig})
    assert r.status_code == 200 and r.text == "hello"
    assert tel_client.get("/telemetry/onenet", params={"msg": "hello", "nonce": "x", "signature": sig}).status_code == 401
    msg = '{"type":1,"imei":"' + IMEIS[2] + '","ds_id":"battery","at":1750000000000,"value":55}'
    body = '{"msg":' + msg + ',"msg_signature":"' + onenet_signature("onenet-secret", "abc", msg) + '","nonce":"abc"}'
    r = tel_client.post("/telemetry/onenet", content=body.encode(), headers={"Content-Type": "application/json"})
    assert r.status_code == 200 and r.json()["accepted"] == 1
    assert store.get("smart_covers", devices[IMEIS[2]]).props["last_battery_pct"] == 55
    forged = body.replace('"value":55', '"value":56')
    assert tel_client.post("/telemetry/onenet", content=forged.encode()).status_code == 401


def test_dashboard_counts(tel_client, push):
    tel_client.post("/telemetry", json=[{"imei": IMEIS[0], "cover_state": "打开"},
                                        {"imei": IMEIS[1], "battery_pct": 50}], headers=push)
    d = tel_client.get("/dashboard/manholes").json()
    assert d["smart_covers"]["total"] == 3
    assert d["smart_covers"]["by_online_state"] == {"在线": 2, "未上报": 1}
    assert d["open_alarms"]["by_type"] == [{"type": "COVER_OPEN", "level": "报警", "count": 1}]
    assert d["open_alarms"]["by_district"][0]["count"] == 1
    assert d["manholes"]["total"] == 0


def test_events_resume_after_last_event_id(tel_client, push):
    tel_client.post("/telemetry", json={"imei": COVER, "battery_pct": 5}, headers=push)
    first = sse(tel_client)
    assert first
    last = int(first[-1]["id"])
    tel_client.post("/telemetry", json={"imei": COVER, "battery_pct": 50}, headers=push)
    r = tel_client.get("/events", params={"timeout": 0.3}, headers={"Last-Event-ID": str(last)})
    ids = [int(line.split(": ")[1]) for line in r.text.splitlines() if line.startswith("id: ")]
    assert ids and min(ids) == last + 1


def test_raise_and_clear_in_one_request(tel_client, push, devices):
    tel_client.post("/telemetry", json={"imei": IMEIS[0], "cover_state": "打开"}, headers=push)
    r = tel_client.post("/telemetry", json=[{"imei": IMEIS[0], "cover_state": "复位", "tilt_deg": 0},
                                            {"imei": IMEIS[1], "cover_state": "打开"}], headers=push)
    assert r.status_code == 200 and r.json()["accepted"] == 2
    assert {(a["feature_id"], a["state"]) for a in alarms(tel_client)} == {(devices[IMEIS[0]], "cleared"),
                                                                       (devices[IMEIS[1]], "open")}
    history = tel_client.get(f"/alarms/{alarms(tel_client, state='cleared')[0]['id']}").json()["history"]
    assert [h["action"] for h in history] == ["raised", "cleared"]
