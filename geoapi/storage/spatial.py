"""Spatial predicates for queries (items filters, CQL2, along, coverage) on both backends.

Every predicate is built from SQLAlchemy constructs with bound parameters (several may appear
in one statement), and each starts with a bounding-box condition the spatial index can drive.
"""

from __future__ import annotations

import sqlalchemy as sa
from geoalchemy2 import Geography
from sqlalchemy import func

from geoapi.storage.schema import SRID

Bounds = tuple[float, float, float, float]

# SpatiaLite's R*Tree access point (a virtual table over every spatial index).
_SPATIAL_INDEX = sa.table("SpatialIndex", sa.column("rowid"), sa.column("f_table_name"),
                          sa.column("f_geometry_column"), sa.column("search_frame"))


def point(dialect: str, lon: float, lat: float):
    if dialect == "postgis":
        return func.ST_SetSRID(func.ST_MakePoint(lon, lat), SRID)
    return func.MakePoint(lon, lat, SRID)


def envelope(dialect: str, b: Bounds):
    if b[0] == b[2] or b[1] == b[3]:
        # A point-sized box: SpatiaLite's BuildMbr returns NULL for it, so widen it a hair (~0.1 mm).
        b = (b[0] - 1e-9, b[1] - 1e-9, b[2] + 1e-9, b[3] + 1e-9)
    if dialect == "postgis":
        return func.ST_MakeEnvelope(b[0], b[1], b[2], b[3], SRID)
    return func.BuildMbr(b[0], b[1], b[2], b[3], SRID)


def from_wkb(wkb: bytes):
    return func.ST_GeomFromWKB(wkb, SRID)


def index_frame(dialect: str, table: sa.Table, b: Bounds):
    """Rows whose bounding box meets ``b``: index-only, no exact test."""
    if dialect == "postgis":
        return table.c.geom.op("&&")(envelope(dialect, b))
    si = _SPATIAL_INDEX
    rowids = sa.select(si.c.rowid).where(si.c.f_table_name == table.name, si.c.f_geometry_column == "geom",
                                         si.c.search_frame == envelope(dialect, b))
    return table.c.id.in_(rowids)


def in_bbox(dialect: str, table: sa.Table, b: Bounds):
    """Rows whose geometry intersects the box ``b``, driven by the spatial index."""
    return sa.and_(index_frame(dialect, table, b), func.ST_Intersects(table.c.geom, envelope(dialect, b)))


def intersects(dialect: str, table: sa.Table, wkb: bytes, bounds: Bounds):
    """Rows whose geometry intersects a geometry given as WKB (EPSG:4490)."""
    return sa.and_(index_frame(dialect, table, bounds), func.ST_Intersects(table.c.geom, from_wkb(wkb)))


def within_metres(dialect: str, table: sa.Table, lon: float, lat: float, metres: float, frame: Bounds):
    """Rows within ``metres`` (geodesic, on the ellipsoid) of a point; ``frame`` is a lon/lat box
    that contains the whole circle: it drives the index."""
    pt = point(dialect, lon, lat)
    if dialect == "postgis":
        geog = Geography(srid=SRID)
        exact = func.ST_DWithin(sa.cast(func.ST_Force2D(table.c.geom), geog), sa.cast(pt, geog), metres)
    else:
        exact = func.ST_Distance(table.c.geom, pt, 1) <= metres
    return sa.and_(index_frame(dialect, table, frame), exact)
