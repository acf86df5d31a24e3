"""Tile routes: MVT tiles (one layer or a composite), TileJSON, MapLibre styles, glyphs, sprite,
and the change feed. Handlers parse, call the tile service, and respond."""

from __future__ import annotations

import re
import threading
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response

from geoapi.api.deps import ReaderDep, StoreDep, require
from geoapi.errors import BadRequestError, LayerNotFoundError, NotFoundError
from geoapi.services.tiles import TilesRuntime, open_tiles
from tiles import assets
from tiles.filters import IGNORED_PARAMS, TileFilterError, parse_filters
from tiles.grid import TileRangeError
from tiles.service import CachePolicy, TileResult, UnknownLayerError, resolve_layers
from tiles.style import UnknownStyleError, style, style_layers
from tiles.tilejson import tilejson

router = APIRouter(tags=["瓦片 Tiles"])

MVT = "application/vnd.mapbox-vector-tile"
INTEGER_RE = re.compile(r"-?[0-9]{1,10}")
HOST_RE = re.compile(r"^[A-Za-z0-9.\-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$")
_lock = threading.Lock()
require_viewer = require("viewer")


# -- wiring --------------------------------------------------------------------------------
def startup(app: FastAPI) -> None:
    from geoapi.events import bus_of

    bus = bus_of(app)
    # Changed tiles also go out on GET /events, so an open map needs one live connection.
    publish_tile_changes(app, lambda notices: bus.publish("tiles", {"changes": notices}))


def shutdown(app: FastAPI) -> None:
    runtime = getattr(app.state, "tiles", None)
    if runtime is not None:
        runtime.close()
        app.state.tiles = None


def _runtime(app: FastAPI) -> TilesRuntime:
    runtime = getattr(app.state, "tiles", None)
    if runtime is None:
        with _lock:
            runtime = getattr(app.state, "tiles", None)
            if runtime is None:
                s = app.state.settings
                policy = CachePolicy(max_age=getattr(s, "tile_max_age", 60),
                                     live_max_age=getattr(s, "tile_live_max_age", 5))
                runtime = open_tiles(app.state.store, redis_url=s.redis_url, cache_size=s.tile_cache_size,
                                     policy=policy)
                app.state.tiles = runtime
    return runtime


async def get_runtime(request: Request) -> TilesRuntime:
    # async: a plain def dependency costs a thread-pool hop per tile; the runtime is built at
    # startup (publish_tile_changes), so this does not block the loop after that.
    return _runtime(request.app)


RuntimeDep = Annotated[TilesRuntime, Depends(get_runtime)]


def publish_tile_changes(app: FastAPI, listener) -> None:
    """Forward tile change notices (lists of dicts, see tiles.feed) to ``listener``, e.g. SSE."""
    _runtime(app).feed.add_listener(listener)


# -- helpers -------------------------------------------------------------------------------
def base_url(request: Request) -> str:
    """The address the client used, behind proxies too (X-Forwarded-Proto / X-Forwarded-Host)."""
    proto = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    host = request.headers.get("x-forwarded-host", "").split(",")[0].strip()
    if proto not in ("http", "https"):
        proto = request.url.scheme
    if not host or not HOST_RE.match(host):
        host = request.headers.get("host") or request.url.netloc
    prefix = request.headers.get("x-forwarded-prefix", "").rstrip("/")
    if prefix and not re.fullmatch(r"(/[A-Za-z0-9._~\-]+)+", prefix):
        prefix = ""
    return f"{proto}://{host}{prefix}{request.scope.get('root_path', '')}"


def _json(body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), media_type="application/json", headers=headers)


def _filter_params(request: Request) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in request.query_params.multi_items():
        out[key] = f"{out[key]},{value}" if key in out else value
    return out


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    bare = etag.removeprefix("W/")
    return any(t.strip() == "*" or t.strip().removeprefix("W/") == bare for t in if_none_match.split(","))


def _accepts_gzip(accept_encoding: str | None) -> bool:
    for part in (accept_encoding or "").split(","):
        name, _, q = part.strip().partition(";")
        if name.strip().lower() in ("gzip", "*"):
            return q.strip().replace(" ", "") not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False


def _tile_response(result: TileResult, if_none_match: str | None, accept_encoding: str | None) -> Response:
    headers = {"ETag": result.etag, "Cache-Control": result.cache_control, "Vary": "Accept-Encoding",
               "X-Tile-Cache": "hit" if result.cached else "miss"}
    if _matches(if_none_match, result.etag):
        return Response(status_code=304, headers=headers)
    if result.empty:
        return Response(status_code=204, headers=headers)
    if _accepts_gzip(accept_encoding):
        return Response(result.body, media_type=MVT, headers={**headers, "Content-Encoding": "gzip"})
    return Response(result.identity(), media_type=MVT, headers=headers)


# -- routes --------------------------------------------------------------------------------
@router.get("/tiles/changes", summary="瓦片变更通知 (tiles changed since a sequence number)")
def tile_changes(runtime: RuntimeDep, _: ReaderDep,
                 since: Annotated[int, Query(ge=0, description="last seq seen; 0 = all kept")] = 0,
                 limit: Annotated[int, Query(ge=1, le=10_000)] = 1000) -> Response:
    items, last = runtime.feed.since(since, limit)
    return _json({"seq": last, "changes": items}, {"Cache-Control": "no-store"})


@router.get("/tiles/{layers}/tilejson.json", summary="TileJSON 3.0 (one layer or a comma list)")
def tile_json(layers: str, request: Request, store: StoreDep, _: ReaderDep) -> Response:
    try:
        specs = resolve_layers(store.registry, layers)
    except UnknownLayerError as exc:
        raise LayerNotFoundError(str(exc)) from None
    params = {k: v for k, v in _filter_params(request).items() if k not in IGNORED_PARAMS}
    try:
        parse_filters(params, specs)
    except TileFilterError as exc:
        raise BadRequestError(str(exc)) from None
    doc = tilejson(specs, base_url(request), bounds=tuple(store.bounds), query=params or None)
    return _json(doc, {"Cache-Control": "public, max-age=60"})


def _tile_parameters() -> list[dict]:
    """OpenAPI parameters of the tile route, which reads them from the request itself."""
    def path(name: str, schema: dict, text: str) -> dict:
        return {"name": name, "in": "path", "required": True, "schema": schema, "description": text}

    return [path("layers", {"type": "string"}, "layer id, or a comma list for a composite tile"),
            path("z", {"type": "integer", "minimum": 0, "maximum": 22}, "zoom"),
            path("x", {"type": "integer", "minimum": 0}, "column"),
            path("y", {"type": "integer", "minimum": 0}, "row (XYZ, from the top)"),
            {"name": "filters", "in": "query", "required": False, "style": "form", "explode": True,
             "schema": {"type": "object", "additionalProperties": {"type": "string"}},
             "description": "property filters as on items (status=破损&well_use=雨水), updated_since="}]


def _tile_number(path_params: dict, name: str) -> int:
    value = path_params[name]
    if not INTEGER_RE.fullmatch(value):  # the grid check (tiles.grid) gives the range message
        raise BadRequestError(f"tile {name} must be a whole number, got {value!r}")
    return int(value)


@router.get("/tiles/{layers}/{z}/{x}/{y}.mvt", summary="矢量瓦片 Mapbox Vector Tile",
            openapi_extra={"parameters": _tile_parameters()},
            responses={200: {"content": {MVT: {}}}, 204: {"description": "empty tile"},
                       304: {"description": "not modified"}})
async def tile(request: Request) -> Response:
    # The map asks for dozens of these per view, and a z16 tile takes PostGIS about a millisecond:
    # the handler reads its own parameters (no per-parameter validation, no dependency graph)
    # and is async; the runtime renders on the event loop where it can (services/tiles.py).
    await require_viewer(request, request.headers.get("authorization"))
    p = request.path_params
    z, x, y = (_tile_number(p, n) for n in "zxy")
    try:
        result = await _runtime(request.app).tile(p["layers"], z, x, y, _filter_params(request))
    except UnknownLayerError as exc:
        raise LayerNotFoundError(str(exc)) from None
    except (TileRangeError, TileFilterError) as exc:
        raise BadRequestError(str(exc)) from None
    return _tile_response(result, request.headers.get("if-none-match"), request.headers.get("accept-encoding"))


@router.get("/styles/{name}.json", summary="MapLibre 样式 (yizhangtu = 一张图, or a layer id)")
def map_style(name: str, request: Request, store: StoreDep, _: ReaderDep) -> Response:
    try:
        specs = style_layers(store.registry, name)
    except UnknownStyleError as exc:
        raise NotFoundError(str(exc)) from None
    return _json(style(name, specs, base_url(request)), {"Cache-Control": "public, max-age=60"})


@router.get("/fonts/{fontstack}/{span}.pbf", summary="glyphs (SDF PBF)")
def glyphs(fontstack: str, span: str) -> Response:
    try:
        data = assets.glyph_range(fontstack, span)
    except assets.GlyphRangeError as exc:
        raise BadRequestError(str(exc)) from None
    return Response(data, media_type="application/x-protobuf", headers={"Cache-Control": "public, max-age=86400"})


@router.get("/sprites/{name}.json", summary="sprite index")
def sprite_index(name: str) -> Response:
    return Response(assets.SPRITE_JSON, media_type="application/json")


@router.get("/sprites/{name}.png", summary="sprite sheet")
def sprite_sheet(name: str) -> Response:
    return Response(assets.sprite_png(), media_type="image/png")
