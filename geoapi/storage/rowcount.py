"""Exact row counts of layer tables kept by PostGIS itself, for ``numberMatched`` without ``count(*)``.

``count(*)`` over a 1,000,000-row layer reads the whole table (≈ 40 ms) on every unfiltered
items page. Instead each layer table carries statement-level AFTER INSERT / DELETE / TRUNCATE
triggers (transition tables, so a bulk COPY adds one row, not a million) that append the
statement's row delta to ``geoapi_row_counts``; an unfiltered count is then the sum of that
layer's rows there. Being triggers, the count is exact under every write path — the Store,
COPY, psql, QGIS — and follows the reader's snapshot like ``count(*)`` would (deltas of
uncommitted transactions are invisible, rolled-back ones vanish with their rows).

Appending deltas instead of updating one counter row means concurrent writers (a long import
and the API's edits) never wait on each other. A ``base`` row, written by the upgrade hook with
an exact ``count(*)`` taken while the table is locked against writers (and by TRUNCATE, as 0),
marks a layer's count as complete; without one (the table of counts emptied by hand) readers
fall back to ``count(*)``. A reader that finds many deltas folds them into one row.

SpatiaLite keeps plain ``count(*)``: SQLite counts a 200,000-row table from its smallest b-tree
in a few milliseconds, and its tables are written only through this application.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

import sqlalchemy as sa

from geoapi.storage.migrate import POST_UPGRADE
from geoapi.storage.triggers import replace_triggers

if TYPE_CHECKING:
    from geoapi.storage.store import Store

TABLE = "geoapi_row_counts"
COMPACT_AFTER = 64  # delta rows of one layer before a reader folds them into one

_DDL = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
  layer text NOT NULL,
  n bigint NOT NULL,
  base boolean NOT NULL DEFAULT false
);
CREATE INDEX IF NOT EXISTS ix_{TABLE}_layer ON {TABLE} (layer);

CREATE OR REPLACE FUNCTION geoapi_count_rows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO {TABLE} (layer, n) SELECT TG_ARGV[0], count(*) FROM new_rows HAVING count(*) > 0;
  ELSIF TG_OP = 'DELETE' THEN
    INSERT INTO {TABLE} (layer, n) SELECT TG_ARGV[0], -count(*) FROM old_rows HAVING count(*) > 0;
  ELSE  -- TRUNCATE holds the table exclusively: no other transaction has deltas in flight
    DELETE FROM {TABLE} WHERE layer = TG_ARGV[0];
    INSERT INTO {TABLE} (layer, n, base) VALUES (TG_ARGV[0], 0, true);
  END IF;
  RETURN NULL;
END $$;
"""


_READ = sa.text(f"SELECT bool_or(base), sum(n), count(*) FROM {TABLE} WHERE layer = :layer")
# Deleting locks the rows it folds, so two readers folding at once cannot count a delta twice;
# deltas committed meanwhile are not in the DELETE's snapshot and stay as they are.
_COMPACT = sa.text(f"WITH d AS (DELETE FROM {TABLE} WHERE layer = :layer RETURNING n, base) "
                   f"INSERT INTO {TABLE} (layer, n, base) SELECT :layer, sum(n), bool_or(base) FROM d "
                   "HAVING count(*) > 0")


def install(conn: sa.Connection, store: Store) -> list[str]:
    """Create the table of counts and the triggers, and count every layer exactly (PostGIS only).

    Each table is locked against writers (SHARE) before it is counted, so no write can fall
    between the count and the triggers; re-running recounts, which also repairs a count left
    wrong by writes made with triggers disabled (``session_replication_role = replica``).
    """
    if store.dialect != "postgis":
        return []
    conn.exec_driver_sql(_DDL)
    for layer in store.registry:
        table = store.table(layer.id).name
        replace_triggers(conn, table, "geoapi_count", f"geoapi_count_rows('{layer.id}')", ("ins", "del", "trunc"))
        conn.exec_driver_sql(f'LOCK TABLE "{table}" IN SHARE MODE')
        conn.execute(sa.text(f"DELETE FROM {TABLE} WHERE layer = :layer"), {"layer": layer.id})
        conn.execute(sa.text(f'INSERT INTO {TABLE} (layer, n, base) SELECT :layer, count(*), true FROM "{table}"'),
                     {"layer": layer.id})
    return [f"row-count triggers on {len(store.registry)} layer tables"]


def exact_count(store: Store, conn: sa.Connection, layer_id: str) -> int | None:
    """The layer's row count from the triggers' table; None where there is none (SpatiaLite, not
    installed, or emptied by hand): the caller counts rows instead."""
    if store.dialect != "postgis" or not _installed(store, conn):
        return None
    complete, total, rows = conn.execute(_READ, {"layer": layer_id}).one()
    if not complete:
        return None
    if rows > COMPACT_AFTER:
        with store.engine.begin() as w:
            w.execute(_COMPACT, {"layer": layer_id})
    return int(total)


def _installed(store: Store, conn: sa.Connection) -> bool:
    """Whether the table exists (remembered per Store once seen; a database from before this
    hook counts rows until ``geoapi upgrade`` has run)."""
    if store in _SEEN:
        return True
    if conn.execute(sa.text("SELECT to_regclass(:t) IS NOT NULL"), {"t": TABLE}).scalar_one():
        _SEEN.add(store)
        return True
    return False


_SEEN: weakref.WeakSet = weakref.WeakSet()


if install not in POST_UPGRADE:
    POST_UPGRADE.append(install)
