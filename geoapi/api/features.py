"""OGC API - Features: collections and items (Part 1 reads, Part 4 writes) with history."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Query, Request, Response

from geoapi.api.deps import EditorDep, LayerDep, ReaderDep, SettingsDep, StoreDep
from geoapi.api.params import clamp_limit, parse_bbox, parse_datetime, parse_filters, parse_sortby
from geoapi.errors import BadRequestError, FeatureNotFoundError, PreconditionFailedError
from geoapi.geojson import feature_to_geojson, parse_feature
from geoapi.storage import FeatureQuery
from layers import LayerSpec

router = APIRouter(tags=["OGC API - Features"])

GEOJSON = "application/geo+json"
ETAG_RE = re.compile(r'^(?:W/)?"(?P<layer>[a-z0-9_]+)-(?P<id>\d+)-v(?P<version>\d+)"$')


def json_response(body: Any, status: int = 200, media_type: str = "application/json", headers=None) -> Response:
    return Response(orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS), status_code=status,
                    media_type=media_type, headers=headers)


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def collection_info(request: Request, layer: LayerSpec, bounds) -> dict:
    base = f"{base_url(request)}/collections/{layer.id}"
    return {
        "id": layer.id,
        "title": layer.title,
        "description": layer.description or layer.title_en,
        "itemType": "feature",
        "crs": ["http://www.opengis.net/def/crs/OGC/1.3/CRS84", "http://www.opengis.net/def/crs/EPSG/0/4490"],
        "storageCrs": "http://www.opengis.net/def/crs/EPSG/0/4490",
        "extent": {"spatial": {"bbox": [list(bounds)], "crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84"}},
        "links": [
            {"href": base, "rel": "self", "type": "application/json", "title": layer.title},
            {"href": f"{base}/items", "rel": "items", "type": GEOJSON, "title": f"{layer.title} 要素"},
            {"href": f"{base_url(request)}/tiles/{layer.id}/tilejson.json", "rel": "tiles",
             "type": "application/json", "title": "TileJSON"},
        ],
    }


@router.get("/collections", summary="All layers as OGC collections")
def list_collections(request: Request, store: StoreDep, settings: SettingsDep, _: ReaderDep):
    return json_response({
        "collections": [collection_info(request, layer, settings.city_bounds) for layer in store.registry],
        "links": [{"href": f"{base_url(request)}/collections", "rel": "self", "type": "application/json"}],
    })


@router.get("/collections/{layer}", summary="One layer's metadata")
def get_collection(request: Request, layer: LayerDep, settings: SettingsDep, _: ReaderDep):
    return json_response(collection_info(request, layer, settings.city_bounds))


def page_links(request: Request, offset: int, limit: int, returned: int, matched: int | None) -> list[dict]:
    links = [{"href": str(request.url), "rel": "self", "type": GEOJSON}]
    if matched is None or offset + returned < matched:
        if returned == limit:
            links.append({"href": str(request.url.include_query_params(offset=offset + limit, limit=limit)),
                          "rel": "next", "type": GEOJSON})
    if offset > 0:
        links.append({"href": str(request.url.include_query_params(offset=max(0, offset - limit), limit=limit)),
                      "rel": "prev", "type": GEOJSON})
    return links


@router.get("/collections/{layer}/items", summary="Features of a layer (GeoJSON)")
def list_items(
    request: Request, layer: LayerDep, store: StoreDep, settings: SettingsDep, _: ReaderDep,
    bbox: Annotated[str | None, Query(description="minlon,minlat,maxlon,maxlat (EPSG:4326/4490)")] = None,
    limit: Annotated[int | None, Query(description="page size; values above the maximum are clamped")] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    sortby: Annotated[str | None, Query(description="fields, '-' for descending: -updated_at,name")] = None,
    updated_since: Annotated[str | None, Query(description="ISO 8601; only features changed since")] = None,
):
    lim = clamp_limit(limit, settings.default_limit, settings.max_limit)
    q = FeatureQuery(bbox=parse_bbox(bbox), filters=parse_filters(layer, request.query_params),
                     updated_since=parse_datetime(updated_since, "updated_since"), limit=lim, offset=offset,
                     sortby=parse_sortby(layer, sortby))
    page = store.query(layer.id, q)
    body = {
        "type": "FeatureCollection",
        "features": [feature_to_geojson(f) for f in page.features],
        "numberReturned": len(page.features),
        "numberMatched": page.number_matched,
        "timeStamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "links": page_links(request, offset, lim, len(page.features), page.number_matched),
    }
    return json_response(body, media_type=GEOJSON)


def _feature_response(request: Request, feature, status: int = 200) -> Response:
    headers = {"ETag": feature.etag}
    if status == 201:
        headers["Location"] = f"{base_url(request)}/collections/{feature.layer}/items/{feature.id}"
    return json_response(feature_to_geojson(feature), status=status, media_type=GEOJSON, headers=headers)


def _if_match_version(layer_id: str, fid: int, if_match: str | None) -> int | None:
    if not if_match or if_match.strip() == "*":
        return None
    m = ETAG_RE.match(if_match.strip())
    if not m or m["layer"] != layer_id or int(m["id"]) != fid:
        raise PreconditionFailedError(f"If-Match {if_match} is not an ETag of {layer_id}/{fid}")
    return int(m["version"])


@router.get("/collections/{layer}/items/{fid}", summary="One feature")
def get_item(request: Request, layer: LayerDep, fid: int, store: StoreDep, _: ReaderDep):
    feature = store.get(layer.id, fid)
    if feature is None:
        raise FeatureNotFoundError(f"no feature {fid} in layer {layer.id}")
    return _feature_response(request, feature)


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    if not raw:
        raise BadRequestError("empty body: send a GeoJSON Feature")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequestError(f"the body is not valid JSON: {exc}") from exc


@router.post("/collections/{layer}/items", status_code=201, summary="Add a feature")
async def create_item(request: Request, layer: LayerDep, store: StoreDep, who: EditorDep):
    props, geom = parse_feature(await _json_body(request))
    feature = store.create(layer.id, props, geom, actor=who.actor)
    return _feature_response(request, feature, status=201)


@router.put("/collections/{layer}/items/{fid}", summary="Replace a feature")
async def replace_item(request: Request, layer: LayerDep, fid: int, store: StoreDep, who: EditorDep,
                       if_match: Annotated[str | None, Header()] = None):
    props, geom = parse_feature(await _json_body(request))
    feature = store.replace(layer.id, fid, props, geom, actor=who.actor,
                            if_version=_if_match_version(layer.id, fid, if_match))
    return _feature_response(request, feature)


@router.patch("/collections/{layer}/items/{fid}", summary="Change some properties and/or the geometry")
async def patch_item(request: Request, layer: LayerDep, fid: int, store: StoreDep, who: EditorDep,
                     if_match: Annotated[str | None, Header()] = None):
    props, geom = parse_feature(await _json_body(request), geometry_required=False)
    feature = store.patch(layer.id, fid, props, geom, actor=who.actor,
                          if_version=_if_match_version(layer.id, fid, if_match))
    return _feature_response(request, feature)


@router.delete("/collections/{layer}/items/{fid}", status_code=204, summary="Delete a feature")
def delete_item(layer: LayerDep, fid: int, store: StoreDep, who: EditorDep,
                if_match: Annotated[str | None, Header()] = None):
    store.delete(layer.id, fid, actor=who.actor, if_version=_if_match_version(layer.id, fid, if_match))
    return Response(status_code=204)


@router.get("/collections/{layer}/items/{fid}/history", summary="Who changed what, when")
def item_history(layer: LayerDep, fid: int, store: StoreDep, _: ReaderDep):
    entries = store.history(layer.id, fid)
    if not entries:
        raise FeatureNotFoundError(f"no history for feature {fid} in layer {layer.id}")
    return json_response({
        "layer": layer.id, "id": fid,
        "entries": [{"version": e.version, "op": e.op, "actor": e.actor, "at": e.at.isoformat(),
                     "batch_id": e.batch_id, "before": e.before, "after": e.after} for e in entries],
    })
