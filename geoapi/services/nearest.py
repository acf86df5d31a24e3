"""The k nearest assets to a point, by true geodesic distance, proven exact.

Index candidates come in planar-degree order (geoapi.storage.knn). Planar degrees are the wrong
metric at 35°N (a degree of longitude is 0.82 of a degree of latitude), so the candidates are
re-ranked by geodesic metres on the CGCS2000 ellipsoid. The answer is exact once the k-th
geodesic distance is shorter than the least geodesic length of anything outside the searched
degree radius (bounded with cos of the farthest latitude); otherwise one more index query
fetches every row inside the degree radius that the k-th distance implies.

On SpatiaLite the R*Tree itself is walked best-first with a lower bound of the geodesic metres
to each box (geoapi.storage.knn.geodesic_nearest, geoapi.storage.rtree_knn.geodesic_key) and rows
ranked on the ellipsoid as they are fetched, so the first k rows out are exactly the k nearest;
the planar path above is the fallback where the R*Tree cannot be read.

On PostGIS point layers the candidates come in spherical-metre order instead (geography KNN,
geoapi.storage.knn.geography_nearest; PostGIS's sphere has the mean radius R = (2a + b) / 3).
Along any path the sphere's line element is at most R / M(φ) of the ellipsoid's (M, the meridian
radius of curvature, is the smaller principal radius and grows with |φ|), so a point within L
metres on the ellipsoid lies within L · R / M(φ_lowest) on the sphere, φ_lowest being the lowest
latitude the geodesic can reach. Globally R / M ≤ 1.0056; at 35°N, 1.0023. One SQL statement
(geoapi.storage.knn.geography_nearest) scans in spherical order and takes g_k, the largest
spheroid distance (PostGIS's ellipsoidal geodesic) of the k first rows: the k-th nearest is no
farther, so every row that can be among the k lies within g_k · R / M(φ_lowest) on the sphere,
and the scan stops at the first row past that reach. Of the rows scanned it returns, with every
column, those no farther than g_k (+ 1 cm for the two geodesic implementations, which agree to
~1e-8 m), so the common case is one round trip with about k rows. The answer is proven once the
spherical radius of the k-th geodesic distance (from pyproj here) is inside what was scanned;
otherwise (a scan that reached its LIMIT first, a k-th neighbour over ~160 km away) the KNN scan
is repeated with a longer LIMIT or a wider reach.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import shapely
from shapely.geometry import Point

from geoapi import crs as crsmod
from geoapi.storage import Feature, FeatureQuery, Store, knn
from geoapi.storage.engine import autocommit_reads

MAX_K = 1000
CANDIDATE_FACTOR = 3  # index candidates fetched per wanted result
SPHERE_SLACK_M = 0.001  # floating-point rounding of the two distance implementations
# PostGIS's spheroid distance and pyproj's geodesic (both Karney's algorithm on CGCS2000) agree
# to ~1e-8 m; rows farther than the bound by more than this are left out in SQL.
GEODESIC_SLACK_M = 0.01
REACH_BAND_DEG = 1.5  # the first reach factor holds while the k-th neighbour is this close (degrees)
FIRST_CAP = 10_000  # rows the first scan may read (a far point's ring through a dense town: ~2,000)


@dataclass
class NearestRequest:
    layers: list[str]
    lon: float                       # CGCS2000
    lat: float
    k: int = 5
    max_distance_m: float | None = None
    conditions: dict[str, list] = field(default_factory=dict)  # layer -> extra SQL conditions


@dataclass
class Hit:
    feature: Feature
    distance_m: float
    bearing_deg: float | None        # None when the point lies on/inside the geometry


def geodesic_to(lon: float, lat: float, geoms) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Geodesic metres from (lon, lat) to the nearest point of each geometry, and that point.

    Points use the ellipsoidal inverse problem directly. Lines and polygons go through an
    azimuthal equidistant frame centred on the query point, where the distance from the centre
    is exactly the geodesic distance; their edges are densified to ~50 m first so the straight
    projected segments follow the stored ones.
    """
    geoms = np.asarray(geoms, dtype=object)
    n = len(geoms)
    dist, nlon, nlat = np.zeros(n), np.zeros(n), np.zeros(n)
    is_point = shapely.get_type_id(geoms) == 0
    if is_point.any():
        x, y = shapely.get_x(geoms[is_point]), shapely.get_y(geoms[is_point])
        _, _, d = crsmod.GEOD.inv(np.full(len(x), lon), np.full(len(x), lat), x, y)
        dist[is_point], nlon[is_point], nlat[is_point] = d, x, y
    others = ~is_point
    if others.any():
        fwd, inv = crsmod.local_metric(lon, lat)
        origin_lonlat = np.array(fwd.transform(lon, lat))
        local = crsmod.project(shapely.segmentize(geoms[others], 0.0005), fwd)
        origin = Point(origin_lonlat)
        lines = shapely.shortest_line(origin, local)
        ends = shapely.get_coordinates(lines).reshape(-1, 2, 2)[:, 1, :]
        ex, ey = inv.transform(ends[:, 0], ends[:, 1])
        dist[others] = shapely.distance(origin, local)
        nlon[others], nlat[others] = ex, ey
    return dist, nlon, nlat


def bearings(lon: float, lat: float, to_lon: np.ndarray, to_lat: np.ndarray) -> np.ndarray:
    az, _, _ = crsmod.GEOD.inv(np.full(len(to_lon), lon), np.full(len(to_lon), lat), to_lon, to_lat)
    return np.mod(az, 360.0)


class _Near(NamedTuple):
    d: float   # geodesic metres
    id: int
    nx: float  # the nearest point of the geometry
    ny: float


Ranked = list[tuple[float, int, float, float]]  # (distance_m, id, nearest lon, nearest lat), nearest first


def _layer_nearest(store: Store, layer_id: str, req: NearestRequest,
                   fetched: dict[tuple[str, int], Feature]) -> Ranked:
    """The exact k nearest of one layer. Features already read on the way go into ``fetched``."""
    conds = req.conditions.get(layer_id, [])
    if knn.uses_geography(store, layer_id):
        return _layer_nearest_sphere(store, layer_id, req, conds, fetched)
    if store.dialect == "spatialite":
        # One R*Tree walk keyed in geodesic metres: exactly the k nearest, no proof step.
        hits = knn.geodesic_nearest(store, layer_id, req.lon, req.lat, req.k, conds,
                                    lambda rows: [_Near(*r) for r in _rank(req, rows)],
                                    math.inf if req.max_distance_m is None else req.max_distance_m)
        if hits is not None:
            return [tuple(h) for h in hits]
    max_deg = None
    if req.max_distance_m is not None:
        max_deg = max(crsmod.degrees_for_metres(req.max_distance_m, req.lat))
    cand = knn.nearest_candidates(store, layer_id, req.lon, req.lat, req.k * CANDIDATE_FACTOR, conds,
                                  max_deg=max_deg)
    rows = cand.rows
    ranked = _rank(req, rows)
    if len(ranked) >= req.k:
        kth = ranked[req.k - 1][0]
        # Smallest degree radius that surely holds everything within kth metres.
        need_deg = max(crsmod.degrees_for_metres(kth, req.lat))
        if crsmod.min_metres_for_degrees(cand.complete_deg, req.lat) < kth and need_deg > 0:
            rows = _rows_within(store, layer_id, req, conds, kth)
            ranked = _rank(req, rows)
    elif max_deg is not None and cand.complete_deg < max_deg:
        # Candidates past max_distance_m were dropped; others may still lie inside it.
        ranked = _rank(req, knn.within_degrees(store, layer_id, req.lon, req.lat, max_deg, conds))
    return ranked[: req.k]


def _meridian(lat_deg: float) -> float:
    """M, the meridian radius of curvature of the ellipsoid at ``lat_deg``."""
    a, f = crsmod.GEOD.a, crsmod.GEOD.f
    e2 = f * (2 - f)
    return a * (1 - e2) / (1 - e2 * math.sin(math.radians(lat_deg)) ** 2) ** 1.5


def _sphere_radius(metres: float, lat: float) -> float:
    """Spherical radius (PostGIS geography, mean-radius sphere) that surely holds every point
    within ``metres`` on the ellipsoid of a point at latitude ``lat``."""
    a, f = crsmod.GEOD.a, crsmod.GEOD.f
    # A geodesic of that length stays at latitudes ≥ lowest (110 574 m: the shortest degree).
    meridian = _meridian(max(0.0, abs(lat) - metres / 110_574.0 * 1.01))
    sphere = (2 * a + a * (1 - f)) / 3
    return metres * sphere / meridian + SPHERE_SLACK_M


def _reach(lat: float, band_deg: float) -> float:
    """R / M(φ_lowest) for a k-th neighbour up to ``band_deg`` away: a point within g metres on
    the ellipsoid lies within that factor × g on the sphere (as _sphere_radius)."""
    a, f = crsmod.GEOD.a, crsmod.GEOD.f
    meridian = _meridian(max(0.0, abs(lat) - band_deg))
    return (2 * a + a * (1 - f)) / 3 / meridian


def _layer_nearest_sphere(store: Store, layer_id: str, req: NearestRequest, conds: list,
                          fetched: dict[tuple[str, int], Feature]) -> Ranked:
    """PostGIS point layers: geography KNN candidates, re-ranked on the ellipsoid, proven exact.

    One statement (geoapi.storage.knn.geography_nearest) scans in spherical order up to the
    reach of g_k, the largest geodesic distance of the k first rows (an upper bound of the
    k-th nearest), and returns, with every column, the rows no farther than g_k. Where that
    does not prove the answer, the scan is repeated: with a 4× longer LIMIT when it stopped
    at its LIMIT before the reach, with a reach for a wider latitude band when the k-th
    neighbour is over REACH_BAND_DEG away. Never as a radius query: a point kilometres from a
    town needs the rows in a thin ring, and the geography index's box around that radius
    would take in the whole town."""
    max_sphere = None if req.max_distance_m is None else _sphere_radius(req.max_distance_m, req.lat)
    band: float | None = REACH_BAND_DEG
    cap = max(FIRST_CAP, req.k * CANDIDATE_FACTOR)
    with store.read() as conn:
        autocommit_reads(conn)
        while True:
            rows = knn.geography_nearest(conn, store, layer_id, req.lon, req.lat, k=req.k, cap=cap,
                                         reach=None if band is None else _reach(req.lat, band),
                                         slack_m=GEODESIC_SLACK_M, conds=conds, max_sphere_m=max_sphere)
            ranked = _rank_points(req, rows)
            capped = [r.knn_d for r in rows if r.knn_rank == cap]
            # The k first rows of the scan always come back, so fewer means it ran out.
            if not capped and (band is None or max((r.knn_rank for r in rows), default=0) < req.k):
                break  # the scan ran out: every matching row (within max_distance_m) was seen
            # Every row within needed_m on the ellipsoid must have been seen: with k hits, up to
            # the k-th; with fewer, up to max_distance_m.
            needed_m = ranked[req.k - 1][0] if len(ranked) >= req.k else req.max_distance_m
            # Stopped by the LIMIT, rows not seen lie at least the last distance away; else
            # beyond the reach.
            if _sphere_radius(needed_m, req.lat) < (capped[0] if capped else max(r.knn_reach for r in rows)):
                break
            if capped:
                cap *= 4
            else:  # the reach was too short for that distance: one wide enough (90°: any)
                band = None if band >= 90 else min(90.0, max(2 * band, needed_m / 110_574.0 * 1.01 + 0.01))
    for f in store.rows_to_features(layer_id, rows):
        fetched[(layer_id, f.id)] = f
    return ranked[: req.k]


def _rows_within(store: Store, layer_id: str, req: NearestRequest, conds: list, kth_m: float) -> list:
    """Every matching row within ``kth_m`` geodesic metres (plus a metre for the two geodesic
    implementations' rounding). A planar-degree circle is the wrong shape at 35°N: sized for
    longitude it reaches 1.2× too far north and south and, far from the assets (a rural point
    whose k-th neighbour is kilometres away), can take in a whole town."""
    metres = kth_m * (1 + 1e-6) + 1.0
    dlon, dlat = crsmod.degrees_for_metres(metres, req.lat)
    frame = (req.lon - dlon, req.lat - dlat, req.lon + dlon, req.lat + dlat)
    return knn.within_geodesic(store, layer_id, req.lon, req.lat, metres, frame, conds)


def _rank(req: NearestRequest, rows) -> Ranked:
    if not rows:
        return []
    geoms = shapely.from_wkb([bytes(r.geom_wkb) for r in rows])
    d, nx, ny = geodesic_to(req.lon, req.lat, geoms)
    return _ranked(req, [r.id for r in rows], d, nx, ny)


def _rank_points(req: NearestRequest, rows) -> Ranked:
    """_rank for rows that carry their point as ``knn_x``, ``knn_y``: no WKB to decode."""
    if not rows:
        return []
    x = np.fromiter((r.knn_x for r in rows), float, len(rows))
    y = np.fromiter((r.knn_y for r in rows), float, len(rows))
    _, _, d = crsmod.GEOD.inv(np.full(len(x), req.lon), np.full(len(x), req.lat), x, y)
    return _ranked(req, [r.knn_id for r in rows], d, x, y)


def _ranked(req: NearestRequest, ids: list[int], d, nx, ny) -> Ranked:
    out = [(float(d[i]), ids[i], float(nx[i]), float(ny[i])) for i in range(len(ids))]
    if req.max_distance_m is not None:
        out = [o for o in out if o[0] <= req.max_distance_m]
    out.sort(key=lambda o: (o[0], o[1]))
    return out


def nearest(store: Store, req: NearestRequest) -> list[Hit]:
    """The k nearest features over one or several layers, nearest first."""
    ranked: list[tuple[float, str, int, float, float]] = []
    features: dict[tuple[str, int], Feature] = {}
    for layer_id in req.layers:
        ranked += [(d, layer_id, fid, x, y) for d, fid, x, y in _layer_nearest(store, layer_id, req, features)]
    ranked.sort(key=lambda o: (o[0], o[1], o[2]))
    ranked = ranked[: req.k]
    by_layer: dict[str, list[int]] = {}
    for _, layer_id, fid, _, _ in ranked:
        if (layer_id, fid) not in features:
            by_layer.setdefault(layer_id, []).append(fid)
    for layer_id, ids in by_layer.items():
        page = store.query(layer_id, FeatureQuery(ids=ids, limit=len(ids), count=False))
        features.update({(layer_id, f.id): f for f in page.features})
    if not ranked:
        return []
    bearing = bearings(req.lon, req.lat, np.array([r[3] for r in ranked]), np.array([r[4] for r in ranked]))
    return [Hit(features[(layer_id, fid)], d, None if d == 0 else round(float(b), 1))
            for (d, layer_id, fid, _, _), b in zip(ranked, bearing, strict=True)
            if (layer_id, fid) in features]
