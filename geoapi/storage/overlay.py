"""Tallies of one layer's features inside a list of unit polygons, counted by the database.

For each unit and each combination of the ``group`` columns: how many features intersect the
unit, and for lines/polygons the clipped length/area (metres / m² on the ellipsoid) and the sum
of each feature's share inside the unit (clipped ÷ whole). PostGIS does all units in one
set-based query (units passed as a WKB array, GiST-driven join); SpatiaLite runs one
R*Tree-driven query per unit.
"""

from __future__ import annotations

from dataclasses import dataclass

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


def geometries_near(store: Store, layer_id: str, bounds: tuple[float, float, float, float], conds: list,
                    limit: int) -> list[bytes]:
    """WKB of the features whose box meets ``bounds`` (index-driven), at most ``limit`` + 1."""
    a = store.table(layer_id)
    stmt = (sa.select(func.ST_AsBinary(a.c.geom)).where(index_frame(store.dialect, a, bounds), *conds)
            .limit(limit + 1))
    with store.read() as conn:
        return [bytes(r[0]) for r in conn.execute(stmt)]
