"""Index-driven nearest-neighbour candidates, in planar degrees, on both backends.

Both hooks return rows ``(id, geom_wkb, d)`` where ``d`` is the planar distance in degrees from
the query point to the geometry, plus the radius (degrees) within which the list is complete:
every matching row closer than that radius is in the list. The caller (geoapi.services.nearest)
re-ranks by geodesic metres and uses the radius to prove the answer exact.

- PostGIS: ``ORDER BY geom <-> point LIMIT n`` on the GiST index (true distances, index recheck).
- PostGIS point layers (``geography_nearest``): ``ORDER BY geom::geography <-> point`` on the
  geography expression index (geoapi.storage.schema.geography_index_ddl), stopped in SQL once
  the rows within a reach of the k-th are in; ``d`` is then spherical metres, which bound the
  ellipsoidal ones far more tightly than degrees do.
- SpatiaLite: an exact best-first walk of the table's R*Tree node blobs (geoapi.storage.rtree_knn),
  rows fetched in batches with the property filters; ``complete_deg`` is the smallest distance
  left in its queue. Where the R*Tree cannot be read, growing frames through ``SpatialIndex``.
  The KNN virtual table of SpatiaLite 5.0.1 cannot apply property filters, stops at 1024 items
  and was no faster far from the data.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy import func

from geoapi.storage import rtree_knn
from geoapi.storage.spatial import index_frame, point, within_metres
from geoapi.storage.store import Store

log = logging.getLogger("geoapi.storage")
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
    return _rtree_nearest(store, table, stmt, d, lon, lat, n, conds, max_deg)


def uses_geography(store: Store, layer_id: str) -> bool:
    """True where the geography index exists: PostGIS point layers."""
    return store.dialect == "postgis" and store.registry[layer_id].is_point


def geography_nearest(conn: sa.Connection, store: Store, layer_id: str, lon: float, lat: float, *, k: int,
                      cap: int, reach: float | None, slack_m: float, conds: list,
                      max_sphere_m: float | None = None) -> list:
    """The candidates for the k nearest by geodesic distance, from a KNN scan in spherical
    metres (``d``; the geography GiST), with every column of ``Store.select_columns``.

    ``g_k``, the largest spheroid (ellipsoidal geodesic) distance of the k first rows, bounds
    the k-th nearest geodesic distance from above. The scan stops at the first row past
    ``reach_m = reach * g_k + slack_m`` (``reach=None``: it does not), after at most ``cap``
    rows, and only within ``max_sphere_m``. Of the rows scanned, those farther than
    ``g_k + slack_m`` on the spheroid cannot be among the k nearest and are left out, except
    the ``cap``-th, which says the LIMIT ended the scan. Each row also has ``knn_id``,
    ``knn_x``, ``knn_y`` (the point), ``knn_d``, ``knn_rank`` (its place in the scan) and
    ``knn_reach`` (``reach_m`` as far as it is known there; the largest is the final one).

    One statement that reads no row twice: window aggregates over the scan keep the row
    number, ``g_k`` and the count of rows past the reach; PostgreSQL (15+) ends the scan at the
    first row failing a window's run condition (``beyond = 0``). Older servers return the same
    rows but read on to ``cap``. The windows carry only id, point and distance (wide rows
    through them cost more than the scan); the full columns are joined to the few rows left.
    Unfiltered statements are built once per layer and reused, so their construction and cache
    key cost nothing per request.
    """
    table = store.table(layer_id)
    key = (table, max_sphere_m is not None)
    stmt = None if conds else _GEOGRAPHY_KNN.get(key)
    if stmt is None:
        stmt = _geography_knn(store, layer_id, conds, max_sphere_m is not None)
        if not conds:
            if len(_GEOGRAPHY_KNN) > 256:  # one entry per (table, bounded?): only stale stores grow it
                _GEOGRAPHY_KNN.clear()
            _GEOGRAPHY_KNN[key] = stmt
    params = {"knn_lon": lon, "knn_lat": lat, "knn_k": k, "knn_cap": cap,
              "knn_reach": math.inf if reach is None else reach, "knn_slack": slack_m}
    if max_sphere_m is not None:
        params["knn_max"] = max_sphere_m
    return conn.execute(stmt, params).all()


_GEOGRAPHY_KNN: dict[tuple[sa.Table, bool], sa.Select] = {}


def _geography_knn(store: Store, layer_id: str, conds: list, bounded: bool) -> sa.Select:
    table = store.table(layer_id)
    # geography(geom) is the same expression as the index's (geom::geography), so the planner
    # uses the index; a CAST to geography(GEOMETRY,4490) would add a typmod call and miss it.
    geog = func.geography(table.c.geom)
    pt = func.geography(point(store.dialect, sa.bindparam("knn_lon", type_=sa.Float),
                              sa.bindparam("knn_lat", type_=sa.Float)))
    dist = geog.op("<->", return_type=sa.Float)(pt)
    k, cap = sa.bindparam("knn_k", type_=sa.Integer), sa.bindparam("knn_cap", type_=sa.Integer)
    reach, slack = sa.bindparam("knn_reach", type_=sa.Float), sa.bindparam("knn_slack", type_=sa.Float)
    where = list(conds)
    if bounded:
        where.append(func.ST_DWithin(geog, pt, sa.bindparam("knn_max", type_=sa.Float), False))
    scan = (sa.select(table.c.id.label("knn_id"), table.c.geom.label("knn_geom"), func.ST_X(table.c.geom).label("knn_x"),
                      func.ST_Y(table.c.geom).label("knn_y"), dist.label("knn_d"))
            .where(*where).order_by(dist).limit(cap).subquery("knn_scan"))

    def spheroid(q):
        return func.ST_Distance(func.geography(q.c.knn_geom), pt, sa.true())

    def over(q, fn):  # a running aggregate in scan order: PostgreSQL can stop on it
        return fn.over(order_by=q.c.knn_d, rows=(None, 0))

    ranked = sa.select(scan, over(scan, func.row_number()).label("knn_rank")).subquery("knn_ranked")
    g_k = over(ranked, func.max(spheroid(ranked)).filter(ranked.c.knn_rank <= k))
    bounded_ = sa.select(ranked, g_k.label("knn_gk")).subquery("knn_bound")
    reach_m = bounded_.c.knn_gk * reach + slack
    past = sa.and_(bounded_.c.knn_rank > k, bounded_.c.knn_d > reach_m)
    counted = sa.select(bounded_, reach_m.label("knn_reach"), over(bounded_, func.count().filter(past))
                        .label("knn_beyond")).subquery("knn_counted")
    out = [counted.c[n] for n in ("knn_id", "knn_x", "knn_y", "knn_d", "knn_rank", "knn_reach")]
    cand = (sa.select(*out)
            .where(counted.c.knn_beyond == sa.literal_column("0"),
                   sa.or_(counted.c.knn_rank == cap, spheroid(counted) <= counted.c.knn_gk + slack))
            .subquery("knn_cand"))
    return (sa.select(*cand.c, *store.select_columns(layer_id))
            .select_from(cand.join(table, table.c.id == cand.c.knn_id)).order_by(cand.c.knn_d))


def _rtree_nearest(store: Store, table: sa.Table, stmt, d, lon: float, lat: float, n: int, conds: list,
                   max_deg: float | None) -> Candidates:
    """SpatiaLite: an exact best-first walk of the table's R*Tree (geoapi.storage.rtree_knn), rows
    fetched in batches with the caller's filters; growing frames where the R*Tree cannot be read."""
    found = rtree_walk(store, table, stmt, n, conds, rtree_knn.planar_key(lon, lat), lambda rows: rows,
                       math.inf if max_deg is None else max_deg)
    if found is not None:
        return Candidates(*found)
    return _grow_frames(store, table, stmt, d, lon, lat, n, conds, max_deg)


def geodesic_nearest(store: Store, layer_id: str, lon: float, lat: float, n: int, conds: list,
                     rank: Callable[[list], list], max_m: float = math.inf) -> list | None:
    """SpatiaLite: the ``n`` rows nearest in geodesic metres, exactly, by one R*Tree walk keyed
    with a lower bound of the geodesic distance to each box (rtree_knn.geodesic_key); ``rank``
    turns fetched rows (id, geom_wkb, d) into rows with ``.id`` and ``.d`` in metres. None where
    the R*Tree cannot be read (the caller then takes the planar path)."""
    table = store.table(layer_id)
    stmt, _ = _select(store, table, lon, lat)
    found = rtree_walk(store, table, stmt, n, conds, rtree_knn.geodesic_key(lon, lat), rank, max_m)
    return None if found is None else found[0]


def rtree_walk(store: Store, table: sa.Table, stmt, n: int, conds: list, box_key: rtree_knn.BoxKey,
               rank: Callable[[list], list], limit: float) -> tuple[list, float] | None:
    """rtree_knn.k_nearest over ``table``'s R*Tree, rows read by ``stmt`` with ``conds`` and turned
    into ranked rows by ``rank``; None (logged) where the R*Tree cannot be read."""
    with store.read() as conn:
        if not conn.in_transaction():
            conn.begin()  # node reads and row fetches see one snapshot
        cur = conn.connection.dbapi_connection.cursor()
        try:
            nodes = rtree_knn.node_table(cur, table.name)
            # One SQL text for every batch (ids as a JSON array): no re-prepare per batch size.
            ids = sa.select(sa.literal_column("value")).select_from(func.json_each(sa.bindparam("ids")))
            by_ids = stmt.where(table.c.id.in_(ids), *conds)
            return rtree_knn.k_nearest(
                cur, nodes, n, lambda batch: rank(conn.execute(by_ids, {"ids": json.dumps(batch)}).all()),
                box_key, limit)
        except rtree_knn.RtreeFormatError as exc:
            log.warning("R*Tree walk unavailable for %s (%s); searching frames", table.name, exc)
            return None
        finally:
            cur.close()


def _grow_frames(store: Store, table: sa.Table, stmt, d, lon: float, lat: float, n: int, conds: list,
                 max_deg: float | None) -> Candidates:
    """SpatiaLite without a readable R*Tree: search ever larger frames until ``n`` rows lie inside
    the inscribed circle."""
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
