"""PostGIS initial loads: a layer table's secondary indexes and tile cell counts built once, after
the rows, instead of row by row and statement by statement.

When a bulk write reaches COPY_ROWS rows on a layer table that was empty when it started
(``append`` or ``replace``, not ``upsert``), before its first COPY:

- the plain secondary indexes (status, updated_at, admin_code, the GiST geometry and geography
  indexes) are dropped, and created again from their own definitions (``pg_get_indexdef``)
  once every row is in: one sorted build per index, the way ogr2ogr builds its spatial index
  after loading. The primary key and the unique indexes stay: the load looks codes up through
  them, and a duplicate must fail its COPY with the usual conflict;
- the tile cell insert trigger is disabled, and the (empty) cell table is written at the end:
  from the counts the writer kept while preparing the rows (``tilecells.LoadTally``, point
  layers: one binary COPY), else from all the rows in one plain INSERT (``fill_after_load``).
  The trigger's upsert was most of the COPY time; the INSERT's pass over a million rows
  (~7 s) came after the last row;
- the indexes are rebuilt with ``maintenance_work_mem = BUILD_MEMORY`` (the sorts of a million
  points stay in memory).

Everything happens inside the write's transaction, below a savepoint taken just before the
DDL: a failed write rolls back to it (``abandon``) before its error goes on, so indexes and
trigger are back whatever the caller then does with the transaction (a rolled-back
transaction undoes the DDL anyway). Other sessions never see the table without them.

DROP INDEX takes the table's ACCESS EXCLUSIVE lock until commit: reads of that layer wait for
the load to end, and so do other writes (the layer is empty until then anyway). If the lock is not granted within
``LOCK_TIMEOUT`` (a long read in progress), the write keeps its indexes and trigger and goes on
the ordinary way.
"""

from __future__ import annotations

import sqlalchemy as sa

from geoapi.storage import tilecells
from geoapi.storage.dialect import local_setting
from layers import LayerSpec

LOCK_TIMEOUT = "1s"
BUILD_MEMORY = "256MB"   # maintenance_work_mem of the index builds: a million points' GiST sorts in memory

_SECONDARY = """
SELECT c.relname, pg_get_indexdef(x.indexrelid)
  FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid
 WHERE x.indrelid = CAST(:t AS regclass) AND NOT x.indisunique AND NOT x.indisprimary
   AND NOT x.indisexclusion
 ORDER BY c.relname"""


class InitialLoad:
    """One layer table during an initial load: ``defer`` drops its secondary indexes and pauses
    its cell trigger, ``restore`` builds both again, ``abandon`` rolls back to the savepoint."""

    def __init__(self, conn: sa.Connection, savepoint: sa.NestedTransaction, layer: LayerSpec, table: str,
                 definitions: list[str], cells: bool):
        self.conn = conn
        self.layer = layer
        self.table = table
        self.definitions = definitions
        self.cells = cells
        self._savepoint = savepoint

    @classmethod
    def defer(cls, conn: sa.Connection, layer: LayerSpec, table: sa.Table) -> InitialLoad | None:
        """Below a new savepoint, drop ``table``'s secondary indexes and pause its cell trigger;
        None when its lock is not granted in time (then nothing has changed)."""
        savepoint = conn.begin_nested()
        try:
            with local_setting(conn, "lock_timeout", LOCK_TIMEOUT):
                conn.exec_driver_sql(f'LOCK TABLE "{table.name}" IN ACCESS EXCLUSIVE MODE')
        except sa.exc.OperationalError as exc:
            savepoint.rollback()
            if getattr(exc.orig, "sqlstate", None) == "55P03":   # lock_not_available
                return None
            raise
        try:
            found = conn.execute(sa.text(_SECONDARY), {"t": f'"{table.name}"'}).all()
            for name, _ in found:
                conn.exec_driver_sql(f'DROP INDEX "{name}"')
            cells = tilecells.pause_for_load(conn, layer, table.name)
        except BaseException:
            savepoint.rollback()
            raise
        return cls(conn, savepoint, layer, table.name, [definition for _, definition in found], cells)

    def restore(self, tally: tilecells.LoadTally | None = None) -> None:
        """Build the indexes and the cell counts (the rows are in) and release the savepoint.
        ``tally``: the cell counts the writer kept while preparing every row of the load (then
        the cell table is written from it instead of counted from the table)."""
        with local_setting(self.conn, "maintenance_work_mem", BUILD_MEMORY):
            for definition in self.definitions:
                self.conn.exec_driver_sql(definition)
        if self.cells and tally is not None:
            tilecells.fill_from_tally(self.conn, self.layer, self.table, tally)
        elif self.cells:
            tilecells.fill_after_load(self.conn, self.layer, self.table)
        self._savepoint.commit()

    def abandon(self) -> None:
        """Roll back to the savepoint: indexes and trigger are back, this load's rows are gone."""
        if self._savepoint.is_active:
            self._savepoint.rollback()
