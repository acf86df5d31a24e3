"""Payload adapters and normalisation (no database)."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest

from geoapi.errors import UnauthorizedError
from geoapi.telemetry.adapters import (
    check_onenet_signature,
    onenet_signature,
    parse_ctwing,
    parse_onenet,
    parse_plain,
    raw_msg_text,
)
from geoapi.telemetry.normalize import PayloadError


def test_plain_message_is_normalised():
    [r] = parse_plain({"imei": "861234500000001", "ts": "2025-07-01T08:30:00+08:00", "tilt_deg": 3.1,
                       "cover_state": "正常", "battery_pct": 87, "rsrp_dbm": 114})
    assert r.device_key == "861234500000001"
    assert r.ts == dt.datetime(2025, 7, 1, 0, 30, tzinfo=dt.UTC)
    assert r.values == {"tilt_deg": 3.1, "cover_state": "正常", "battery_pct": 87.0, "rsrp_dbm": -114.0}
    assert r.msg_id.startswith("d:")


def test_naive_time_is_china_time_and_codes_map_to_states():
    [r] = parse_plain({"imei": "1", "ts": "2025-07-01 08:30:00", "cover_state": 1, "water_state": "1"})
    assert r.ts.hour == 0
    assert r.values["cover_state"] == "打开" and r.values["water_state"] == "水满"


def test_battery_from_voltage_when_no_percentage():
    [r] = parse_plain({"imei": "1", "voltage_v": 3.24})
    assert r.values["battery_pct"] == 90.0


def test_same_content_gives_same_derived_id():
    msg = {"imei": "1", "ts": "2025-07-01T08:30:00+08:00", "tilt_deg": 2}
    assert parse_plain(msg)[0].msg_id == parse_plain(dict(msg))[0].msg_id
    assert parse_plain(msg)[0].msg_id != parse_plain({**msg, "tilt_deg": 3})[0].msg_id


@pytest.mark.parametrize("body, field", [
    ({"tilt_deg": 3}, "imei"),
    ({"imei": "1", "tilt_deg": "steep"}, "tilt_deg"),
    ({"imei": "1", "tilt_deg": True}, "tilt_deg"),
    ({"imei": "1", "battery_pct": 130}, "battery_pct"),
    ({"imei": "1", "cover_state": "飞走"}, "cover_state"),
    ({"imei": "1", "ts": "yesterday"}, "ts"),
    ({"imei": {"a": 1}}, "imei"),
])
def test_bad_plain_messages_name_the_field(body, field):
    with pytest.raises(PayloadError) as e:
        parse_plain(body)
    assert e.value.errors and e.value.errors[0]["field"] == field


def test_bad_item_in_a_list_names_its_position():
    with pytest.raises(PayloadError, match="message #1"):
        parse_plain([{"imei": "1"}, {"imei": "2", "gas_lel_pct": -5}])


def test_ctwing_thing_model_push():
    body = {"upPacketSN": -1, "upDataSN": -1, "topic": "v1/up/ad", "timestamp": 1650554828842,
            "tenantId": "2000033629", "protocol": "lwm2m", "productId": "15114816",
            "payload": {"serviceId": "notification", "serviceData": {"Battery_Level": 76, "RSRP": 101,
                                                                      "levelAngle": 12.5}},
            "messageType": "dataReport", "deviceId": "40edca19", "IMEI": "862592051651472"}
    [r] = parse_ctwing(body)
    assert r.device_key == "862592051651472" and r.alt_keys == ("40edca19",)
    assert r.values == {"battery_pct": 76.0, "rsrp_dbm": -101.0, "tilt_deg": 12.5}
    assert r.source == "ctwing"


def test_ctwing_passthrough_json_and_online_report():
    frame = base64.b64encode(json.dumps({"tilt": 40, "cover_status": 1}).encode()).decode()
    [data] = parse_ctwing({"messageType": "dataReport", "IMEI": "1", "timestamp": 1650554828842,
                           "payload": {"APPdata": frame}})
    assert data.values == {"tilt_deg": 40.0, "cover_state": "打开"}
    [off] = parse_ctwing({"messageType": "deviceOnlineOfflineReport", "IMEI": "1", "eventType": 0,
                          "timestamp": 1650554828842})
    assert off.online is False
    assert parse_ctwing({"messageType": "commandResponse", "IMEI": "1"}) == []


def test_ctwing_without_device_is_rejected():
    with pytest.raises(PayloadError, match="IMEI or deviceId"):
        parse_ctwing({"messageType": "dataReport", "IMEI": "undefined", "payload": {}})


def test_onenet_datapoints_and_signature():
    body_text = ('{"msg":{"type":1,"dev_id":2016617,"ds_id":"tilt","at":1466133706841,"value":42},'
                 '"msg_signature":"SIG","nonce":"abcdefgh"}')
    msg_text = raw_msg_text(body_text)
    assert msg_text == '{"type":1,"dev_id":2016617,"ds_id":"tilt","at":1466133706841,"value":42}'
    sig = onenet_signature("tok", "abcdefgh", msg_text)
    check_onenet_signature("tok", "abcdefgh", [msg_text], sig)
    with pytest.raises(UnauthorizedError):
        check_onenet_signature("other", "abcdefgh", [msg_text], sig)
    [r] = parse_onenet(json.loads(body_text))
    assert r.device_key == "2016617" and r.values == {"tilt_deg": 42.0}


def test_onenet_online_message():
    [r] = parse_onenet({"msg": {"type": 2, "dev_id": 7, "status": 1, "at": 1466133706841}})
    assert r.online is True
    with pytest.raises(PayloadError, match="type"):
        parse_onenet({"msg": {"type": 9, "dev_id": 7}})


def test_h2s_reading_in_plain_json_and_vendor_names():
    [r] = parse_plain({"imei": "1", "h2s_ppm": 12.5})
    assert r.values == {"h2s_ppm": 12.5}
    [c] = parse_ctwing({"messageType": "dataReport", "IMEI": "1", "timestamp": 1650554828842, "upPacketSN": 3,
                        "payload": {"serviceId": "notification", "serviceData": {"H2S": 21, "temp_state": 2}}})
    assert c.values == {"h2s_ppm": 21.0} and c.flags == {"temp_high": True}
    [o] = parse_onenet({"msg": {"type": 1, "imei": "1", "dev_id": 9, "ds_id": "h2s_concentration", "value": 4,
                                "at": 1650554828842}})
    assert o.values == {"h2s_ppm": 4.0}


def test_bad_h2s_and_temperature_state_are_rejected_with_the_field():
    with pytest.raises(PayloadError) as exc:
        parse_plain({"imei": "1", "h2s_ppm": -3})
    assert exc.value.errors[0]["field"] == "h2s_ppm"
    with pytest.raises(PayloadError) as exc:
        parse_plain({"imei": "1", "temp_state": "hot"})
    assert exc.value.errors[0]["field"] == "temp_state"


def test_first_power_on_status_is_a_flag_only():
    [r] = parse_plain({"imei": "1", "status_code": 3, "tilt_deg": 0.2})
    assert r.flags == {"first_power_on": True} and r.values == {"tilt_deg": 0.2}
