"""Tallies of one layer's features inside a list of unit polygons, counted by the database.

For each unit and each combination of the ``group`` columns: how many features intersect the
unit, and for lines/polygons the clipped length/area (metres / m² on the ellipsoid) and the sum
of each feature's share inside the unit (clipped ÷ whole). PostGIS does all units in one
set-based query (units passed as a WKB array, GiST-driven join); SpatiaLite runs one
R*Tree-driven query per unit.

Point layers on PostGIS whose units reach a large part of the table (manholes by district: all
1,000,000 rows) take a grid path instead: the GiST join fetches every candidate row from the heap
in index order, one random page read per row (≈ 15 s for 1M), while a sequential scan reads the
table once. Each point is hashed to a cell of a regular grid over the units; a cell lying wholly
inside a unit counts its points without a test, and only points in cells a unit border crosses
are tested with ST_Intersects against the unit's own (unclipped) polygon, so the boundary rule
stays exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
import sqlalchemy as sa
from geoalchemy2 import Geography
from sqlalchemy import func
from sqlalchemy.dialects import postgresql

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
            conds: list) -> list[Tally]:
    """Per unit (WKB polygons, EPSG:4490) and group: count, clipped measure, share sum."""
    if not units:
        return []
    a = store.table(layer_id)
    cols = [a.c[g] for g in group]
    if store.dialect == "postgis":
        if kind == "point" and store.layer(layer_id).geometry == "Point" and _grid_pays(store, a, units):
            return _postgis_point_grid(store, a, units, cols, conds)
        return _postgis(store, a, units, kind, cols, conds)
    out: list[Tally] = []
    with store.read() as conn:
        for i, wkb in enumerate(units):
            g = func.ST_GeomFromWKB(wkb, SRID)
            part, share = _measures(store.dialect, kind, g, a.c.geom)
            si = _SPATIAL_INDEX
            rowids = sa.select(si.c.rowid).where(si.c.f_table_name == a.name, si.c.f_geometry_column == "geom",
                                                 si.c.search_frame == g)
            stmt = (sa.select(*cols, func.count(), func.sum(part), func.sum(share))
                    .where(a.c.id.in_(rowids), func.ST_Intersects(a.c.geom, g), *conds).group_by(*cols))
            for row in conn.execute(stmt):
                out.append(Tally(i, tuple(row[: len(cols)]), row[-3], float(row[-2] or 0), float(row[-1] or 0)))
    return out


def _postgis(store: Store, a: sa.Table, units: list[bytes], kind: str, cols: list, conds: list) -> list[Tally]:
    idx = sa.bindparam("unit_idx", list(range(len(units))), type_=postgresql.ARRAY(sa.Integer))
    wkb = sa.bindparam("unit_wkb", units, type_=postgresql.ARRAY(sa.LargeBinary))
    u = sa.select(func.unnest(idx).label("idx"),
                  func.ST_GeomFromWKB(func.unnest(wkb), SRID).label("g")).subquery("units")
    part, share = _measures(store.dialect, kind, u.c.g, a.c.geom)
    on = sa.and_(a.c.geom.op("&&")(u.c.g), func.ST_Intersects(u.c.g, a.c.geom))
    stmt = (sa.select(u.c.idx, *cols, func.count(), func.sum(part), func.sum(share))
            .select_from(u.join(a, on)).where(*conds).group_by(u.c.idx, *cols))
    with store.read() as conn:
        rows = conn.execute(stmt).all()
    return [Tally(r[0], tuple(r[1: 1 + len(cols)]), r[-3], float(r[-2] or 0), float(r[-1] or 0)) for r in rows]


GRID_CELLS = 256            # cells along the longer side of the units' bounding box
GRID_MIN_ROWS = 20_000     # below this many candidate rows the GiST join is cheaper
GRID_MIN_SHARE = 0.1       # ... or below this share of the table


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


def _grid_cells(units: list[bytes]) -> tuple[tuple[float, float, float], dict[str, list]]:
    """The grid frame (x0, y0, cell size) and, per unit, the cells it meets and whether it covers them.

    Cells are tested slightly enlarged, so a point hashed to a cell by the database's own floor()
    lies inside the tested box whatever the rounding: "covers" then implies the unit contains it,
    and a unit that contains it is listed for that cell.
    """
    geoms = shapely.from_wkb(units)
    x0, y0, x1, y1 = shapely.total_bounds(geoms)
    size = max(x1 - x0, y1 - y0) / GRID_CELLS or 1e-6
    eps = size * 1e-6
    out: dict[str, list] = {"unit": [], "i": [], "j": [], "inside": []}
    for k, g in enumerate(geoms):
        if g is None or g.is_empty:
            continue
        gx0, gy0, gx1, gy1 = g.bounds
        ii, jj = np.meshgrid(np.arange(int(np.floor((gx0 - x0) / size)), int(np.floor((gx1 - x0) / size)) + 1),
                             np.arange(int(np.floor((gy0 - y0) / size)), int(np.floor((gy1 - y0) / size)) + 1))
        ii, jj = ii.ravel(), jj.ravel()
        boxes = shapely.box(x0 + ii * size - eps, y0 + jj * size - eps, x0 + (ii + 1) * size + eps,
                            y0 + (jj + 1) * size + eps)
        shapely.prepare(g)
        meets = shapely.intersects(g, boxes)
        inside = shapely.covers(g, boxes[meets])
        out["unit"] += [k] * int(meets.sum())
        out["i"] += ii[meets].tolist()
        out["j"] += jj[meets].tolist()
        out["inside"] += inside.tolist()
    return (float(x0), float(y0), float(size)), out


def _postgis_point_grid(store: Store, a: sa.Table, units: list[bytes], cols: list, conds: list) -> list[Tally]:
    """Point counts per unit and group in one sequential scan, hash-joined to the grid cells."""
    (x0, y0, size), cells = _grid_cells(units)
    if not cells["unit"]:
        return []
    arr = postgresql.ARRAY
    c = func.unnest(sa.bindparam("cell_unit", cells["unit"], type_=arr(sa.Integer)),
                    sa.bindparam("cell_i", cells["i"], type_=arr(sa.Integer)),
                    sa.bindparam("cell_j", cells["j"], type_=arr(sa.Integer)),
                    sa.bindparam("cell_inside", cells["inside"], type_=arr(sa.Boolean)),
                    ).table_valued("unit", "i", "j", "inside").render_derived(name="cells")
    raw = func.unnest(sa.bindparam("unit_idx", list(range(len(units))), type_=arr(sa.Integer)),
                      sa.bindparam("unit_wkb", units, type_=arr(sa.LargeBinary))).table_valued("idx", "wkb").render_derived(name="unit_rows")
    u = sa.select(raw.c.idx, func.ST_GeomFromWKB(raw.c.wkb, SRID).label("g")).subquery("units")

    def cell_of(coord, origin: float):
        return sa.cast(func.floor((coord - origin) / size), sa.Integer)

    on_cell = sa.and_(c.c.i == cell_of(func.ST_X(a.c.geom), x0), c.c.j == cell_of(func.ST_Y(a.c.geom), y0))
    # units are looked up (hash key) only for border cells; interior cells count without a test
    border_unit = u.c.idx == sa.case((c.c.inside, -1), else_=c.c.unit)
    stmt = (sa.select(c.c.unit, *cols, func.count())
            .select_from(a.join(c, on_cell).outerjoin(u, border_unit))
            .where(sa.or_(c.c.inside, func.ST_Intersects(u.c.g, a.c.geom)), *conds)
            .group_by(c.c.unit, *cols))
    with store.read() as conn:
        # Hash the cells and the groups: ST_Intersects' nominal cost makes the planner sort the
        # million joined rows instead (merge join, sorted grouping), ≈ 3× slower.
        for setting in ("work_mem = '64MB'", "enable_mergejoin = off", "enable_sort = off"):
            conn.execute(sa.text(f"SET LOCAL {setting}"))
        rows = conn.execute(stmt).all()
    return [Tally(r[0], tuple(r[1: 1 + len(cols)]), r[-1], 0.0, float(r[-1])) for r in rows]


def geometries_near(store: Store, layer_id: str, bounds: tuple[float, float, float, float], conds: list,
                    limit: int) -> list[bytes]:
    """WKB of the features whose box meets ``bounds`` (index-driven), at most ``limit`` + 1."""
    a = store.table(layer_id)
    stmt = (sa.select(func.ST_AsBinary(a.c.geom)).where(index_frame(store.dialect, a, bounds), *conds)
            .limit(limit + 1))
    with store.read() as conn:
        return [bytes(r[0]) for r in conn.execute(stmt)]
