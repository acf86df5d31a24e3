"""The few places SpatiaLite and PostGIS differ. Nothing outside geoapi.storage branches on it."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import func

from geoapi.storage.schema import SRID


def envelope(dialect: str, bbox: tuple[float, float, float, float]):
    if bbox[0] == bbox[2] or bbox[1] == bbox[3]:
        # A point-sized box: SpatiaLite's BuildMbr returns NULL for it, so widen it a hair (~0.1 mm).
        bbox = (bbox[0] - 1e-9, bbox[1] - 1e-9, bbox[2] + 1e-9, bbox[3] + 1e-9)
    if dialect == "postgis":
        return func.ST_MakeEnvelope(bbox[0], bbox[1], bbox[2], bbox[3], SRID)
    return func.BuildMbr(bbox[0], bbox[1], bbox[2], bbox[3], SRID)


_SQLITE_UNAVAILABLE = ("unable to open database", "database is locked", "disk i/o error", "readonly database")


def is_unavailable(exc: sa.exc.DBAPIError) -> bool:
    """True when an error means the database cannot be reached (503), not that the SQL is wrong."""
    if exc.connection_invalidated:
        return True
    text = str(exc.orig).lower()
    if any(s in text for s in _SQLITE_UNAVAILABLE):
        return True
    return type(exc.orig).__module__.startswith("psycopg") and isinstance(exc, sa.exc.OperationalError)


def bbox_predicate(dialect: str, table: sa.Table, bbox: tuple[float, float, float, float]):
    """Rows whose geometry intersects ``bbox``, driven by the spatial index."""
    env = envelope(dialect, bbox)
    if dialect == "postgis":
        return sa.and_(table.c.geom.op("&&")(env), func.ST_Intersects(table.c.geom, env))
    rowids = sa.text(
        "SELECT rowid FROM SpatialIndex WHERE f_table_name = :si_table AND f_geometry_column = 'geom' "
        "AND search_frame = BuildMbr(:si_x0, :si_y0, :si_x1, :si_y1, 4490)"
    ).bindparams(si_table=table.name, si_x0=bbox[0], si_y0=bbox[1], si_x1=bbox[2], si_y1=bbox[3])
    return sa.and_(table.c.id.in_(rowids), func.ST_Intersects(table.c.geom, env))


def geometry_predicate(dialect: str, table: sa.Table, geom_wkb: bytes, bounds: tuple[float, float, float, float]):
    """Rows whose geometry intersects an arbitrary geometry (index on its bounds first)."""
    g = func.ST_GeomFromWKB(geom_wkb, SRID)
    return sa.and_(bbox_predicate(dialect, table, bounds), func.ST_Intersects(table.c.geom, g))


def greatest(dialect: str, a, b):
    return func.greatest(a, b) if dialect == "postgis" else func.max(a, b)


def json_text(dialect: str, column):
    """A JSON column as text, for containment tests of enum lists."""
    return sa.cast(column, sa.Text) if dialect == "postgis" else column
