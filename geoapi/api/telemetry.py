"""Telemetry routes: device pushes (plain JSON, CTWing, OneNET), alarms, the live event feed
(SSE) and the 窨井盖一张图 dashboard. Handlers parse, call the telemetry service, respond."""

from __future__ import annotations

import asyncio
import datetime as dt
import hmac
import logging
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field
from sse_starlette.sse import EventSourceResponse

from geoapi.api.deps import DispatcherDep, ReaderDep, SettingsDep, StoreDep
from geoapi.auth import authenticate
from geoapi.errors import ForbiddenError, UnauthorizedError
from geoapi.events import EventBus, bus_of
from geoapi.settings import Settings
from geoapi.storage import Store
from geoapi.storage.telemetry_store import AlarmFilter, TelemetryStore
from geoapi.telemetry.adapters import (
    check_onenet_signature,
    onenet_signature,
    parse_ctwing,
    parse_onenet,
    parse_plain,
    raw_msg_text,
)
from geoapi.telemetry.model import Reading
from geoapi.telemetry.normalize import PayloadError
from geoapi.telemetry.service import TelemetryService

router = APIRouter(tags=["监测告警 Telemetry"])
log = logging.getLogger("geoapi.telemetry.http")
MAX_BODY = 8 * 1024 * 1024
ALARM_STATES = ("open", "acknowledged", "cleared", "resolved")


# -- wiring ----------------------------------------------------------------------------------------
def startup(app: FastAPI) -> None:
    s: Settings = app.state.settings
    service = TelemetryService(app.state.store, bus_of(app), thresholds_file=s.telemetry_thresholds,
                               tick_s=s.telemetry_tick_s).start()
    app.state.telemetry = service
    app.state.mqtt = None
    if s.mqtt_url:
        from geoapi.telemetry.mqtt import MqttSubscriber

        app.state.mqtt = MqttSubscriber(s.mqtt_url, s.mqtt_topic, service, client_id=s.mqtt_client_id).start()


def shutdown(app: FastAPI) -> None:
    if getattr(app.state, "mqtt", None) is not None:
        app.state.mqtt.stop()
        app.state.mqtt = None
    if getattr(app.state, "telemetry", None) is not None:
        app.state.telemetry.stop()
        app.state.telemetry = None


async def get_service(request: Request) -> TelemetryService:
    return request.app.state.telemetry


async def get_bus(request: Request) -> EventBus:
    return bus_of(request.app)


ServiceDep = Annotated[TelemetryService, Depends(get_service)]
BusDep = Annotated[EventBus, Depends(get_bus)]


# -- push authentication ------------------------------------------------------------------------------
def _push_auth(request: Request, store: Store, token: str | None, authorization: str | None) -> None:
    """A per-platform token (X-Push-Token header or ?token=) or an API key with the dispatcher role."""
    given = request.headers.get("x-push-token") or request.query_params.get("token")
    if given and token and hmac.compare_digest(given.encode(), token.encode()):
        return
    if authorization:
        scheme, _, key = authorization.partition(" ")
        if scheme.lower() == "bearer" and key.strip():
            principal = authenticate(store.engine, key.strip())
            if not principal.has("dispatcher"):
                raise ForbiddenError(f"your key has the {principal.role} role; pushing telemetry needs dispatcher")
            return
    if given:
        raise UnauthorizedError("wrong push token")
    raise UnauthorizedError("telemetry pushes need the platform token (X-Push-Token or ?token=) "
                            "or Authorization: Bearer <API key with the dispatcher role>")


async def _json_body(request: Request) -> tuple[Any, str]:
    body = await request.body()
    if len(body) > MAX_BODY:
        raise PayloadError(f"body larger than {MAX_BODY} bytes")
    try:
        return orjson.loads(body), body.decode("utf-8")
    except (orjson.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PayloadError(f"body is not valid UTF-8 JSON: {exc}") from None


async def _ingest(service: TelemetryService, readings: list[Reading]) -> dict[str, Any]:
    result = await asyncio.wrap_future(service.submit(readings))
    return result.as_dict()


def _logged(request: Request, exc: PayloadError) -> PayloadError:
    log.warning("%s %s rejected: %s", request.method, request.url.path, exc.detail)
    return exc


# -- ingest ---------------------------------------------------------------------------------------------
async def _push(request: Request, store, service, token: str | None, authorization: str | None,
                parse) -> dict[str, Any]:
    """A token- or key-authenticated push: parse the JSON body with ``parse`` and ingest it."""
    _push_auth(request, store, token, authorization)
    try:
        body, _ = await _json_body(request)
        readings = parse(body)
    except PayloadError as exc:
        raise _logged(request, exc) from None
    return await _ingest(service, readings)


@router.post("/telemetry", summary="设备上报 (plain JSON: one message or a list)")
async def post_telemetry(request: Request, store: StoreDep, settings: SettingsDep, service: ServiceDep,
                         authorization: Annotated[str | None, Header()] = None) -> dict[str, Any]:
    return await _push(request, store, service, settings.telemetry_push_token, authorization, parse_plain)


@router.post("/telemetry/ctwing", summary="CTWing (天翼物联 AEP) subscription push")
async def post_ctwing(request: Request, store: StoreDep, settings: SettingsDep, service: ServiceDep,
                      authorization: Annotated[str | None, Header()] = None) -> dict[str, Any]:
    return await _push(request, store, service, settings.ctwing_push_token, authorization, parse_ctwing)


def _onenet_token(settings: Settings) -> str:
    if not settings.onenet_token:
        raise ForbiddenError("OneNET push is not configured: set GEOAPI_ONENET_TOKEN to the token of the push rule")
    return settings.onenet_token


@router.get("/telemetry/onenet", summary="OneNET push URL verification", response_class=PlainTextResponse)
def verify_onenet(settings: SettingsDep, msg: str, nonce: str, signature: str) -> str:
    token = _onenet_token(settings)
    if not hmac.compare_digest(onenet_signature(token, nonce, msg).encode(), signature.encode()):
        raise UnauthorizedError("signature does not match base64(md5(token + nonce + msg))")
    return msg


@router.post("/telemetry/onenet", summary="OneNET 数据推送 (signed with the push token)")
async def post_onenet(request: Request, settings: SettingsDep, service: ServiceDep) -> dict[str, Any]:
    token = _onenet_token(settings)
    try:
        body, text = await _json_body(request)
        if not isinstance(body, dict):
            raise PayloadError("OneNET push must be a JSON object")
        msg = body.get("msg")
        texts = [m for m in (raw_msg_text(text), msg if isinstance(msg, str) else
                             orjson.dumps(msg).decode()) if m is not None]
        check_onenet_signature(token, body.get("nonce"), texts, body.get("msg_signature"))
        readings = parse_onenet(body)
    except PayloadError as exc:
        raise _logged(request, exc) from None
    return await _ingest(service, readings)


@router.get("/telemetry/devices/{device_key}", summary="最近上报 (latest readings of one device)")
def device_telemetry(device_key: str, store: StoreDep, _: ReaderDep,
                     limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
    return {"device_key": device_key, "readings": TelemetryStore(store).recent_telemetry(device_key, limit)}


# -- alarms -------------------------------------------------------------------------------------------------
class AlarmQuery(BaseModel):
    state: list[str] | None = Field(None, description=f"any of {', '.join(ALARM_STATES)}; 'active' = open+acknowledged")
    type: list[str] | None = None
    layer: str | None = None
    district: str | None = Field(None, description="admin_code or district name")
    since: dt.datetime | None = None
    limit: int = Field(100, ge=1, le=1000)
    offset: int = Field(0, ge=0)


class AlarmAction(BaseModel):
    note: str | None = Field(None, max_length=1000)


def _filter(q: AlarmQuery) -> AlarmFilter:
    states = None
    if q.state:
        states = [s for part in q.state for s in part.split(",") if s]
        states = [x for s in states for x in (("open", "acknowledged") if s == "active" else (s,))]
        bad = sorted(set(states) - set(ALARM_STATES))
        if bad:
            raise PayloadError(f"unknown alarm state {', '.join(bad)}; use {', '.join(ALARM_STATES)} or active")
    types = [t for part in q.type for t in part.split(",") if t] if q.type else None
    since = q.since.replace(tzinfo=dt.UTC) if q.since and q.since.tzinfo is None else q.since
    return AlarmFilter(state=states, type=types, layer=q.layer, district=q.district, since=since,
                       limit=q.limit, offset=q.offset)


@router.get("/alarms", summary="告警列表")
def list_alarms(q: Annotated[AlarmQuery, Query()], store: StoreDep, _: ReaderDep) -> dict[str, Any]:
    alarms, total = TelemetryStore(store).list_alarms(_filter(q))
    return {"alarms": alarms, "number_matched": total, "number_returned": len(alarms)}


@router.get("/alarms/{alarm_id}", summary="告警详情 (with its history)")
def get_alarm(alarm_id: int, store: StoreDep, _: ReaderDep) -> dict[str, Any]:
    db = TelemetryStore(store)
    return {**db.alarm(alarm_id), "history": db.alarm_history(alarm_id)}


@router.post("/alarms/{alarm_id}/ack", summary="确认告警 (dispatcher)")
async def ack_alarm(alarm_id: int, who: DispatcherDep, service: ServiceDep,
                    body: AlarmAction | None = None) -> dict[str, Any]:
    return await asyncio.wrap_future(service.acknowledge(alarm_id, who.actor, body.note if body else None))


@router.post("/alarms/{alarm_id}/resolve", summary="处置完成 (dispatcher, with a note)")
async def resolve_alarm(alarm_id: int, who: DispatcherDep, service: ServiceDep,
                        body: AlarmAction | None = None) -> dict[str, Any]:
    return await asyncio.wrap_future(service.resolve(alarm_id, who.actor, body.note if body else None))


# -- live feed ------------------------------------------------------------------------------------------------
@router.get("/events", summary="实时事件 (Server-Sent Events: alarm, status, tiles …)")
async def events(request: Request, bus: BusDep, _: ReaderDep,
                 kinds: Annotated[str | None, Query(description="comma-separated kinds, e.g. alarm,status")] = None,
                 last_event_id: Annotated[str | None, Header()] = None,
                 after: Annotated[int | None, Query(description="resume after this id (like Last-Event-ID)")] = None,
                 timeout: Annotated[float | None, Query(gt=0, le=3600, description="close after N s")] = None):
    wanted = frozenset(k for k in kinds.split(",") if k) if kinds else None
    if after is None:
        try:
            after = int(last_event_id) if last_event_id else bus.last_seq
        except ValueError:
            raise PayloadError(f"Last-Event-ID must be an event number, not {last_event_id!r}") from None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout if timeout else None

    async def stream():
        seq = after
        items, gap, seq = bus.since(seq, wanted)
        if gap:
            yield {"event": "reset", "data": "some events were dropped from the buffer; reload the state"}
        while True:
            for e in items:
                yield {"id": str(e.seq), "event": e.kind,
                       "data": orjson.dumps({**e.data, "seq": e.seq, "at": e.at}).decode()}
            if (deadline is not None and loop.time() >= deadline) or await request.is_disconnected():
                return
            wait = 15.0 if deadline is None else max(0.0, min(15.0, deadline - loop.time()))
            await bus.wait_after(seq, wait)
            items, _gap, seq = bus.since(seq, wanted)

    return EventSourceResponse(stream(), ping=15)


# -- dashboard --------------------------------------------------------------------------------------------------
@router.get("/dashboard/manholes", summary="窨井盖一张图 summary")
def dashboard_manholes(store: StoreDep, _: ReaderDep) -> dict[str, Any]:
    return TelemetryStore(store).dashboard_manholes()
