"""Database engines: SpatiaLite (one file, the default) and PostGIS.

SpatiaLite needs a Python ``sqlite3`` that can load extensions. Debian's python3 can; some
builds (pyenv, macOS system Python) cannot, in which case the ``pysqlite3`` wheel is used.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from types import ModuleType

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url

from geoapi.storage.asyncpool import AsyncReadPool

SPATIALITE_CANDIDATES = (
    "mod_spatialite",
    "mod_spatialite.so",
    "/usr/lib/x86_64-linux-gnu/mod_spatialite.so",
    "/usr/lib/aarch64-linux-gnu/mod_spatialite.so",
    "/usr/local/lib/mod_spatialite.dylib",
    "/opt/homebrew/lib/mod_spatialite.dylib",
)


class SpatialiteUnavailableError(RuntimeError):
    pass


def sqlite_module() -> ModuleType:
    """The first sqlite3 module that can load extensions: the standard one, else pysqlite3."""
    if hasattr(sqlite3.Connection, "enable_load_extension"):
        return sqlite3
    try:
        import pysqlite3.dbapi2 as pysqlite  # type: ignore[import-not-found]
    except ImportError as exc:
        raise SpatialiteUnavailableError(
            "this Python's sqlite3 cannot load extensions and pysqlite3-binary is not installed; "
            "use the OS python3 (Debian: apt install python3-venv) or pip install pysqlite3-binary"
        ) from exc
    return pysqlite


def preload_native_wheels() -> None:
    """Load the wheels' own PROJ/GEOS/GDAL before SpatiaLite.

    SQLite dlopens extensions with RTLD_GLOBAL, which puts the *system* PROJ, GEOS and SQLite
    symbols (mod_spatialite's dependencies) in the global scope. A wheel that bundles those
    libraries (pyproj, shapely, pyogrio, rasterio) and is loaded afterwards then binds to the
    system copies and crashes (segfault or a double free at exit). Loaded first, each binds to
    its own. tests/storage/test_native_libs.py guards this.
    """
    import pyogrio  # noqa: F401
    import pyproj  # noqa: F401
    import rasterio  # noqa: F401
    import shapely  # noqa: F401


def load_spatialite(dbapi_conn) -> None:
    preload_native_wheels()
    dbapi_conn.enable_load_extension(True)
    candidates = [os.environ["GEOAPI_SPATIALITE_PATH"]] if os.environ.get("GEOAPI_SPATIALITE_PATH") else []
    errors = []
    for lib in [*candidates, *SPATIALITE_CANDIDATES]:
        try:
            dbapi_conn.load_extension(lib)
            break
        except Exception as exc:  # the driver raises OperationalError per candidate
            errors.append(f"{lib}: {exc}")
    else:
        raise SpatialiteUnavailableError(
            "cannot load SpatiaLite (Debian: apt install libsqlite3-mod-spatialite; or set "
            "GEOAPI_SPATIALITE_PATH): " + "; ".join(errors[:3])
        )
    dbapi_conn.enable_load_extension(False)


def dump_json(value) -> str:
    """JSON as stored: Chinese kept as characters, so values are readable and LIKE-searchable."""
    return json.dumps(value, ensure_ascii=False)


def make_engine(url: str) -> tuple[Engine, str]:
    """Return the engine and its dialect name: ``"spatialite"`` or ``"postgis"``."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        pool_args: dict = {}
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            pool_args = {"pool_size": 8, "max_overflow": 8}
        engine = create_engine(
            url, module=sqlite_module(), connect_args={"check_same_thread": False, "timeout": 30},
            json_serializer=dump_json, **pool_args
        )
        _setup_spatialite(engine)
        return engine, "spatialite"
    if parsed.get_backend_name() == "postgresql":
        # No pre-ping: it costs a round trip per request. A dropped connection is detected on use,
        # the pool is invalidated (that request answers 503) and the next request reconnects.
        # No parallel query: on a few cores its start-up costs more than it saves on the short
        # queries an API runs (bench/README.md). No JIT: PostgreSQL compiles any plan costed
        # over jit_above_cost, and a KNN scan with a long LIMIT is costed so (compiling took
        # 2 s for a 3 ms /nearest scan; coverage of 1M points ran no slower without it).
        # Set GEOAPI_PG_OPTIONS to change session settings.
        engine = create_engine(url, json_serializer=dump_json, pool_size=10, max_overflow=10, pool_recycle=1800,
                               connect_args=_pg_connect_args())
        return engine, "postgis"
    raise ValueError(f"unsupported database URL {url!r}: use a sqlite:/// path or postgresql://")


def _pg_connect_args() -> dict:
    options = os.environ.get("GEOAPI_PG_OPTIONS", "-c max_parallel_workers_per_gather=0 -c jit=off")
    return {"connect_timeout": 5, "options": options}


def make_async_reader(engine: Engine) -> AsyncReadPool:
    """PostGIS: a pool for one-statement reads awaited on the event loop (psycopg's async
    connection; geoapi.storage.asyncpool), autocommit (no BEGIN / ROLLBACK round trips), the
    same session settings as ``engine``. Its connections belong to the event loop that opened them."""
    conninfo = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    return AsyncReadPool(conninfo, size=10, max_age=1800, **_pg_connect_args())


def autocommit_reads(conn: Connection) -> Connection:
    """Let a fresh PostGIS connection run its reads without a transaction: no BEGIN before the
    first statement, no ROLLBACK when it goes back to the pool (two round trips of three for a
    one-statement read). Only for reads that need no common snapshot and no ``SET LOCAL``; the
    pool restores the isolation level on return. SpatiaLite connections are left as they are."""
    if conn.dialect.name == "postgresql" and not conn.in_transaction():
        conn.execution_options(isolation_level="AUTOCOMMIT")
    return conn


def _setup_spatialite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        # Let SQLAlchemy, not the driver, decide when transactions begin (pysqlite's own
        # handling breaks SAVEPOINT and BEGIN IMMEDIATE).
        dbapi_conn.isolation_level = None
        load_spatialite(dbapi_conn)
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        # Writers take the write lock up front so two writers never deadlock on upgrade;
        # readers stay deferred and run concurrently under WAL.
        write = conn.get_execution_options().get("geoapi_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
