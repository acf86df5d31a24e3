"""The few places SpatiaLite and PostGIS differ. Nothing outside geoapi.storage branches on it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy import func

_SQLITE_UNAVAILABLE = ("unable to open database", "database is locked", "disk i/o error", "readonly database")


def is_unavailable(exc: sa.exc.DBAPIError) -> bool:
    """True when an error means the database cannot be reached (503), not that the SQL is wrong."""
    if exc.connection_invalidated:
        return True
    text = str(exc.orig).lower()
    if any(s in text for s in _SQLITE_UNAVAILABLE):
        return True
    return type(exc.orig).__module__.startswith("psycopg") and isinstance(exc, sa.exc.OperationalError)


def greatest(dialect: str, a, b):
    return func.greatest(a, b) if dialect == "postgis" else func.max(a, b)


def json_text(dialect: str, column):
    """A JSON column as text, for containment tests of enum lists."""
    return sa.cast(column, sa.Text) if dialect == "postgis" else column


@contextmanager
def local_setting(conn: sa.Connection, name: str, value: str) -> Iterator[None]:
    """PostgreSQL: ``SET LOCAL name = value`` for the block, the previous value back after it.
    An error inside leaves the setting to the rollback of the transaction or savepoint."""
    previous = conn.exec_driver_sql(f"SHOW {name}").scalar_one()
    conn.exec_driver_sql("SELECT set_config(%(n)s, %(v)s, true)", {"n": name, "v": value})
    yield
    conn.exec_driver_sql("SELECT set_config(%(n)s, %(v)s, true)", {"n": name, "v": previous})
