"""Index-driven nearest-neighbour candidates, in planar degrees, on both backends.

Both hooks return rows ``(id, geom_wkb, d)`` where ``d`` is the planar distance in degrees from
the query point to the geometry, plus the radius (degrees) within which the list is complete:
every matching row closer than that radius is in the list. The caller (geoapi.services.nearest)
re-ranks by geodesic metres and uses the radius to prove the answer exact.

- PostGIS: ``ORDER BY geom <-> point LIMIT n`` on the GiST index (true distances, index recheck).
- PostGIS point layers (``geography_candidates``): ``ORDER BY geom::geography <-> point LIMIT n``
  on the geography expression index (geoapi.storage.schema.geography_index_ddl); ``d`` is then
  spherical metres, which bound the ellipsoidal ones far more tightly than degrees do.
- SpatiaLite: the R*Tree (``SpatialIndex`` virtual table) searched with growing frames. The KNN
  virtual table of SpatiaLite 5.0.1 exists but cannot apply property filters and stops at 1024
  items, so frames are used instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy import func

from geoapi.storage.spatial import index_frame, point, within_metres
from geoapi.storage.store import Store

WORLD_DEG = 360.0


@dataclass
class Candidates:
    rows: list          # Row(id, geom_wkb, d), ordered by d
    complete_deg: float  # every matching row with d < complete_deg is in rows


def _frame(store: Store, table: sa.Table, lon: float, lat: float, h: float):
    """Index condition: rows whose bounding box meets the square of half-size ``h`` degrees."""
    return index_frame(store.dialect, table, (lon - h, max(-90.0, lat - h), lon + h, min(90.0, lat + h)))


def _select(store: Store, table: sa.Table, lon: float, lat: float):
    d = func.ST_Distance(table.c.geom, point(store.dialect, lon, lat)).label("d")
    return sa.select(table.c.id, func.ST_AsBinary(table.c.geom).label("geom_wkb"), d), d


def nearest_candidates(store: Store, layer_id: str, lon: float, lat: float, n: int, conds: list, *,
                       max_deg: float | None = None) -> Candidates:
    """Up to ``n`` rows nearest in planar degrees, optionally only within ``max_deg``."""
    table = store.table(layer_id)
    stmt, d = _select(store, table, lon, lat)
    if store.dialect == "postgis":
        pt = point(store.dialect, lon, lat)
        where = list(conds)
        if max_deg is not None:
            where.append(func.ST_DWithin(table.c.geom, pt, max_deg))
        stmt = stmt.where(*where).order_by(table.c.geom.op("<->")(pt)).limit(n)
        with store.read() as conn:
            rows = conn.execute(stmt).all()
        limit = max_deg if max_deg is not None else math.inf
        return Candidates(rows, rows[-1].d if len(rows) == n else limit)
    return _grow_frames(store, table, stmt, d, lon, lat, n, conds, max_deg)


def uses_geography(store: Store, layer_id: str) -> bool:
    """True where the geography index exists: PostGIS point layers."""
    return store.dialect == "postgis" and store.registry[layer_id].is_point


def _sphere_select(store: Store, table: sa.Table, lon: float, lat: float):
    # geography(geom) is the same expression as the index's (geom::geography), so the planner
    # uses the index; a CAST to geography(GEOMETRY,4490) would add a typmod call and miss it.
    geog = func.geography(table.c.geom)
    pt = func.geography(point(store.dialect, lon, lat))
    d = geog.op("<->", return_type=sa.Float)(pt).label("d")
    return sa.select(table.c.id, func.ST_AsBinary(table.c.geom).label("geom_wkb"), d), geog, pt, d


def geography_candidates(store: Store, layer_id: str, lon: float, lat: float, n: int, conds: list, *,
                         max_sphere_m: float | None = None) -> list:
    """Up to ``n`` rows nearest in spherical metres (``d``), optionally only within
    ``max_sphere_m`` of them; index-driven (KNN on the geography GiST)."""
    table = store.table(layer_id)
    stmt, geog, pt, _ = _sphere_select(store, table, lon, lat)
    where = list(conds)
    if max_sphere_m is not None:
        where.append(func.ST_DWithin(geog, pt, max_sphere_m, False))
    with store.read() as conn:
        return conn.execute(stmt.where(*where).order_by(geog.op("<->")(pt)).limit(n)).all()


def _grow_frames(store: Store, table: sa.Table, stmt, d, lon: float, lat: float, n: int, conds: list,
                 max_deg: float | None) -> Candidates:
    """SpatiaLite: search ever larger frames until ``n`` rows lie inside the inscribed circle."""
    h = 0.002  # ~200 m: a typical urban asset density finds k=5 in the first frame or two
    cap = min(max_deg, WORLD_DEG) if max_deg is not None else WORLD_DEG
    with store.read() as conn:
        while True:
            h = min(h, cap)
            # Only rows inside the frame's inscribed circle count, and at most n of them: a frame
            # that reaches the edge of a town must not ship the town to Python.
            inside = conn.execute(stmt.where(_frame(store, table, lon, lat, h), d <= h, *conds)
                                  .order_by(d).limit(n)).all()
            if len(inside) >= n:
                return Candidates(inside[:n], inside[n - 1].d)
            if h >= cap:
                return Candidates(inside, cap if max_deg is not None else math.inf)
            # Aim the next frame at the density seen so far (area grows with h²).
            h *= min(8.0, max(2.0, 1.3 * math.sqrt(n / len(inside)))) if inside else 4.0


def within_degrees(store: Store, layer_id: str, lon: float, lat: float, r_deg: float, conds: list) -> list:
    """Every matching row within ``r_deg`` planar degrees, ordered by that distance."""
    table = store.table(layer_id)
    stmt, d = _select(store, table, lon, lat)
    if store.dialect == "postgis":
        cond = func.ST_DWithin(table.c.geom, point(store.dialect, lon, lat), r_deg)
    else:
        cond = sa.and_(_frame(store, table, lon, lat, r_deg), d <= r_deg)
    with store.read() as conn:
        return conn.execute(stmt.where(cond, *conds).order_by(d)).all()



def within_geodesic(store: Store, layer_id: str, lon: float, lat: float, metres: float,
                    frame: tuple[float, float, float, float], conds: list) -> list:
    """Every matching row within ``metres`` on the ellipsoid; ``frame`` (lon/lat box holding the
    whole circle) drives the index. Tighter than a degree circle away from the equator."""
    table = store.table(layer_id)
    stmt, d = _select(store, table, lon, lat)
    with store.read() as conn:
        return conn.execute(stmt.where(within_metres(store.dialect, table, lon, lat, metres, frame), *conds)
                            .order_by(d)).all()
