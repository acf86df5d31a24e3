"""Schema upgrades: alembic for the core tables, then layer tables reconciled with the layer files.

Layer tables are derived from files a city may edit, so they cannot be fixed alembic revisions.
Reconciling creates missing tables and adds missing columns; it never drops or retypes a column
(a removed field's data stays in the table until an operator drops it by hand).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

if TYPE_CHECKING:
    from geoapi.storage.store import Store

MIGRATIONS = Path(__file__).with_name("migrations")

# Hooks other storage modules register (e.g. change-notify triggers on PostGIS), run last.
POST_UPGRADE: list = []


def alembic_config(conn: sa.Connection) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = conn
    return cfg


def head_revision() -> str:
    """The newest alembic revision of the core tables (what ``upgrade`` brings a database to)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(MIGRATIONS)).get_current_head()


def upgrade(store: Store) -> list[str]:
    import geoapi.storage.tilesql  # noqa: F401  (registers its POST_UPGRADE hook: change triggers)

    done: list[str] = []
    with store.engine.connect().execution_options(geoapi_write=True) as conn:
        with conn.begin():
            if store.dialect == "spatialite" and not conn.exec_driver_sql("SELECT CheckSpatialMetaData()").scalar():
                conn.exec_driver_sql("SELECT InitSpatialMetaData(0)")
                done.append("initialised SpatiaLite metadata")
            if store.dialect == "postgis":
                conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS postgis")
            command.upgrade(alembic_config(conn), "head")
            inspector = sa.inspect(conn)
            existing = set(inspector.get_table_names())
            for layer in store.registry:
                table = store.table(layer.id)
                if layer.id not in existing:
                    table.create(conn)
                    done.append(f"created table {layer.id}")
                    continue
                have = {c["name"] for c in inspector.get_columns(layer.id)}
                for col in table.columns:
                    if col.name not in have:
                        ddl = sa.schema.CreateColumn(col).compile(dialect=conn.dialect)
                        conn.exec_driver_sql(f'ALTER TABLE "{layer.id}" ADD COLUMN {ddl}')
                        done.append(f"added column {layer.id}.{col.name}")
            for hook in POST_UPGRADE:
                done += hook(conn, store) or []
    return done


def _geography_indexes(conn: sa.Connection, store: Store) -> list[str]:
    """PostGIS: the geography index of every point layer (idempotent; reports only new ones)."""
    if store.dialect != "postgis":
        return []
    from geoapi.storage.schema import geography_index_ddl

    have = dict(conn.exec_driver_sql(
        "SELECT c.relname, c.reloptions FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind = 'i' AND n.nspname = current_schema()").all())
    done = []
    for layer in store.registry:
        ddl = geography_index_ddl(layer)
        name = f"ix_{layer.id}_geog"
        if not ddl:
            continue
        if name not in have:
            conn.exec_driver_sql(ddl)
            done.append(f"created index {name}")
        elif "buffering=on" not in (have[name] or []):   # made before the option: the next rebuild uses it
            conn.exec_driver_sql(f'ALTER INDEX "{name}" SET (buffering = on)')
            done.append(f"index {name}: buffered builds")
    return done


POST_UPGRADE.append(_geography_indexes)
