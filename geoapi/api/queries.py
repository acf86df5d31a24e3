"""Spatial queries for dispatchers and planners: nearest, along a route, coverage by unit."""

from __future__ import annotations

from typing import Annotated

import numpy as np
from fastapi import APIRouter, Query, Request, Response
from shapely.geometry import mapping

from geoapi import cql2
from geoapi import crs as crsmod
from geoapi.api.deps import ReaderDep, StoreDep
from geoapi.api.features import GEOJSON, json_response
from geoapi.api.params import parse_filters
from geoapi.errors import BadRequestError
from geoapi.geojson import feature_to_geojson
from geoapi.services import along as along_service
from geoapi.services import coverage as coverage_service
from geoapi.services import nearest as nearest_service
from geoapi.services.items import check_lonlat
from geoapi.storage import FeatureQuery, Store
from layers import LayerSpec

router = APIRouter(tags=["spatial queries"])


def _layers(store: Store, layer: str | None, layers: str | None) -> list[LayerSpec]:
    names = [n.strip() for n in ",".join(x for x in (layer, layers) if x).split(",") if n.strip()]
    if not names:
        raise BadRequestError("give layer= (or layers=a,b)")
    if len(names) > 20:
        raise BadRequestError("at most 20 layers at once")
    return [store.layer(n) for n in dict.fromkeys(names)]


def _conditions(store: Store, specs: list[LayerSpec], request: Request, filter_text: str | None,
                filter_lang: str | None) -> dict[str, list]:
    """Property filters (``status=破损``) and a CQL2 ``filter``, per layer, as SQL conditions."""
    out: dict[str, list] = {}
    for spec in specs:
        conds = store.where(spec.id, FeatureQuery(filters=parse_filters(spec, request.query_params)))
        if filter_text:
            conds.append(cql2.compile_filter(filter_text, layer=spec, table=store.table(spec.id),
                                             dialect=store.dialect, lang=filter_lang))
        out[spec.id] = conds
    return out


def _geojson_feature(feature, geometry, extra: dict) -> dict:
    out = feature_to_geojson(feature, geometry=geometry)
    out["properties"] = {"layer": feature.layer, **extra, **out["properties"]}
    return out


def _in_crs(geoms: list, out: crsmod.Crs) -> list:
    arr = np.array(geoms, dtype=object)
    if len(arr):
        arr = crsmod.geometry_from_storage(arr, out)
    return [mapping(g) for g in arr]


@router.get("/nearest", summary="最近的部件 — the k nearest features by geodesic distance")
def nearest(
    request: Request, store: StoreDep, _: ReaderDep,
    lon: Annotated[float, Query(description="longitude of the place (in crs)")],
    lat: Annotated[float, Query(description="latitude of the place (in crs)")],
    layer: Annotated[str | None, Query(description="layer id, e.g. manholes")] = None,
    layers: Annotated[str | None, Query(description="several layers: manholes,toilets")] = None,
    k: Annotated[int, Query(description=f"how many (1…{nearest_service.MAX_K})")] = 5,
    max_distance_m: Annotated[float | None, Query(description="only within this many metres")] = None,
    crs: Annotated[str | None, Query(description="EPSG:4326 | EPSG:4490 (default) | GCJ-02 | BD-09, "
                                     "for lon/lat in and geometries out")] = None,
    filter: Annotated[str | None, Query(description="CQL2-text filter, e.g. status IN ('破损','丢失')")] = None,
    filter_lang: Annotated[str | None, Query(alias="filter-lang")] = None,
) -> Response:
    if not 1 <= k <= nearest_service.MAX_K:
        raise BadRequestError(f"k must be between 1 and {nearest_service.MAX_K}; got {k}")
    if max_distance_m is not None and not 0 < max_distance_m <= 1_000_000:
        raise BadRequestError(f"max_distance_m must be > 0 and at most 1,000,000; got {max_distance_m:g}")
    frame = crsmod.parse_lonlat_crs(crs)
    check_lonlat(lon, lat)
    slon, slat = (float(v) for v in crsmod.to_storage_xy(lon, lat, frame))
    specs = _layers(store, layer, layers)
    req = nearest_service.NearestRequest(layers=[s.id for s in specs], lon=slon, lat=slat, k=k,
                                         max_distance_m=max_distance_m,
                                         conditions=_conditions(store, specs, request, filter, filter_lang))
    hits = nearest_service.nearest(store, req)
    geoms = _in_crs([h.feature.geometry for h in hits], frame)
    features = [_geojson_feature(h.feature, g, {"distance_m": round(h.distance_m, 2), "bearing_deg": h.bearing_deg})
                for h, g in zip(hits, geoms, strict=True)]
    return json_response({"type": "FeatureCollection", "features": features, "numberReturned": len(features),
                          "crs": frame.name, "query": {"lon": lon, "lat": lat, "k": k}}, media_type=GEOJSON)


@router.get("/along", summary="沿线部件 — features within a buffer of a road segment or a drawn line")
def along(
    request: Request, store: StoreDep, _: ReaderDep,
    layer: Annotated[str | None, Query(description="layer id, e.g. manholes")] = None,
    layers: Annotated[str | None, Query(description="several layers at once")] = None,
    segment: Annotated[str | None, Query(description="road_segments segment_code or id")] = None,
    line: Annotated[str | None, Query(description="WKT LINESTRING, or lon,lat;lon,lat;…")] = None,
    buffer_m: Annotated[float, Query(description="corridor half-width in metres")] = 30.0,
    crs: Annotated[str | None, Query(description="crs of line= and of the output geometries")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    filter: Annotated[str | None, Query(description="CQL2-text filter")] = None,
    filter_lang: Annotated[str | None, Query(alias="filter-lang")] = None,
) -> Response:
    if not 0 < buffer_m <= along_service.MAX_BUFFER_M:
        raise BadRequestError(f"buffer_m must be > 0 and at most {along_service.MAX_BUFFER_M}; got {buffer_m:g}")
    frame = crsmod.parse_lonlat_crs(crs)
    route = along_service.resolve_route(store, segment=segment, line=line, crs=frame)
    specs = _layers(store, layer, layers)
    result = along_service.along(store, route, buffer_m=buffer_m, limit=limit,
                                 conditions=_conditions(store, specs, request, filter, filter_lang))
    geoms = _in_crs([h.feature.geometry for h in result.hits], frame)
    features = [_geojson_feature(h.feature, g, {"chainage_m": round(h.chainage_m, 1), "offset_m": round(h.offset_m, 2)})
                for h, g in zip(result.hits, geoms, strict=True)]
    return json_response({"type": "FeatureCollection", "features": features, "numberReturned": len(features),
                          "numberMatched": result.matched, "route": result.describe(), "crs": frame.name},
                         media_type=GEOJSON)


@router.get("/coverage", summary="覆盖率统计 — counts, density and service-radius coverage per unit")
def coverage(
    request: Request, store: StoreDep, _: ReaderDep,
    layer: Annotated[str, Query(description="the asset layer to count, e.g. toilets")],
    by: Annotated[str, Query(description="district | unit_grid | road_segment")] = "district",
    radius_m: Annotated[float | None, Query(description="service radius; adds covered_share")] = None,
    format: Annotated[str, Query(description="json | geojson | csv")] = "json",
) -> Response:
    if format not in ("json", "geojson", "csv"):
        raise BadRequestError(f"format must be json, geojson or csv; got {format!r}")
    if radius_m is not None and not 0 < radius_m <= coverage_service.MAX_RADIUS_M:
        raise BadRequestError(f"radius_m must be > 0 and at most {coverage_service.MAX_RADIUS_M}; got {radius_m:g}")
    spec = store.layer(layer)
    conds = store.where(spec.id, FeatureQuery(filters=parse_filters(spec, request.query_params)))
    report = coverage_service.coverage(store, layer=spec.id, by=by, radius_m=radius_m,
                                       with_geometry=format == "geojson", conds=conds)
    if format == "csv":
        return Response(coverage_service.to_csv(report), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="coverage-{layer}-{by}.csv"'})
    if format == "geojson":
        return json_response(coverage_service.to_geojson(report), media_type=GEOJSON)
    return json_response(coverage_service.to_json(report))
