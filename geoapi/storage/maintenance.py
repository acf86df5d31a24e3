"""Database upkeep after large loads: rows rewritten in spatial order, planner statistics.

Layer rows are stored in the order they were written. After a city-wide load that order has
little to do with location, so a bbox page or a tile reads one heap page per matching row
(a 1,000-feature bbox page of 1,000,000 manholes touched 10,675 pages). ``optimize`` rewrites
each PostGIS layer table in spatial (geohash) order (``CLUSTER``) and refreshes
its statistics (``ANALYZE``); on SpatiaLite, whose rows live in the R*Tree's file anyway, it
refreshes the statistics only. It changes no row, so it is not in history.

``CLUSTER`` holds the table's exclusive lock while it rewrites it (about 10 s per 1,000,000
points): readers and writers of that layer wait. Run it after a large initial import, in a
quiet hour. Rows written later go where there is room; run it again after the next big load.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa

from geoapi.storage.store import Store


@dataclass(frozen=True)
class Optimized:
    layer: str
    rows: int
    seconds: float
    clustered: bool   # rewritten in spatial order (PostGIS); statistics are refreshed either way


def optimize(store: Store, layer_ids: list[str] | None = None,
             progress: Callable[[Optimized], None] | None = None) -> list[Optimized]:
    """Rewrite the layers' tables in spatial order and refresh their statistics (module doc)."""
    ids = layer_ids or [layer.id for layer in store.registry]
    for layer_id in ids:
        store.layer(layer_id)  # unknown layer → LayerNotFoundError before anything runs
    done = []
    for layer_id in ids:
        table = store.table(layer_id).name
        t0 = time.perf_counter()
        rows = store.count(layer_id)
        clustered = store.dialect == "postgis" and rows > 0
        # one transaction per table (geoapi_write: SpatiaLite takes its write lock up front)
        with store.engine.connect().execution_options(geoapi_write=True) as conn, conn.begin():
            if clustered:
                _cluster(conn, table)
            conn.exec_driver_sql(f'ANALYZE "{table}"')
        done.append(Optimized(layer_id, rows, time.perf_counter() - t0, clustered))
        if progress is not None:
            progress(done[-1])
    return done


def _cluster(conn: sa.Connection, table: str) -> None:
    """Rewrite ``table`` in geohash (Z-order) order of its geometries (in the caller's transaction).

    The order comes from a temporary index on the geohash: CLUSTER on the GiST index itself
    keeps the rows of each leaf page in the order they were written, and a small table has few
    leaves, so neighbours would still be scattered.
    """
    order = f"{table}_optimize_order"
    conn.exec_driver_sql(f'CREATE INDEX "{order}" ON "{table}" '
                         "((CASE WHEN NOT ST_IsEmpty(geom) THEN ST_GeoHash(geom, 12) END))")
    conn.exec_driver_sql(f'CLUSTER "{table}" USING "{order}"')
    conn.exec_driver_sql(f'DROP INDEX "{order}"')
