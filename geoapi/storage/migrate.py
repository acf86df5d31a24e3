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

    have = set(conn.exec_driver_sql("SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()").scalars())
    done = []
    for layer in store.registry:
        ddl = geography_index_ddl(layer)
        if ddl:
            conn.exec_driver_sql(ddl)
            if f"ix_{layer.id}_geog" not in have:
                done.append(f"created index ix_{layer.id}_geog")
    return done


POST_UPGRADE.append(_geography_indexes)
