"""Features along a route: a 路长制 road segment or a drawn line, with a corridor in metres.

The corridor is drawn where metres are metres: the route is projected to an azimuthal
equidistant frame centred on it (geoapi.crs.local_metric), buffered there, and brought back to
CGCS2000 lon/lat; the database then finds what intersects it through the spatial index.
Results are ordered by chainage (distance along the route from its start).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry import LineString, MultiLineString
from shapely.geometry.base import BaseGeometry

from geoapi import crs as crsmod
from geoapi.errors import BadRequestError, FeatureNotFoundError
from geoapi.storage import Feature, FeatureQuery, Store, spatial

MAX_BUFFER_M = 5_000
MAX_VERTICES = 10_000
SEGMENT_LAYER = "road_segments"
_PAIR_LIST = re.compile(r"^\s*-?\d+(\.\d+)?\s*,\s*-?\d+(\.\d+)?\s*(;\s*-?\d+(\.\d+)?\s*,\s*-?\d+(\.\d+)?\s*)+;?\s*$")


@dataclass
class Route:
    geometry: BaseGeometry        # LineString / MultiLineString, CGCS2000
    segment: Feature | None = None


@dataclass
class AlongHit:
    feature: Feature
    chainage_m: float             # along the route from its first vertex
    offset_m: float               # distance from the route


@dataclass
class AlongResult:
    route: Route
    buffer_m: float
    hits: list[AlongHit]
    matched: int
    length_m: float

    def describe(self) -> dict:
        seg = self.route.segment
        out = {"length_m": round(self.length_m, 1), "buffer_m": self.buffer_m}
        if seg is not None:
            out.update({"segment_id": seg.id, "segment_code": seg.props.get("segment_code"),
                        "road_name": seg.props.get("road_name")})
        return out


def parse_line(text: str, crs: crsmod.Crs) -> BaseGeometry:
    """``LINESTRING(lon lat, …)`` WKT or ``lon,lat;lon,lat;…`` → a CGCS2000 line."""
    text = text.strip()
    if _PAIR_LIST.match(text):
        pts = [tuple(float(v) for v in p.split(",")) for p in text.strip(" ;").split(";")]
        geom: BaseGeometry = LineString(pts)
    elif text.upper().startswith(("LINESTRING", "MULTILINESTRING")):
        try:
            geom = shapely.from_wkt(text)
        except Exception as exc:  # shapely.errors.GEOSException and friends
            raise BadRequestError(f"line is not valid WKT: {exc}") from None
    else:
        raise BadRequestError("line must be WKT LINESTRING(lon lat, …) or lon,lat;lon,lat;…")
    coords = shapely.get_coordinates(geom)
    if len(coords) < 2 or geom.is_empty or geom.length == 0:
        raise BadRequestError("line needs at least two distinct points")
    if len(coords) > MAX_VERTICES:
        raise BadRequestError(f"line has more than {MAX_VERTICES} vertices")
    if (np.abs(coords[:, 0]) > 180).any() or (np.abs(coords[:, 1]) > 90).any():
        raise BadRequestError("line coordinates out of range: lon ±180, lat ±90 (order lon,lat)")
    return crsmod.geometry_to_storage(geom, crs)


def resolve_route(store: Store, *, segment: str | None, line: str | None, crs: crsmod.Crs) -> Route:
    if (segment is None) == (line is None):
        raise BadRequestError("give exactly one of segment= (a road segment code or id) or line=")
    if line is not None:
        return Route(parse_line(line, crs))
    page = store.query(SEGMENT_LAYER, FeatureQuery(filters={"segment_code": [segment]}, limit=1, count=False))
    found = page.features[0] if page.features else None
    if found is None and segment.isdigit():
        found = store.get(SEGMENT_LAYER, int(segment))
    if found is None:
        raise FeatureNotFoundError(f"no road segment with segment_code or id {segment!r}")
    return Route(found.geometry, found)


def corridor(route: BaseGeometry, buffer_m: float) -> tuple[BaseGeometry, BaseGeometry, tuple]:
    """(corridor in CGCS2000, route in the local metric frame, the frame's transformers)."""
    c = route.centroid
    fwd, inv = crsmod.local_metric(c.x, c.y)
    local = crsmod.project(shapely.segmentize(route, 0.001), fwd)
    area = local.buffer(buffer_m, quad_segs=16)
    return crsmod.project(area, inv), local, (fwd, inv)


def along(store: Store, route: Route, *, buffer_m: float, limit: int, conditions: dict[str, list]) -> AlongResult:
    area, local_route, (fwd, _) = corridor(route.geometry, buffer_m)
    wkb = shapely.to_wkb(area, flavor="iso")
    features: list[Feature] = []
    matched = 0
    for layer_id, conds in conditions.items():
        table = store.table(layer_id)
        page = store.query(layer_id, FeatureQuery(limit=limit, conditions=[
            *conds, spatial.intersects(store.dialect, table, wkb, area.bounds)]))
        features += page.features
        matched += page.number_matched or 0
    hits = _measure(features, local_route, fwd)
    hits.sort(key=lambda h: (h.chainage_m, h.offset_m, h.feature.layer, h.feature.id))
    return AlongResult(route, buffer_m, hits[:limit], matched, float(local_route.length))


def _measure(features: list[Feature], local_route: BaseGeometry, fwd) -> list[AlongHit]:
    if not features:
        return []
    geoms = crsmod.project(np.array([f.geometry for f in features], dtype=object), fwd)
    offset = shapely.distance(local_route, geoms)
    nearest_on_feature = shapely.get_point(shapely.shortest_line(geoms, local_route), 1)
    route = local_route if isinstance(local_route, LineString | MultiLineString) else shapely.line_merge(local_route)
    chainage = shapely.line_locate_point(route, nearest_on_feature)
    return [AlongHit(f, float(ch), float(off)) for f, ch, off in zip(features, chainage, offset, strict=True)]
