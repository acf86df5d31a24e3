"""Tallies of one layer's features inside a list of unit polygons, counted by the database.

For each unit and each combination of the ``group`` columns: how many features intersect the
unit, and for lines/polygons the clipped length/area (metres / m² on the ellipsoid) and the sum
of each feature's share inside the unit (clipped ÷ whole). PostGIS does all units in one
set-based query (units passed as a WKB array, GiST-driven join); SpatiaLite runs one
R*Tree-driven query per unit.

Point layers on PostGIS whose units reach a large part of the table (manholes by district: all
1,000,000 rows) take a grid path instead: the GiST join fetches every candidate row from the heap
in index order, one random page read per row (≈ 15 s for 1M), while a sequential scan reads the
table once. Each point is hash-joined to its cell of a coarse grid over the units; a cell lying
wholly inside one unit counts its points without a test; in a coarse cell a border crosses, the
point's fine cell is looked up the same way, and only points in fine cells a border crosses are
tested with ST_Intersects against each candidate unit's own (unclipped) polygon, so the
boundary rule stays exact.

Unfiltered point counts by status take the cell pyramid first when the layer keeps one
(geoapi.storage.cellcover): most points are counted a whole cell at a time without reading the
layer, and only points in the finest cells a border crosses are read and tested.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np
import shapely
import sqlalchemy as sa
from geoalchemy2 import Geography, Geometry
from sqlalchemy import func
from sqlalchemy.dialects import postgresql

from geoapi.storage import cellcover
from geoapi.storage.schema import SRID
from geoapi.storage.spatial import index_frame
from geoapi.storage.store import Store

_SPATIAL_INDEX = sa.table("SpatialIndex", sa.column("rowid"), sa.column("f_table_name"),
                          sa.column("f_geometry_column"), sa.column("search_frame"))


@dataclass
class Tally:
    unit: int                 # index into the units list
    group: tuple              # values of the group columns
    count: int                # features intersecting the unit
    measure: float            # clipped length (m) or area (m²); 0 for points
    share: float              # Σ clipped/whole; equals count for points


@dataclass
class Tallies:
    rows: list[Tally]
    # unit → per flag column, Σ share of the unit's features whose flag is true (points: a count)
    flagged: dict[int, list[float]] = field(default_factory=dict)

    def add_flagged(self, unit: int, values) -> None:
        have = self.flagged.setdefault(unit, [0.0] * len(values))
        for i, v in enumerate(values):
            have[i] += float(v or 0)


def _flag_sums(flags: list, weight) -> list:
    return [func.sum(sa.case((f.is_(True), weight), else_=0.0)) for f in flags]


def _measures(dialect: str, kind: str, unit_geom, geom):
    """(clipped measure, share) SQL expressions for one feature geometry against one unit."""
    if kind == "point":
        return sa.literal(0.0), sa.literal(1.0)
    dim = 2 if kind == "line" else 3
    if dialect == "postgis":
        geog = Geography(srid=SRID)
        clipped = func.ST_CollectionExtract(func.ST_Intersection(unit_geom, geom), dim)
        size = func.ST_Length if kind == "line" else func.ST_Area
        # geography columns are 2D: drop heights (pipes carry Z) before the cast
        part, whole = size(sa.cast(func.ST_Force2D(clipped), geog)), size(sa.cast(func.ST_Force2D(geom), geog))
    else:
        clipped = func.CollectionExtract(func.ST_Intersection(unit_geom, geom), dim)
        size = func.ST_Length if kind == "line" else func.ST_Area
        part, whole = func.coalesce(size(clipped, 1), 0.0), size(geom, 1)
    return part, part / func.nullif(whole, 0.0)


def tallies(store: Store, layer_id: str, units: list[bytes], *, kind: str, group: list[str],
            conds: list, flags: list[str] = ()) -> Tallies:
    """Per unit (WKB polygons, EPSG:4490) and group: count, clipped measure, share sum; per unit
    and bool ``flags`` column: the share sum of the features whose flag is true."""
    if not units:
        return Tallies([])
    a = store.table(layer_id)
    cols, fcols = [a.c[g] for g in group], [a.c[f] for f in flags]
    if store.dialect == "postgis":
        if kind == "point" and not conds and cellcover.usable(store, layer_id, group, list(flags)):
            counts = cellcover.point_counts(store, layer_id, units)
            if counts is not None:
                return Tallies([Tally(u, (s,), c, 0.0, float(c)) for u, s, c in counts.rows],
                               {u: [float(c)] for u, c in counts.smart.items()} if flags else {})
        if kind == "point" and store.layer(layer_id).geometry == "Point" and _grid_pays(store, a, units):
            return _postgis_point_grid(store, a, units, cols, conds, fcols)
        return _postgis(store, a, units, kind, cols, conds, fcols)
    rows = []
    with store.read() as conn:
        for i, wkb in enumerate(units):
            g = func.ST_GeomFromWKB(wkb, SRID)
            part, share = _measures(store.dialect, kind, g, a.c.geom)
            si = _SPATIAL_INDEX
            rowids = sa.select(si.c.rowid).where(si.c.f_table_name == a.name, si.c.f_geometry_column == "geom",
                                                 si.c.search_frame == g)
            stmt = (sa.select(*cols, func.count(), func.sum(part), func.sum(share), *_flag_sums(fcols, share))
                    .where(a.c.id.in_(rowids), func.ST_Intersects(a.c.geom, g), *conds).group_by(*cols))
            rows += [(i, *row) for row in conn.execute(stmt)]
    return _rows(rows, len(cols), len(fcols))


def _rows(rows, ncols: int, nflags: int, point: bool = False) -> Tallies:
    """Tallies of (unit, *group, count, [measure, share,] *flag sums) rows."""
    out = Tallies([])
    for r in rows:
        n = 1 + ncols
        if point:
            out.rows.append(Tally(r[0], tuple(r[1:n]), r[n], 0.0, float(r[n])))
        else:
            out.rows.append(Tally(r[0], tuple(r[1:n]), r[n], float(r[n + 1] or 0), float(r[n + 2] or 0)))
        if nflags:
            out.add_flagged(r[0], r[len(r) - nflags:])
    return out


def _postgis(store: Store, a: sa.Table, units: list[bytes], kind: str, cols: list, conds: list,
             flags: list = ()) -> Tallies:
    idx = sa.bindparam("unit_idx", list(range(len(units))), type_=postgresql.ARRAY(sa.Integer))
    wkb = sa.bindparam("unit_wkb", units, type_=postgresql.ARRAY(sa.LargeBinary))
    u = sa.select(func.unnest(idx).label("idx"),
                  func.ST_GeomFromWKB(func.unnest(wkb), SRID).label("g")).subquery("units")
    part, share = _measures(store.dialect, kind, u.c.g, a.c.geom)
    on = sa.and_(a.c.geom.op("&&")(u.c.g), func.ST_Intersects(u.c.g, a.c.geom))
    stmt = (sa.select(u.c.idx, *cols, func.count(), func.sum(part), func.sum(share), *_flag_sums(flags, share))
            .select_from(u.join(a, on)).where(*conds).group_by(u.c.idx, *cols))
    with store.read() as conn:
        rows = conn.execute(stmt).all()
    return _rows(rows, len(cols), len(flags))


GRID_CELLS = 256           # coarse cells along the longer side of the units' bounding box
GRID_SUB = 4               # a coarse cell a unit border crosses is split into GRID_SUB² fine cells
GRID_MIN_ROWS = 20_000     # below this many candidate rows the GiST join is cheaper
GRID_MIN_SHARE = 0.1       # ... or below this share of the table
OUTSIDE, BORDER = -1, -2   # cell codes besides a unit index
_COARSE_STRIDE = 1 << 16


def _grid_pays(store: Store, a: sa.Table, units: list[bytes]) -> bool:
    """Whether the units' boxes reach enough of the table that one sequential scan beats the index.

    Estimated from the planner's statistics (row count, estimated extent), assuming rows spread
    evenly over the extent: cheap, and only picks between two exact plans.
    """
    with store.read() as conn:
        row = conn.execute(sa.text(
            "SELECT c.reltuples, ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) "
            "FROM pg_class c, LATERAL (SELECT ST_EstimatedExtent(:t, 'geom')::geometry AS e) x "
            "WHERE c.oid = CAST(:t AS regclass)"), {"t": a.name}).first()
    if row is None or row[0] is None or row[0] <= 0 or row[1] is None:
        return False
    rows, ex0, ey0, ex1, ey1 = float(row[0]), *map(float, row[1:])
    extent = max(ex1 - ex0, 1e-9) * max(ey1 - ey0, 1e-9)
    b = shapely.bounds(shapely.from_wkb(units))
    w = np.clip(np.minimum(b[:, 2], ex1) - np.maximum(b[:, 0], ex0), 0, None)
    h = np.clip(np.minimum(b[:, 3], ey1) - np.maximum(b[:, 1], ey0), 0, None)
    candidates = rows * float(np.sum(w * h)) / extent
    return candidates >= max(GRID_MIN_ROWS, GRID_MIN_SHARE * rows)


@dataclass
class _Grid:
    """Coarse cells over the units and fine cells inside the coarse cells a border crosses.

    Per coarse cell: the one unit that wholly contains it, or BORDER (OUTSIDE cells are left
    out). Per fine cell: that unit, or BORDER with one row per candidate unit to test (OUTSIDE
    cells are left out).
    """

    x0: float
    y0: float
    size: float                      # coarse cell side; fine cells are size / GRID_SUB
    nx: int
    ny: int
    coarse: tuple[list, list]        # key = i * 2¹⁶ + j, code
    fine: tuple[list, list, list]    # key = I * ny·SUB + J, code, candidate unit (BORDER rows); no OUTSIDE
    units: list[str]                 # the units as EWKB hex, for the database's exact test


def _classify(units: cellcover.Units, x0, y0, size: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Codes of the cells [x0, x0 + size] × [y0, y0 + size] (arrays of lower-left corners), and
    for BORDER cells the (cell, unit) pairs of the units that meet them.

    Cells are tested slightly enlarged, so a point the database's floor() puts in a cell lies
    inside the tested box whatever the rounding. A box no boundary meets is wholly inside or
    outside each unit; one inside several (overlapping units) is BORDER: each point is tested.
    """
    eps = size * 1e-6
    border, cell, unit = cellcover.meets(units, shapely.box(x0 - eps, y0 - eps, x0 + size + eps, y0 + size + eps),
                                         shapely.points(x0 + size / 2, y0 + size / 2))
    inside = ~border[cell]
    border |= np.bincount(cell[inside], minlength=len(border)) > 1
    code = np.full(len(border), OUTSIDE, dtype=np.int64)
    code[cell[inside]] = unit[inside]
    code[border] = BORDER
    keep = border[cell]
    return code, cell[keep], unit[keep]


def _build_grid(units: list[bytes]) -> _Grid | None:
    prepared = cellcover.prepare(units)
    if prepared is None:
        return None
    bx0, by0, bx1, by1 = prepared.bounds
    size = max(bx1 - bx0, by1 - by0) / GRID_CELLS or 1e-6
    x0, y0 = bx0 - size, by0 - size   # a ring of outside cells; far points are clamped onto it
    nx, ny = int((bx1 - x0) // size) + 2, int((by1 - y0) // size) + 2
    ii, jj = (a.ravel() for a in np.meshgrid(np.arange(nx), np.arange(ny), indexing="ij"))
    code, _, _ = _classify(prepared, x0 + ii * size, y0 + jj * size, size)
    keep = code != OUTSIDE
    coarse = ((ii * _COARSE_STRIDE + jj)[keep].tolist(), code[keep].tolist())
    b = np.flatnonzero(code == BORDER)
    si, sj = (a.ravel() for a in np.meshgrid(np.arange(GRID_SUB), np.arange(GRID_SUB), indexing="ij"))
    fi = (ii[b, None] * GRID_SUB + si).ravel()
    fj = (jj[b, None] * GRID_SUB + sj).ravel()
    fsize = size / GRID_SUB
    fcode, cell, unit = _classify(prepared, x0 + fi * fsize, y0 + fj * fsize, fsize)
    fkey = fi * (ny * GRID_SUB) + fj
    plain = fcode >= 0                  # OUTSIDE fine cells are left out too
    fine = (np.concatenate([fkey[plain], fkey[cell]]).tolist(),
            np.concatenate([fcode[plain], np.full(len(cell), BORDER)]).tolist(),
            np.concatenate([np.full(int(plain.sum()), -1), unit]).tolist())
    return _Grid(float(x0), float(y0), float(size), nx, ny, coarse, fine, prepared.hexes)


@functools.lru_cache(maxsize=8)
def _cached_grid(units: tuple[bytes, ...]) -> _Grid | None:
    return _build_grid(list(units))


def _postgis_point_grid(store: Store, a: sa.Table, units: list[bytes], cols: list, conds: list,
                        flags: list = ()) -> Tallies:
    """Point counts per unit and group in one sequential scan, hash-joined to grid cells.

    A point's coarse cell is looked up (one hash probe): in a cell wholly inside a unit it counts
    there without a test. In a coarse cell a border crosses, its fine cell is looked up the same
    way; only points in fine cells a border crosses (≈ 3 % of the city's manholes by district)
    are tested, with ST_Intersects against each candidate unit's own polygon, so the boundary
    rule holds exactly.
    """
    grid = _cached_grid(tuple(units))
    if grid is None:
        return Tallies([])
    ints = postgresql.ARRAY(sa.Integer)
    coarse = func.unnest(sa.bindparam("coarse_k", grid.coarse[0], type_=postgresql.ARRAY(sa.BigInteger)),
                         sa.bindparam("coarse_c", grid.coarse[1], type_=ints)
                         ).table_valued("k", "code").render_derived(name="coarse")
    fine = func.unnest(sa.bindparam("fine_k", grid.fine[0], type_=ints),
                       sa.bindparam("fine_c", grid.fine[1], type_=ints),
                       sa.bindparam("fine_u", grid.fine[2], type_=ints)
                       ).table_valued("k", "code", "unit").render_derived(name="fine")
    # the polygons as a constant: parsed once when the statement is planned, not per row
    polygons = sa.cast(sa.bindparam("unit_ewkb", grid.units, type_=postgresql.ARRAY(sa.Text)),
                       postgresql.ARRAY(Geometry(srid=SRID)))
    u = func.unnest(sa.bindparam("unit_idx", list(range(len(units))), type_=ints),
                    polygons).table_valued("idx", "g").render_derived(name="units")
    x, y, sub = func.ST_X(a.c.geom), func.ST_Y(a.c.geom), GRID_SUB

    def floor(v):
        return sa.cast(func.floor(v), sa.BigInteger)

    def clamp(v, n: int):
        return func.least(func.greatest(floor(v), 0), n - 1)

    fx, fy = (x - grid.x0) / grid.size, (y - grid.y0) / grid.size   # in coarse cells
    # no clamping: |j| < 2¹⁶ for any latitude, so a point off the grid never takes a cell's key
    coarse_key = floor(fx) * _COARSE_STRIDE + floor(fy)
    i, j = clamp(fx, grid.nx), clamp(fy, grid.ny)
    # the fine cell inside the point's own coarse cell, so it is always in the fine table
    fine_key = (i * sub + clamp((fx - i) * sub, sub)) * (grid.ny * sub) + j * sub + clamp((fy - j) * sub, sub)
    test = fine.c.code == BORDER
    unit = sa.case((coarse.c.code >= 0, coarse.c.code), (test, fine.c.unit), else_=fine.c.code)
    stmt = (sa.select(unit, *cols, func.count(), *_flag_sums(flags, 1))
            .select_from(a.join(coarse, coarse.c.k == coarse_key)
                         .outerjoin(fine, fine.c.k == sa.case((coarse.c.code == BORDER, fine_key)))
                         .outerjoin(u, u.c.idx == sa.case((test, fine.c.unit))))
            .where(unit >= 0, sa.or_(~func.coalesce(test, False), func.ST_Intersects(u.c.g, a.c.geom)), *conds)
            .group_by(unit, *cols))
    with store.read() as conn:
        # JIT would compile this plan for > 1 s (ST_Intersects' nominal cost); parallel workers
        # share the scan. Hash the cells and the groups: the planner would sort the million rows.
        for setting in ("jit = off", "max_parallel_workers_per_gather = 2", "work_mem = '64MB'",
                        "enable_mergejoin = off", "enable_sort = off"):
            conn.execute(sa.text(f"SET LOCAL {setting}"))
        rows = conn.execute(stmt).all()
    return _rows(rows, len(cols), len(flags), point=True)


def geometries_near(store: Store, layer_id: str, bounds: tuple[float, float, float, float], conds: list,
                    limit: int) -> list[bytes]:
    """WKB of the features whose box meets ``bounds`` (index-driven), at most ``limit`` + 1."""
    a = store.table(layer_id)
    stmt = (sa.select(func.ST_AsBinary(a.c.geom)).where(index_frame(store.dialect, a, bounds), *conds)
            .limit(limit + 1))
    with store.read() as conn:
        return [bytes(r[0]) for r in conn.execute(stmt)]
