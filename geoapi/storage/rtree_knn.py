"""Exact k-nearest walk of a SpatiaLite R*Tree: best-first search (Hjaltason & Samet, 1999).

SpatiaLite indexes table T's ``geom`` in the SQLite rtree virtual table ``idx_T_geom``; its nodes
live in the shadow table ``idx_T_geom_node (nodeno, data)``, the root at nodeno 1. A node blob
(SQLite rtree.c) is a 2-byte big-endian tree depth (meaningful in the root only), a 2-byte cell
count, then per cell an 8-byte big-endian integer (child nodeno, or the indexed rowid in a leaf)
and four big-endian float32 bounds minX, maxX, minY, maxY, rounded outward so a box always
contains its geometry.

The walk keeps one priority queue of nodes and of fetched rows, keyed by distance from the query
point (for a node a lower bound of everything under it, from its box; for a row its exact
distance), and a second one of leaf cells whose rows are not fetched yet. Rows are fetched in
batches, one SQL query each, through the caller's ``fetch``, which applies the property filters
and computes the exact distance. A row popped from the queue is nearer than every key left, so
the first ``n`` rows popped are the ``n`` nearest, ties broken by id. Two metrics: planar degrees
(``planar_key``, as SQL ``ST_Distance``: geoapi.storage.knn) and geodesic metres on the ellipsoid
(``geodesic_key``, with a fetch that ranks on the ellipsoid).

Nodes are read through the raw DB-API cursor of the caller's connection (a few µs each), inside
its transaction; SpatiaLite's triggers keep the rtree current within that transaction.
"""

from __future__ import annotations

import heapq
import math
import re
from collections.abc import Callable, Iterable

import numpy as np

_CELL = np.dtype([("id", ">i8"), ("box", ">f4", (4,))])
_HEADER = 4
_MAX_DEPTH = 40  # SQLite's RTREE_MAX_DEPTH
_RTREE_SQL = re.compile(r"create\s+virtual\s+table\s+\S+\s+using\s+rtree\s*\(\s*pkid\s*,\s*xmin\s*,\s*xmax\s*,"
                        r"\s*ymin\s*,\s*ymax\s*\)\s*$", re.IGNORECASE)
# Box keys are shrunk by this factor so that a box never ranks after a row it holds, whatever
# the last-bit rounding of the two distance computations (the queue pops nodes before rows).
_SHRINK = 1.0 - 1e-12
_NODE, _PENDING, _ROW = 0, 1, 2  # queue order among equal keys
# Rows fetched per SQL query: at least MIN_BATCH (a query costs about as much as ~20 rows),
# at most MAX_BATCH; in between, as many as the rows still wanted need at the hit rate so far.
MIN_BATCH = 16
MAX_BATCH = 1024

Fetch = Callable[[list[int]], Iterable]  # rowids -> rows with .id and .d (the caller's filters applied)


class RtreeFormatError(Exception):
    """The index is missing or its node blobs are not laid out as expected."""


def node_table(cur, table: str, column: str = "geom") -> str:
    """The shadow node table of ``table``'s R*Tree on ``column``; raises RtreeFormatError unless
    it is a 2-D float rtree with SpatiaLite's column names."""
    name = f"idx_{table}_{column}"
    found = dict(cur.execute("SELECT lower(name), sql FROM sqlite_master WHERE lower(name) IN (lower(?), lower(?))",
                             (name, name + "_node")).fetchall())
    sql = found.get(name.lower())
    if sql is None or name.lower() + "_node" not in found:
        raise RtreeFormatError(f"no R*Tree {name}")
    if not _RTREE_SQL.match(sql.strip()):
        raise RtreeFormatError(f"unexpected R*Tree layout: {sql}")
    return name + "_node"


class _Reader:
    def __init__(self, cur, node_table: str):
        self.cur = cur
        self.sql = f'SELECT data FROM "{node_table}" WHERE nodeno = ?'

    def cells(self, nodeno: int) -> tuple[int, np.ndarray]:
        row = self.cur.execute(self.sql, (nodeno,)).fetchone()
        if row is None or not isinstance(row[0], bytes) or len(row[0]) < _HEADER:
            raise RtreeFormatError(f"R*Tree node {nodeno} is missing or short")
        data = row[0]
        depth, count = int.from_bytes(data[0:2], "big"), int.from_bytes(data[2:4], "big")
        if _HEADER + count * _CELL.itemsize > len(data) or depth > _MAX_DEPTH:
            raise RtreeFormatError(f"R*Tree node {nodeno}: {count} cells do not fit {len(data)} bytes")
        return depth, np.frombuffer(data, dtype=_CELL, count=count, offset=_HEADER)


BoxKey = Callable[[np.ndarray], np.ndarray]  # boxes (m × minX, maxX, minY, maxY) -> lower bounds


def _gaps(x: float, y: float, box: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per box, how far (x, y) lies outside it along each axis; 0 inside."""
    dx = np.maximum(np.maximum(box[:, 0] - x, x - box[:, 1]), 0.0)
    dy = np.maximum(np.maximum(box[:, 2] - y, y - box[:, 3]), 0.0)
    return dx, dy


def planar_key(x: float, y: float) -> BoxKey:
    """Planar distance (degrees for lon/lat) from (x, y) to each box: the SQL ``ST_Distance``."""
    def key(box: np.ndarray) -> np.ndarray:
        dx, dy = _gaps(x, y, box)
        return np.sqrt(dx * dx + dy * dy)
    return key


# Least metres per degree on the CGCS2000/GRS80 ellipsoid: of latitude, the meridian radius at the
# equator a(1 - e²)·π/180 = 110 574.3 m; of longitude at latitude φ, N(φ)·cos φ ≥ a·cos φ·π/180.
M_DEG = 110_574.0
N_DEG = 111_319.0
GEODESIC_BANDS = (0.02, 0.1, 0.5, 2.0, 10.0)  # degrees of latitude a path may climb (see geodesic_key)
GEODESIC_SLACK_M = 0.01  # for distance code that straightens edges between densified vertices


def geodesic_key(lon: float, lat: float) -> BoxKey:
    """A lower bound of the geodesic metres from (lon, lat) to anything in each box.

    A path that stays within latitude ±φm is at least hypot(M_DEG·Δφ, N_DEG·cos φm·Δλ) long (the
    line element is at least that, and the integral of a norm is at least the norm of the
    integral); one that leaves it climbs at least φm - |lat| degrees of latitude. For each band
    b, φm = max(|lat|, the box's largest |latitude|) + b gives a bound; the key is the best of
    them. (No path across the antimeridian: Δλ is the plain difference.)"""
    plat = abs(lat)

    def key(box: np.ndarray) -> np.ndarray:
        dlon, dlat = _gaps(lon, lat, box)
        top = np.maximum(np.maximum(np.abs(box[:, 2]), np.abs(box[:, 3])), plat)
        best = np.zeros(len(box))
        for band in GEODESIC_BANDS:
            far = np.minimum(top + band, 90.0)
            inside = np.hypot(M_DEG * dlat, N_DEG * np.cos(np.radians(far)) * dlon)
            best = np.maximum(best, np.minimum(inside, M_DEG * (far - plat)))
        return np.maximum(best - GEODESIC_SLACK_M, 0.0)
    return key


def k_nearest(cur, node_table: str, n: int, fetch: Fetch, box_key: BoxKey,
              limit: float = math.inf) -> tuple[list, float]:
    """The ``n`` rows nearest by ``fetch``'s distance ``d`` (rows with ``d <= limit`` only),
    ordered by (d, id), and the distance below which the list is complete (every such row with
    a smaller ``d`` is in it). ``box_key`` must bound ``d`` from below for everything in a box:
    ``planar_key`` for ``ST_Distance`` in degrees, ``geodesic_key`` for metres on the ellipsoid."""
    reader = _Reader(cur, node_table)
    heap: list[tuple] = []                    # (key, kind, nodeno | rowid, level | row)
    pending: list[tuple[float, int]] = []     # (box key, rowid) of leaf cells not fetched yet
    out: list = []
    queued = fetched = matched = 0  # rows in the heap; ids fetched and rows they gave so far

    def expand(level: int, cells: np.ndarray) -> None:
        keys = box_key(cells["box"].astype(np.float64)) * _SHRINK
        keep = keys <= limit
        children = zip(keys[keep].tolist(), cells["id"][keep].tolist(), strict=True)
        if level == 0:
            for k, rowid in children:
                heapq.heappush(pending, (k, rowid))
        else:
            for k, child in children:
                heapq.heappush(heap, (k, _NODE, child, level - 1))

    expand(*reader.cells(1))  # the root's depth is the tree's
    while len(out) < n:
        if pending and (not heap or (pending[0][0], _PENDING) <= heap[0][:2]):
            # As many ids as should still give the rows wanted, at the filters' hit rate so far.
            want = max(0, n - len(out) - queued) * (fetched + 1) / (matched + 1)
            size = min(len(pending), max(MIN_BATCH, min(MAX_BATCH, math.ceil(want))))
            ids = [heapq.heappop(pending)[1] for _ in range(size)]
            fetched += len(ids)
            for r in fetch(ids):
                if r.d is not None and r.d <= limit:
                    heapq.heappush(heap, (r.d, _ROW, r.id, r))
                    queued += 1
                    matched += 1
        elif heap:
            _, kind, ident, payload = heapq.heappop(heap)
            if kind == _ROW:
                out.append(payload)
                queued -= 1
            else:
                expand(payload, reader.cells(ident)[1])
        else:
            break
    left = min(heap[0][0] if heap else math.inf, pending[0][0] if pending else math.inf)
    return out, min(left, limit)
