"""Payload adapters: plain JSON, CTWing (天翼物联 AEP) subscription push, OneNET legacy push.

Each turns one request body (already JSON-decoded) into Readings or raises PayloadError with a
reason. Formats: DOMAIN.md §3.4 and docs/telemetry.md.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json
import re
import time
from typing import Any
from zoneinfo import ZoneInfo

from geoapi.telemetry.model import Reading
from geoapi.telemetry.normalize import PayloadError, normalise

CHINA = ZoneInfo("Asia/Shanghai")
DEVICE_KEYS = ("imei", "device_id", "platform_device_id", "device_sn")
MAX_FUTURE = dt.timedelta(minutes=10)
MAX_ITEMS = 5000


def parse_time(value: Any, field: str = "ts") -> dt.datetime:
    """ISO 8601 (naive = China time, UTC+8) or Unix epoch seconds / milliseconds."""
    if isinstance(value, bool):
        raise PayloadError(f"{field} must be ISO 8601 or epoch, not a boolean", [{"field": field, "message": "bad time"}])
    if isinstance(value, (int, float)):
        seconds = value / 1000 if value > 1e11 else value
        try:
            return dt.datetime.fromtimestamp(seconds, dt.UTC)
        except (OverflowError, OSError, ValueError):
            raise PayloadError(f"{field}={value!r} is not a valid epoch time",
                               [{"field": field, "message": "bad time"}]) from None
    if isinstance(value, str):
        try:
            t = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise PayloadError(f"{field}={value!r} is not ISO 8601 (e.g. 2025-07-01T08:30:00+08:00)",
                               [{"field": field, "message": "bad time"}]) from None
        return (t if t.tzinfo else t.replace(tzinfo=CHINA)).astimezone(dt.UTC)
    raise PayloadError(f"{field} must be ISO 8601 text or epoch number", [{"field": field, "message": "bad time"}])


def _device_time(value: Any, received: dt.datetime, field: str = "ts") -> dt.datetime:
    if value is None:
        return received
    t = parse_time(value, field)
    # A device clock far in the future would freeze the device's ordering; trust our clock then.
    return received if t - received > MAX_FUTURE else t


def derived_msg_id(device_key: str, ts: dt.datetime, values: dict, flags: dict) -> str:
    """Idempotence key for messages without an id: same device, time and readings = same message."""
    body = json.dumps([device_key, ts.isoformat(), values, flags], sort_keys=True, ensure_ascii=False)
    return "d:" + hashlib.sha1(body.encode()).hexdigest()[:24]


def _key(value: Any, field: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)) or not str(value).strip():
        raise PayloadError(f"{field} must be a non-empty string", [{"field": field, "message": "bad device id"}])
    key = str(value).strip()
    if len(key) > 64:
        raise PayloadError(f"{field} is longer than 64 characters", [{"field": field, "message": "too long"}])
    return key


def _reading(*, device_key: str, ts_value: Any, fields: dict, source: str, raw: Any,
             msg_id: Any = None, alt_keys: tuple[str, ...] = ()) -> Reading:
    received = dt.datetime.now(dt.UTC)
    ts = _device_time(ts_value, received)
    values, flags = normalise(fields)
    if msg_id is not None and (not isinstance(msg_id, (str, int)) or isinstance(msg_id, bool) or len(str(msg_id)) > 100):
        raise PayloadError("msg_id must be a string of at most 100 characters",
                           [{"field": "msg_id", "message": "bad message id"}])
    mid = str(msg_id) if msg_id not in (None, "") else derived_msg_id(device_key, ts, values, flags)
    return Reading(device_key=device_key, alt_keys=alt_keys, ts=ts, source=source, msg_id=mid, values=values,
                   flags=flags, raw=raw, received_at=received, received_mono=time.monotonic())


def _items(body: Any, what: str) -> list:
    items = body if isinstance(body, list) else [body]
    if not items:
        raise PayloadError(f"empty {what} list")
    if len(items) > MAX_ITEMS:
        raise PayloadError(f"at most {MAX_ITEMS} messages per request, got {len(items)}")
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise PayloadError(f"{what} #{i} must be a JSON object, not {type(item).__name__}",
                               [{"field": f"[{i}]", "message": "not an object"}])
    return items


def _located(i: int, n: int, exc: PayloadError) -> PayloadError:
    if n == 1:
        return exc
    return PayloadError(f"message #{i}: {exc.detail}", [{**e, "row": i} for e in exc.errors] or [{"row": i}])


# -- plain JSON -------------------------------------------------------------------------------
def parse_plain(body: Any, source: str = "http") -> list[Reading]:
    """``{"imei": …, "ts": …, "tilt_deg": …}`` or a list of them (docs/telemetry.md)."""
    items = _items(body, "telemetry")
    out = []
    for i, item in enumerate(items):
        try:
            present = [k for k in DEVICE_KEYS if item.get(k) not in (None, "")]
            if not present:
                raise PayloadError(f"a message needs a device id: one of {', '.join(DEVICE_KEYS)}",
                                   [{"field": "imei", "message": "missing"}])
            keys = tuple(_key(item[k], k) for k in present)
            out.append(_reading(device_key=keys[0], alt_keys=keys[1:], ts_value=item.get("ts"), fields=item,
                                source=source, raw=item, msg_id=item.get("msg_id")))
        except PayloadError as exc:
            raise _located(i, len(items), exc) from None
    return out


# -- CTWing -----------------------------------------------------------------------------------
def _ctwing_fields(payload: Any) -> dict:
    """物模型 payload (serviceData or flat fields); 透传 APPdata only when it is JSON text."""
    if not isinstance(payload, dict):
        return {}
    if "serviceData" in payload and isinstance(payload["serviceData"], dict):
        return payload["serviceData"]
    if "APPdata" in payload:
        try:
            decoded = json.loads(base64.b64decode(payload["APPdata"], validate=True))
        except (binascii.Error, ValueError, TypeError):
            return {}  # a binary vendor frame: kept raw, counts as a heartbeat
        return decoded if isinstance(decoded, dict) else {}
    return payload


def parse_ctwing(body: Any) -> list[Reading]:
    items = _items(body, "CTWing push")
    out = []
    for i, item in enumerate(items):
        try:
            kind = item.get("messageType")
            if kind not in ("dataReport", "deviceOnlineOfflineReport"):
                if not isinstance(kind, str):
                    raise PayloadError("CTWing push needs messageType", [{"field": "messageType", "message": "missing"}])
                continue  # commandResponse, eventReport … carry no readings we use
            keys = [_key(item[k], k) for k in ("IMEI", "deviceId") if item.get(k) not in (None, "", "undefined")]
            if not keys:
                raise PayloadError("CTWing push needs IMEI or deviceId", [{"field": "IMEI", "message": "missing"}])
            ts = item.get("timestamp")
            if kind == "deviceOnlineOfflineReport":
                r = _reading(device_key=keys[0], alt_keys=tuple(keys[1:]), ts_value=ts, fields={}, source="ctwing",
                             raw=item, msg_id=f"ctwing:online:{keys[0]}:{ts}:{item.get('eventType')}")
                r.online = str(item.get("eventType")) == "1"
            else:
                sn = item.get("upPacketSN")
                mid = f"ctwing:{ts}:{sn}" if sn not in (None, -1, "-1") and ts is not None else None
                r = _reading(device_key=keys[0], alt_keys=tuple(keys[1:]), ts_value=ts,
                             fields=_ctwing_fields(item.get("payload")), source="ctwing", raw=item, msg_id=mid)
            out.append(r)
        except PayloadError as exc:
            raise _located(i, len(items), exc) from None
    return out


# -- OneNET -----------------------------------------------------------------------------------
def onenet_signature(token: str, nonce: str, msg: str) -> str:
    """base64(md5(token + nonce + msg)) — OneNET 数据推送 URL and message check."""
    return base64.b64encode(hashlib.md5((token + nonce + msg).encode()).digest()).decode()


def check_onenet_signature(token: str, nonce: Any, msg_texts: list[str], signature: Any) -> None:
    if not isinstance(nonce, str) or not isinstance(signature, str):
        raise PayloadError("OneNET push needs nonce and msg_signature", [{"field": "msg_signature", "message": "missing"}])
    if not any(hmac.compare_digest(onenet_signature(token, nonce, m), signature) for m in msg_texts):
        from geoapi.errors import UnauthorizedError

        raise UnauthorizedError("OneNET msg_signature does not match base64(md5(token + nonce + msg))")


_MSG_KEY = re.compile(r'"msg"\s*:\s*')


def raw_msg_text(body_text: str) -> str | None:
    """The exact text of the top-level ``msg`` value, as the platform signed it."""
    m = _MSG_KEY.search(body_text)
    if not m:
        return None
    try:
        _, end = json.JSONDecoder().raw_decode(body_text, m.end())
    except ValueError:
        return None
    return body_text[m.end():end]


def parse_onenet(body: Any) -> list[Reading]:
    """``{"msg": {…} | [{…}], "msg_signature", "nonce"}``; type 1 datapoint, type 2 online/offline."""
    if not isinstance(body, dict) or "msg" not in body:
        raise PayloadError("OneNET push must be an object with msg", [{"field": "msg", "message": "missing"}])
    msg = body["msg"]
    if isinstance(msg, str):
        try:
            msg = json.loads(msg)
        except ValueError:
            raise PayloadError("OneNET msg is text but not JSON", [{"field": "msg", "message": "not JSON"}]) from None
    items = _items(msg, "OneNET msg")
    out = []
    for i, item in enumerate(items):
        try:
            kind = item.get("type")
            keys = [_key(item[k], k) for k in ("imei", "dev_id") if item.get(k) not in (None, "")]
            if not keys:
                raise PayloadError("OneNET msg needs dev_id or imei", [{"field": "dev_id", "message": "missing"}])
            at = item.get("at")
            if kind == 1:
                ds, value = item.get("ds_id"), item.get("value")
                fields = value if isinstance(value, dict) else {str(ds): value}
                r = _reading(device_key=keys[0], alt_keys=tuple(keys[1:]), ts_value=at, fields=fields,
                             source="onenet", raw=item, msg_id=f"onenet:{ds}:{at}")
            elif kind == 2:
                r = _reading(device_key=keys[0], alt_keys=tuple(keys[1:]), ts_value=at, fields={}, source="onenet",
                             raw=item, msg_id=f"onenet:status:{at}:{item.get('status')}")
                r.online = str(item.get("status")) == "1"
            else:
                raise PayloadError(f"OneNET msg type must be 1 (datapoint) or 2 (online/offline), not {kind!r}",
                                   [{"field": "type", "message": "unknown type"}])
            out.append(r)
        except PayloadError as exc:
            raise _located(i, len(items), exc) from None
    return out
