"""Items of a collection with the OGC API - Features query parameters beyond Part 1's basics:
CQL2 ``filter``, ``datetime``, ``near``/``radius_m``, ``crs``/``bbox-crs`` (Part 2)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field

import numpy as np

from geoapi import cql2
from geoapi import crs as crsmod
from geoapi.errors import BadRequestError
from geoapi.storage import Feature, FeatureQuery, Page, Store
from layers import LayerSpec

MAX_RADIUS_M = 100_000


@dataclass
class ItemsRequest:
    query: FeatureQuery
    filter: str | None = None
    filter_lang: str | None = None
    filter_crs: crsmod.Crs = crsmod.CRS84
    interval: tuple[dt.datetime | None, dt.datetime | None] | None = None  # on updated_at
    near: tuple[float, float] | None = None   # lon, lat (CGCS2000)
    radius_m: float | None = None
    extra: list = field(default_factory=list)  # further SQL conditions (e.g. a corridor)


def conditions(store: Store, layer: LayerSpec, req: ItemsRequest) -> list:
    """The SQL conditions the request adds to its FeatureQuery."""
    table = store.table(layer.id)
    conds = list(req.extra)
    if req.filter:
        conds.append(cql2.compile_filter(req.filter, layer=layer, table=table, dialect=store.dialect,
                                         lang=req.filter_lang, filter_crs=req.filter_crs))
    if req.interval:
        start, end = req.interval
        if start is not None:
            conds.append(table.c.updated_at >= start)
        if end is not None:
            conds.append(table.c.updated_at <= end)
    if req.near is not None:
        conds.append(cql2.near_condition(store.dialect, table, req.near[0], req.near[1], req.radius_m))
    return conds


def find_items(store: Store, layer: LayerSpec, req: ItemsRequest) -> Page:
    q = req.query
    return store.query(layer.id, dataclasses.replace(q, conditions=[*q.conditions, *conditions(store, layer, req)]))


def to_crs(features: list[Feature], out: crsmod.Crs) -> list:
    """The features' geometries in ``out`` (vectorised; CRS84 = as stored)."""
    geoms = np.array([f.geometry for f in features], dtype=object)
    if not len(geoms) or out == crsmod.CRS84:
        return list(geoms)
    return list(crsmod.geometry_from_storage(geoms, out))


# -- parameter parsing that needs the CRS module ----------------------------------------------
def parse_near(near: str | None, radius_m: float | None) -> tuple[tuple[float, float] | None, float | None]:
    if near is None and radius_m is None:
        return None, None
    if near is None or radius_m is None:
        raise BadRequestError("near=lon,lat and radius_m= go together")
    try:
        lon, lat = (float(p) for p in near.split(","))
    except ValueError:
        raise BadRequestError(f"near must be lon,lat; got {near!r}") from None
    check_lonlat(lon, lat)
    if not 0 < radius_m <= MAX_RADIUS_M:
        raise BadRequestError(f"radius_m must be > 0 and at most {MAX_RADIUS_M}; got {radius_m:g}")
    return (lon, lat), radius_m


def check_lonlat(lon: float, lat: float) -> None:
    if not np.isfinite([lon, lat]).all():
        raise BadRequestError("lon/lat must be finite numbers")
    if not -90 <= lat <= 90:
        raise BadRequestError(f"latitude {lat:g} is out of range (−90…90); is the order lon,lat?")
    if not -180 <= lon <= 180:
        raise BadRequestError(f"longitude {lon:g} is out of range (−180…180)")


def parse_interval(text: str | None) -> tuple[dt.datetime | None, dt.datetime | None] | None:
    """OGC ``datetime``: an instant, a date (that whole day), or ``start/end`` with ``..`` open."""
    if not text:
        return None
    if "/" in text:
        a, _, b = text.partition("/")
        start = None if a in ("", "..") else _instant(a, end=False)
        end = None if b in ("", "..") else _instant(b, end=True)
        if start and end and start > end:
            raise BadRequestError(f"datetime interval {text!r} ends before it starts")
        return start, end
    if len(text) == 10:  # a date: the whole day
        return _instant(text, end=False), _instant(text, end=True)
    t = _instant(text, end=False)
    return t, t


def _instant(text: str, *, end: bool) -> dt.datetime:
    try:
        if len(text) == 10:
            d = dt.date.fromisoformat(text)
            t = dt.datetime.combine(d, dt.time.max if end else dt.time.min)
        else:
            t = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequestError(f"datetime must be RFC 3339 (2024-05-01T08:00:00Z), a date, or an interval "
                              f"a/b with '..' for open ends; got {text!r}") from None
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def parse_properties(layer: LayerSpec, text: str | None) -> list[str] | None:
    if text is None:
        return None
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if layer.field(n) is None]
    if unknown:
        raise BadRequestError(f"properties: {', '.join(map(repr, unknown))} not fields of {layer.id}")
    return names



_SCHEMA_TYPES = {"text": {"type": "string"}, "int": {"type": "integer"}, "float": {"type": "number"},
                 "bool": {"type": "boolean"}, "date": {"type": "string", "format": "date"},
                 "datetime": {"type": "string", "format": "date-time"}, "enum": {"type": "string"},
                 "enum_list": {"type": "array", "items": {"type": "string"}}}
_GEOMETRY_FORMATS = {"Point": "geometry-point", "MultiPoint": "geometry-multipoint",
                     "LineString": "geometry-linestring", "MultiLineString": "geometry-multilinestring",
                     "Polygon": "geometry-polygon", "MultiPolygon": "geometry-multipolygon"}


def queryables_schema(layer: LayerSpec, url: str) -> dict:
    """OGC API - Features Part 3 queryables: the layer's fields as JSON Schema (json fields left out)."""
    props: dict = {"geom": {"title": "几何", "format": _GEOMETRY_FORMATS.get(layer.geometry, "geometry-any"),
                            "x-ogc-role": "primary-geometry"},
                   "id": {"title": "要素ID", "type": "integer", "x-ogc-role": "id"},
                   "updated_at": {"title": "更新时间", "type": "string", "format": "date-time"}}
    for f in layer.all_fields:
        if f.type == "json":
            continue
        entry = {"title": f.label, **_SCHEMA_TYPES[f.type]}
        if f.type == "enum" and f.values:
            entry["enum"] = list(f.values)
        if f.type == "enum_list" and f.values:
            entry["items"] = {"type": "string", "enum": list(f.values)}
        props[f.name] = entry
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": url, "type": "object",
            "title": layer.title, "properties": props, "additionalProperties": False}
