"""PostGIS: exact point counts per unit polygon read from the tile-cell pyramid (tilecells).

An aggregated point layer keeps ``<layer>_tile_cells``: per non-empty Web Mercator cell of each
level (16–20 for manholes) the number of points, per status value and (``n_smart``) smart. For an
unfiltered point count by units, ``point_counts`` walks that pyramid instead of the layer table:

- a cell whose lon/lat rectangle, enlarged by a millionth of its size on every side, no unit
  boundary meets lies wholly inside (or outside) each unit; its counts go to every unit that
  contains its centre (overlapping units each count it), without looking at a point. The margin
  is ~10⁴ times the float error of the cell formula, so a point the database's floor() puts in
  the cell lies inside the tested rectangle; cells at the edge of the world grid (where the
  formula clamps) extend to infinity.
- a cell a boundary meets is split into its four children at the next level, down to the finest;
- a cell holding points of no listed status (NULL, or a value written by plain SQL) is treated
  like a border cell, so those points' own values are read;
- the points of the finest such cells are read from the layer (GiST on the cell's rectangle, then
  the same cell formula in SQL, so each point is read in exactly the cell the table counts it in)
  and tested with ST_Intersects against the candidate units: the boundary rule stays exact.

Every statement runs in one REPEATABLE READ snapshot; the triggers keep the table in the
writing transaction, so table and layer agree. When the finest border cells hold more than
MAX_READ points (thin units such as road corridors) the walk gives up and the caller counts
from the layer table instead.

``prepare`` and ``meets`` (unit polygons, their boundary segments, and which units meet a box)
are shared with overlay's grid path.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import shapely
import sqlalchemy as sa

from geoapi.storage import tilecells
from geoapi.storage.schema import SRID
from geoapi.storage.store import Store
from tiles.aggregate import CELL_BITS, global_cells

MAX_READ = 20_000        # points read from the layer at most ...
MAX_READ_SHARE = 0.05    # ... or this share of the points in the units' bounding box
_WORLD = 1e9             # "infinity" for cells the formula clamps into (degrees)


@dataclass(frozen=True)
class Units:
    """Unit polygons prepared for box tests: an STRtree of the polygons (None for empty or missing
    ones), one of their boundary segments with the owning unit, EWKB hex of each, and the bounds."""

    tree: shapely.STRtree
    seg_tree: shapely.STRtree
    seg_unit: np.ndarray
    hexes: list[str | None]
    bounds: tuple[float, float, float, float]


def _prepare(units: list[bytes]) -> Units | None:
    geoms = shapely.from_wkb(units)
    valid = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    if not valid.any():
        return None
    lines = shapely.get_parts(shapely.boundary(geoms[valid]), return_index=True)
    owner = np.flatnonzero(valid)[lines[1]]
    seg_coords, seg_unit = [], []
    for line, u in zip(lines[0], owner, strict=True):
        c = shapely.get_coordinates(line)
        seg_coords.append(np.stack([c[:-1], c[1:]], axis=1))
        seg_unit.append(np.full(len(c) - 1, u))
    hexes = [shapely.to_wkb(shapely.set_srid(g, SRID), hex=True, include_srid=True) if ok else None
             for g, ok in zip(geoms, valid, strict=True)]
    x0, y0, x1, y1 = shapely.total_bounds(geoms[valid])
    return Units(shapely.STRtree(np.where(valid, geoms, None)),
                 shapely.STRtree(shapely.linestrings(np.concatenate(seg_coords))), np.concatenate(seg_unit),
                 hexes, (float(x0), float(y0), float(x1), float(y1)))


@functools.lru_cache(maxsize=8)
def _cached(units: tuple[bytes, ...]) -> Units | None:
    return _prepare(list(units))


def prepare(units: list[bytes]) -> Units | None:
    """The prepared units, built once per distinct set (districts rarely change); None if all empty."""
    return _cached(tuple(units))


def meets(units: Units, boxes: np.ndarray, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per box whether a unit boundary meets it, and the (box, unit) pairs of the units that meet it:
    whose boundary does or that contain the box's centre. A box no boundary meets lies wholly
    inside exactly the units containing its centre."""
    b_seg, seg = units.seg_tree.query(boxes, predicate="intersects")
    b_in, u_in = units.tree.query(centres, predicate="intersects")
    border = np.zeros(len(boxes), dtype=bool)
    border[b_seg] = True
    pairs = np.unique(np.concatenate([np.stack([b_seg, units.seg_unit[seg]], axis=1),
                                      np.stack([b_in, u_in], axis=1)]).astype(np.int64), axis=0)
    return border, pairs[:, 0], pairs[:, 1]


def _lat(v: np.ndarray) -> np.ndarray:
    """Latitude of the normalised Mercator y (the inverse of tiles.aggregate.global_cells)."""
    return np.degrees(2 * np.arctan(np.exp((0.5 - v) * 2 * np.pi)) - np.pi / 2)


def cell_rects(level: int, cx: np.ndarray, cy: np.ndarray) -> tuple[np.ndarray, ...]:
    """x0, y0, x1, y1 of the cells' lon/lat rectangles, enlarged by a millionth of their size."""
    scale, top = float(1 << level), (1 << level) - 1
    x0, x1 = (cx / scale - 0.5) * 360.0, ((cx + 1) / scale - 0.5) * 360.0
    y1, y0 = _lat(cy / scale), _lat((cy + 1) / scale)   # cy counts from the north
    ex, ey = (x1 - x0) * 1e-6, (y1 - y0) * 1e-6
    return (np.where(cx <= 0, -_WORLD, x0 - ex), np.where(cy >= top, -_WORLD, y0 - ey),
            np.where(cx >= top, _WORLD, x1 + ex), np.where(cy <= 0, _WORLD, y1 + ey))


@dataclass
class PointCounts:
    rows: list[tuple[int, str | None, int]]   # unit, status, count
    smart: dict[int, int]                     # unit → smart points (layers with n_smart)


def usable(store: Store, layer_id: str, group: list[str], flags: list[str]) -> bool:
    """Whether the counts grouped by ``group`` with ``flags`` can be read from the layer's cell table."""
    layer = store.layer(layer_id)
    smart = tilecells.smart_column(layer)
    return (store.dialect == "postgis" and layer.geometry == "Point" and group == ["status"]
            and all(f == tilecells.SMART_FIELD and smart for f in flags) and tilecells.ready(store, layer))


class _Cells:
    """Reads one level of the cell table: cx, cy, n, the status counts and n_smart as arrays."""

    def __init__(self, conn: sa.Connection, layer):
        self.conn, self.k = conn, len(tilecells.count_columns(layer))
        cols = ", ".join(f"c.{tilecells.ident(c)}" for c in ["cx", "cy", "n", *tilecells.extra_columns(layer)])
        self.smart = tilecells.smart_column(layer) is not None
        self.select = f"SELECT {cols} FROM {tilecells.ident(tilecells.table_name(layer))} c"

    def _arrays(self, rows) -> tuple[np.ndarray, ...]:
        a = np.array(rows, dtype=np.int64).reshape(-1, 3 + self.k + self.smart)
        smart = a[:, 3 + self.k] if self.smart else np.zeros(len(a), dtype=np.int64)
        return a[:, 0], a[:, 1], a[:, 2], a[:, 3: 3 + self.k], smart

    def box(self, level: int, gx0: int, gy0: int, gx1: int, gy1: int):
        sql = (f"{self.select} WHERE c.level = %(l)s AND c.tx BETWEEN %(tx0)s AND %(tx1)s "
               "AND c.ty BETWEEN %(ty0)s AND %(ty1)s AND c.cx BETWEEN %(x0)s AND %(x1)s "
               "AND c.cy BETWEEN %(y0)s AND %(y1)s")
        return self._arrays(self.conn.exec_driver_sql(sql, {
            "l": level, "tx0": gx0 >> CELL_BITS, "tx1": gx1 >> CELL_BITS, "ty0": gy0 >> CELL_BITS,
            "ty1": gy1 >> CELL_BITS, "x0": gx0, "x1": gx1, "y0": gy0, "y1": gy1}).all())

    def children(self, level: int, px: np.ndarray, py: np.ndarray):
        """The non-empty cells at ``level`` whose parents (level - 1) are (px, py): primary-key probes."""
        sql = (f"{self.select} JOIN unnest(CAST(%(px)s AS int[]), CAST(%(py)s AS int[])) AS p(x, y) "
               f"ON c.level = %(l)s AND c.tx = p.x >> {CELL_BITS - 1} AND c.ty = p.y >> {CELL_BITS - 1} "
               "AND c.cx BETWEEN 2 * p.x AND 2 * p.x + 1 AND c.cy BETWEEN 2 * p.y AND 2 * p.y + 1")
        return self._arrays(self.conn.exec_driver_sql(sql, {"l": level, "px": px.tolist(),
                                                            "py": py.tolist()}).all())


def point_counts(store: Store, layer_id: str, units: list[bytes]) -> PointCounts | None:
    """Points per unit and status (and smart points per unit), exact; None when the walk would read
    more than MAX_READ points from the layer (the caller then counts from the layer table)."""
    layer = store.layer(layer_id)
    prepared = prepare(units)
    if prepared is None:
        return PointCounts([], {})
    values = list(layer.status.values)
    nu, k = len(units), len(values)
    acc, acc_smart = np.zeros((nu, k), dtype=np.int64), np.zeros(nu, dtype=np.int64)
    lv = tilecells.levels(layer)
    with store.read() as conn:
        conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        cells = _Cells(conn, layer)
        bx0, by0, bx1, by1 = prepared.bounds
        gx, gy = global_cells(np.array([bx0, bx1]), np.array([by1, by0]), lv.start)  # cy grows southward
        cx, cy, n, counts, smart = cells.box(lv.start, int(gx[0]), int(gy[0]), int(gx[1]), int(gy[1]))
        in_box = int(n.sum())
        for level in lv:
            x0, y0, x1, y1 = cell_rects(level, cx, cy)
            border, pc, pu = meets(prepared, shapely.box(x0, y0, x1, y1),
                                   shapely.points((x0 + x1) / 2, (y0 + y1) / 2))
            deeper = border | (n != counts.sum(axis=1))
            whole = ~deeper[pc]
            np.add.at(acc, pu[whole], counts[pc[whole]])
            np.add.at(acc_smart, pu[whole], smart[pc[whole]])
            met = np.zeros(len(cx), dtype=bool)
            met[pc] = True
            deeper &= met                      # cells outside every unit are dropped
            if level == lv.stop - 1:
                break
            cx, cy, n, counts, smart = cells.children(level + 1, cx[deeper], cy[deeper])
        if int(n[deeper].sum()) > max(MAX_READ, MAX_READ_SHARE * in_box):
            return None
        read = _read_points(conn, store, layer, prepared, level, cx, cy, deeper, pc, pu)
    counted = {(int(u), values[j]): int(acc[u, j]) for u, j in zip(*np.nonzero(acc), strict=True)}
    out_smart = {int(u): int(s) for u, s in enumerate(acc_smart) if s}
    for u, status, c, s in read:
        counted[(u, status)] = counted.get((u, status), 0) + c
        if s:
            out_smart[u] = out_smart.get(u, 0) + s
    return PointCounts([(u, s, c) for (u, s), c in counted.items()], out_smart)


def _read_points(conn: sa.Connection, store: Store, layer, prepared: Units, level: int, cx: np.ndarray,
                 cy: np.ndarray, deeper: np.ndarray, pc: np.ndarray, pu: np.ndarray) -> list[tuple]:
    """(unit, status, count, smart count) of the points in the finest cells that were not counted
    whole, each tested with ST_Intersects against the units that meet its cell."""
    cells = np.flatnonzero(deeper)
    if not len(cells):
        return []
    take = deeper[pc]
    x0, y0, x1, y1 = cell_rects(level, cx[cells], cy[cells])
    used = np.unique(pu[take])
    table = tilecells.ident(store.table(layer.id).name)
    gx, gy = tilecells.cell_sql("ST_X(m.geom)", "ST_Y(m.geom)", level)
    smart = (f"count(*) FILTER (WHERE m.{tilecells.ident(tilecells.SMART_FIELD)})"
             if tilecells.smart_column(layer) else "0")
    sql = (f"SELECT c.unit, m.status, count(*), {smart} "
           "FROM unnest(CAST(%(cx)s AS int[]), CAST(%(cy)s AS int[]), CAST(%(x0)s AS float8[]), "
           "CAST(%(y0)s AS float8[]), CAST(%(x1)s AS float8[]), CAST(%(y1)s AS float8[])) "
           "AS b(cx, cy, x0, y0, x1, y1) "
           f"JOIN {table} m ON m.geom && ST_MakeEnvelope(b.x0, b.y0, b.x1, b.y1, {SRID}) "
           "JOIN unnest(CAST(%(pcx)s AS int[]), CAST(%(pcy)s AS int[]), CAST(%(pu)s AS int[])) AS c(cx, cy, unit) "
           "ON c.cx = b.cx AND c.cy = b.cy "
           "JOIN unnest(CAST(%(ui)s AS int[]), CAST(CAST(%(ug)s AS text[]) AS geometry[])) AS u(idx, g) "
           f"ON u.idx = c.unit WHERE {gx} = b.cx AND {gy} = b.cy AND ST_Intersects(u.g, m.geom) "
           "GROUP BY c.unit, m.status")
    return [tuple(r) for r in conn.exec_driver_sql(sql, {
        "cx": cx[cells].tolist(), "cy": cy[cells].tolist(), "x0": x0.tolist(), "y0": y0.tolist(),
        "x1": x1.tolist(), "y1": y1.tolist(), "pcx": cx[pc[take]].tolist(), "pcy": cy[pc[take]].tolist(),
        "pu": pu[take].tolist(), "ui": used.tolist(), "ug": [prepared.hexes[u] for u in used]}).all()]
