"""PostGIS: the cell-count pyramid behind aggregated low-zoom tiles.

Per aggregated point layer, ``<table>_tile_cells`` holds, for every aggregated zoom z, the
non-empty cells of level L = z + CELL_BITS: ``level, tx, ty`` (the tile at z), ``cx, cy`` (the
global cell), ``n``, one ``count_<status>`` column per status value and, for layers with a bool
``is_smart`` field, ``n_smart`` (points whose is_smart is true; read by coverage, see
geoapi.storage.cellcover). An unfiltered
aggregated tile reads its ≤ 4,096 rows with one primary-key prefix scan instead of counting
every point in the tile (tiles.aggregate has the cell formula; ``cell_sql`` below is the same
formula in SQL, operation for operation).

Statement-level triggers with transition tables keep the table exact in the writing
transaction, whatever writes (the Store, COPY imports, telemetry, psql): new rows add, old rows
subtract, cells whose ``n`` reaches 0 are deleted, TRUNCATE empties it. ``install_tile_cells``
(a POST_UPGRADE hook) creates, backfills and, when the layer definition that shapes the table
changes, rebuilds it; the shape is recorded as the table's COMMENT.
"""

from __future__ import annotations

import json
import logging
import weakref
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np
import shapely
import sqlalchemy as sa
from sqlalchemy import func

from geoapi.storage.dialect import local_setting
from geoapi.storage.migrate import POST_UPGRADE
from geoapi.storage.triggers import TRIGGERS, replace_triggers
from layers.spec import LayerSpec
from tiles.aggregate import CELL_BITS, CELL_UNITS, CELLS, aggregated_zooms, global_cells
from tiles.grid import MAX_LAT, TileId

if TYPE_CHECKING:
    from geoapi.storage.store import Store

log = logging.getLogger(__name__)
FORMULA = 1  # bump when cell_sql changes: every cell table is then rebuilt by the next upgrade
KEY = ("level", "tx", "ty", "cx", "cy")
SMART_FIELD = "is_smart"


# -- names and shape ---------------------------------------------------------------------------
def levels(layer: LayerSpec) -> range:
    """The cell levels the table holds: aggregated zooms + CELL_BITS (empty: no table)."""
    zooms = aggregated_zooms(layer)
    return range(zooms.start + CELL_BITS, zooms.stop + CELL_BITS)


def table_name(layer: LayerSpec) -> str:
    return f"{layer.id}_tile_cells"


def function_name(layer: LayerSpec) -> str:
    return f"geoapi_tile_cells_{layer.id}"


def count_columns(layer: LayerSpec) -> list[str]:
    return [f"count_{v}" for v in layer.status.values]


def extra_columns(layer: LayerSpec) -> list[str]:
    """The columns after ``n``: the status counts, then ``n_smart`` if the layer has one."""
    smart = smart_column(layer)
    return count_columns(layer) + ([smart] if smart else [])


def smart_column(layer: LayerSpec) -> str | None:
    """``n_smart`` when the layer has a bool ``is_smart`` field (smart manhole covers), else None."""
    f = layer.field(SMART_FIELD)
    return "n_smart" if f is not None and f.type == "bool" else None


def signature(layer: LayerSpec) -> str:
    """What shapes the table; a table whose COMMENT differs is rebuilt."""
    lv = levels(layer)
    shape = {"geoapi_tile_cells": FORMULA, "levels": [lv.start, lv.stop - 1],
             "status": list(layer.status.values), "geometry": layer.geometry}
    if smart_column(layer):
        shape["smart"] = SMART_FIELD
    return json.dumps(shape, ensure_ascii=False)


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


# -- the formula in SQL ------------------------------------------------------------------------
def cell_sql(lon: str, lat: str, level: int) -> tuple[str, str]:
    """SQL for the global cell x/y at ``level`` of lon/lat expressions (tiles.aggregate.global_cells)."""
    scale, top = f"{float(1 << level)!r}::float8", (1 << level) - 1
    lat_c = f"least(greatest({lat}, {-MAX_LAT!r}::float8), {MAX_LAT!r}::float8)"
    u = f"({lon}) / 360.0::float8 + 0.5::float8"
    v = f"0.5::float8 - ln(tan(pi() / 4 + {lat_c} * pi() / 360.0::float8)) / (2 * pi())"
    return (f"least(greatest(floor(({u}) * {scale}), 0), {top})::int",
            f"least(greatest(floor(({v}) * {scale}), 0), {top})::int")


def xy_sql(layer: LayerSpec, geom: str = "geom") -> tuple[str, str]:
    g = geom if layer.geometry == "Point" else f"ST_Centroid({geom})"
    return f"ST_X({g})", f"ST_Y({g})"


# -- maintenance SQL ---------------------------------------------------------------------------
def _delta_ctes(layer: LayerSpec, sources: list[tuple[str, int]]) -> str:
    """CTEs ``f`` (finest-level deltas) and ``g`` (every level) from (relation, sign) sources."""
    lv = levels(layer)
    top = lv.stop - 1
    gx, gy = cell_sql(*xy_sql(layer), top)
    smart = f"{ident(SMART_FIELD)} IS TRUE" if smart_column(layer) else "false"
    rows = " UNION ALL ".join(f"SELECT geom, status, {smart} AS smart, {sign} AS d FROM {rel} "
                              "WHERE geom IS NOT NULL" for rel, sign in sources)
    conds = [f"status = {_literal(v)}" for v in layer.status.values] + (["smart"] if smart_column(layer) else [])
    k = range(len(conds))
    f_sums = ", ".join(f"sum(CASE WHEN {c} THEN d ELSE 0 END)::int AS c{i}" for i, c in enumerate(conds))
    g_sums = ", ".join(f"sum(c{i}) AS c{i}" for i in k)
    f_any = " OR ".join(["sum(d) <> 0", *(f"sum(CASE WHEN {c} THEN d ELSE 0 END) <> 0" for c in conds)])
    g_any = " OR ".join(["sum(n) <> 0", *(f"sum(c{i}) <> 0" for i in k)])
    return (f"f AS (SELECT gx, gy, sum(d)::int AS n, {f_sums} "
            f"FROM (SELECT {gx} AS gx, {gy} AS gy, status, smart, d FROM ({rows}) s) r "
            f"GROUP BY gx, gy HAVING {f_any}), "
            f"g AS (SELECT l AS level, gx >> ({top} - l) AS cx, gy >> ({top} - l) AS cy, sum(n) AS n, {g_sums} "
            f"FROM f CROSS JOIN generate_series({lv.start}, {top}) AS l GROUP BY 1, 2, 3 HAVING {g_any})")


def _upsert(layer: LayerSpec, *, empty: bool = False) -> str:
    """Add ``g`` to the table, taking row locks in key order (two such statements cannot deadlock).
    ``empty``: the table has no rows, so a plain INSERT (no conflict checks: ~2× faster)."""
    cols = [ident(c) for c in extra_columns(layer)]
    cs = ", ".join(f"c{i}" for i in range(len(cols)))
    sets = ", ".join(f"{c} = t.{c} + excluded.{c}" for c in ["n", *cols])
    conflict = "" if empty else f" ON CONFLICT ({', '.join(KEY)}) DO UPDATE SET {sets}"
    return (f"INSERT INTO {ident(table_name(layer))} AS t (level, tx, ty, cx, cy, n, {', '.join(cols)}) "
            f"SELECT level, cx >> {CELL_BITS}, cy >> {CELL_BITS}, cx, cy, n, {cs} FROM g "
            f"ORDER BY 1, 2, 3, 4, 5{conflict}")


def _function_sql(layer: LayerSpec) -> str:
    cells = ident(table_name(layer))
    subtract = ("{ctes}, up AS ({upsert} RETURNING level, tx, ty, cx, cy, n) "
                "SELECT array_agg(level), array_agg(tx), array_agg(ty), array_agg(cx), array_agg(cy) "
                "INTO zl, ztx, zty, zcx, zcy FROM up WHERE n = 0")
    upd = subtract.format(ctes="WITH " + _delta_ctes(layer, [("new_rows", 1), ("old_rows", -1)]),
                          upsert=_upsert(layer))
    dele = subtract.format(ctes="WITH " + _delta_ctes(layer, [("old_rows", -1)]), upsert=_upsert(layer))
    return f"""
CREATE OR REPLACE FUNCTION {ident(function_name(layer))}() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE zl int[]; ztx int[]; zty int[]; zcx int[]; zcy int[];
BEGIN
  IF TG_OP = 'INSERT' THEN
    WITH {_delta_ctes(layer, [("new_rows", 1)])} {_upsert(layer)};
  ELSIF TG_OP = 'UPDATE' THEN
    {upd};
  ELSIF TG_OP = 'DELETE' THEN
    {dele};
  ELSE  -- TRUNCATE; when the same TRUNCATE also names the cell table, it is in use: DELETE
    BEGIN
      TRUNCATE {cells};
    EXCEPTION WHEN object_in_use THEN
      DELETE FROM {cells};
    END;
  END IF;
  IF zl IS NOT NULL THEN  -- the rows still locked by the upsert above whose n reached 0
    DELETE FROM {cells} c USING unnest(zl, ztx, zty, zcx, zcy) AS z(level, tx, ty, cx, cy)
     WHERE c.level = z.level AND c.tx = z.tx AND c.ty = z.ty AND c.cx = z.cx AND c.cy = z.cy AND c.n = 0;
  END IF;
  RETURN NULL;
END $fn$;
"""


def _create_table_sql(layer: LayerSpec) -> str:
    counts = ", ".join(f"{ident(c)} integer NOT NULL" for c in extra_columns(layer))
    return (f"CREATE TABLE {ident(table_name(layer))} (level smallint NOT NULL, tx integer NOT NULL, "
            f"ty integer NOT NULL, cx integer NOT NULL, cy integer NOT NULL, n integer NOT NULL, {counts}, "
            f"PRIMARY KEY ({', '.join(KEY)})) WITH (fillfactor = 90)")  # room for HOT updates: rows stay in key order


def _drop(conn: sa.Connection, table: str, layer: LayerSpec) -> None:
    for suffix, *_ in TRIGGERS:
        conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS geoapi_cells_{suffix} ON {ident(table)}")
    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {ident(table_name(layer))}")
    conn.exec_driver_sql(f"DROP FUNCTION IF EXISTS {ident(function_name(layer))}()")


def _current(conn: sa.Connection, store: Store, layer: LayerSpec) -> bool:
    """The table exists with this layer's signature and all four triggers are enabled on the layer table."""
    have = conn.exec_driver_sql(
        "SELECT obj_description(to_regclass(%(t)s), 'pg_class'), "
        "(SELECT count(*) FROM pg_trigger WHERE tgrelid = to_regclass(%(l)s) AND tgname LIKE 'geoapi_cells_%%' "
        "AND tgenabled <> 'D')",
        {"t": ident(table_name(layer)), "l": ident(store.table(layer.id).name)}).one()
    return have[0] == signature(layer) and have[1] == len(TRIGGERS)


def install_tile_cells(conn: sa.Connection, store: Store) -> list[str]:
    """Create (or rebuild, when the layer's shape changed) and backfill each aggregated layer's cell table.

    Idempotent: a table whose COMMENT matches the layer's signature and whose triggers are in
    place and enabled is left alone (a disabled trigger may have missed writes: rebuilt).
    Layers that are no longer aggregated lose theirs.
    """
    if store.dialect != "postgis":
        return []
    done = []
    for layer in store.registry:
        table = store.table(layer.id).name
        if not levels(layer):
            if conn.exec_driver_sql("SELECT to_regclass(%(t)s)", {"t": ident(table_name(layer))}).scalar():
                _drop(conn, table, layer)
                done.append(f"dropped {table_name(layer)} ({layer.id} is no longer aggregated)")
            continue
        if _current(conn, store, layer):
            continue
        _drop(conn, table, layer)
        conn.exec_driver_sql(_create_table_sql(layer))
        conn.exec_driver_sql(f"COMMENT ON TABLE {ident(table_name(layer))} IS {_literal(signature(layer))}")
        conn.exec_driver_sql(_function_sql(layer))
        replace_triggers(conn, table, "geoapi_cells", f"{ident(function_name(layer))}()")
        _fill(conn, layer, table)
        conn.exec_driver_sql(f"ANALYZE {ident(table_name(layer))}")
        n = conn.exec_driver_sql(f"SELECT count(*) FROM {ident(table_name(layer))}").scalar()
        done.append(f"built {table_name(layer)}: {n} cells at levels {levels(layer).start}–{levels(layer).stop - 1}")
    _ready.pop(store, None)
    return done


# -- initial loads (geoapi.storage.pgload) ---------------------------------------------------------
def pause_for_load(conn: sa.Connection, layer: LayerSpec, table: str) -> bool:
    """Disable the insert trigger of ``table`` when its cell table is in place and empty (the layer
    table is empty and about to be loaded): ``fill_after_load`` then counts every row at once.
    False when there is nothing to pause. Run in the load's transaction, like the DDL it is."""
    if not levels(layer):
        return False
    paused = conn.exec_driver_sql(
        "SELECT EXISTS (SELECT FROM pg_trigger WHERE tgrelid = to_regclass(%(l)s) AND tgname = 'geoapi_cells_ins' "
        "AND tgenabled <> 'D') AND to_regclass(%(t)s) IS NOT NULL",
        {"l": ident(table), "t": ident(table_name(layer))}).scalar()
    if not paused or conn.exec_driver_sql(f"SELECT EXISTS (SELECT FROM {ident(table_name(layer))})").scalar():
        return False
    conn.exec_driver_sql(f"ALTER TABLE {ident(table)} DISABLE TRIGGER geoapi_cells_ins")
    return True


def fill_after_load(conn: sa.Connection, layer: LayerSpec, table: str) -> None:
    """Count every row of ``table`` into the (empty) cell table and enable the insert trigger again."""
    conn.exec_driver_sql(f"ALTER TABLE {ident(table)} ENABLE TRIGGER geoapi_cells_ins")
    _fill(conn, layer, table)


def fill_from_tally(conn: sa.Connection, layer: LayerSpec, table: str, tally: LoadTally) -> None:
    """``fill_after_load`` from counts the writer kept as it prepared the rows (LoadTally): one
    binary COPY of the cells instead of a pass over every row once the last one is in."""
    conn.exec_driver_sql(f"ALTER TABLE {ident(table)} ENABLE TRIGGER geoapi_cells_ins")
    if tally.empty:
        return
    cols = ", ".join(ident(c) for c in (*KEY, "n", *extra_columns(layer)))
    with conn.connection.driver_connection.cursor() as cur, \
            cur.copy(f"COPY {ident(table_name(layer))} ({cols}) FROM STDIN (FORMAT binary)") as cp:
        for part in tally.copy_binary():
            cp.write(part)


class LoadTally:
    """The cell counts of a point layer's initial load, kept by the writer chunk by chunk.

    ``add`` takes each chunk's points and the values written for ``status`` and ``is_smart``;
    the cells come from tiles.aggregate.global_cells (the formula of ``cell_sql``, operation for
    operation), counted with numpy at the finest level only and summed up the levels at the
    end. Memory is bounded by the number of non-empty finest cells, not by the rows.
    """

    _MERGE_EVERY = 16   # chunks whose counts are kept apart before they are merged

    def __init__(self, layer: LayerSpec):
        self.layer = layer
        self.top = levels(layer).stop - 1
        self.statuses = list(layer.status.values)
        self.smart = smart_column(layer) is not None
        self._classes = 2 * (len(self.statuses) + 1)   # (status or none) × (smart or not)
        self._keys: list[np.ndarray] = []
        self._counts: list[np.ndarray] = []

    @classmethod
    def for_layer(cls, layer: LayerSpec) -> LoadTally | None:
        """A tally for a point layer with a cell table (None otherwise: the SQL fill counts it)."""
        fits = levels(layer) and 2 * (levels(layer).stop - 1) + 5 < 63   # cell and class in one int64
        return cls(layer) if fits and layer.geometry == "Point" else None

    def add(self, geoms: np.ndarray, columns: dict[str, list]) -> None:
        """Count one chunk: 2D point geometries and its written columns (absent: all NULL)."""
        xy = shapely.get_coordinates(geoms)
        gx, gy = global_cells(xy[:, 0], xy[:, 1], self.top)
        lut = {v: i for i, v in enumerate(self.statuses)}
        none = len(self.statuses)
        status = columns.get("status")
        cls = np.full(len(gx), 2 * none, dtype=np.int64) if status is None else \
            2 * np.fromiter((lut.get(v, none) for v in status), dtype=np.int64, count=len(gx))
        smart = columns.get(SMART_FIELD) if self.smart else None
        if smart is not None:
            cls += np.fromiter((v is True for v in smart), dtype=np.int64, count=len(gx))
        keys, counts = np.unique(((gx << self.top) | gy) * self._classes + cls, return_counts=True)
        self._keys.append(keys)
        self._counts.append(counts)
        if len(self._keys) >= self._MERGE_EVERY:
            self._merge()

    def _merge(self) -> None:
        if len(self._keys) > 1:
            keys, inverse = np.unique(np.concatenate(self._keys), return_inverse=True)
            self._keys = [keys]
            self._counts = [np.bincount(inverse, weights=np.concatenate(self._counts)).astype(np.int64)]

    @property
    def empty(self) -> bool:
        return not any(len(k) for k in self._keys)

    def copy_binary(self) -> Iterator[bytes]:
        """Every level's cells as the parts of one binary COPY (level, tx, ty, cx, cy, n,
        counts…), in key order, a level at a time.

        A million points make ~700,000 cells over five levels: as fixed-width binary rows they
        are laid out by numpy at once, where COPY text would be a string per value."""
        self._merge()
        if self.empty:
            return
        keys, counts = self._keys[0], self._counts[0]
        cell, cls = np.divmod(keys, self._classes)
        gx, gy = cell >> self.top, cell & ((1 << self.top) - 1)
        status, smart = np.divmod(cls, 2)
        columns = [(status == i) for i in range(len(self.statuses))] + ([smart == 1] if self.smart else [])
        ints = ["tx", "ty", "cx", "cy", "n", *(f"c{i}" for i in range(len(columns)))]
        row = np.dtype([("fields", ">i2"), ("level_len", ">i4"), ("level", ">i2"),
                        *((f, [("len", ">i4"), ("v", ">i4")]) for f in ints)])
        yield b"PGCOPY\n\xff\r\n\x00" + bytes(8)   # signature, flags, header extension length
        for level in levels(self.layer):
            shift = self.top - level
            at, inverse = np.unique(((gx >> shift) << level) | (gy >> shift), return_inverse=True)
            cx, cy = at >> level, at & ((1 << level) - 1)
            order = np.lexsort((cy, cx, cy >> CELL_BITS, cx >> CELL_BITS))   # the primary key's order
            sums = [np.bincount(inverse, weights=counts * c, minlength=len(at)) for c in [1, *columns]]
            out = np.zeros(len(at), dtype=row)
            out["fields"], out["level_len"], out["level"] = 1 + len(ints), 2, level
            for name, values in zip(ints, [cx >> CELL_BITS, cy >> CELL_BITS, cx, cy, *sums], strict=True):
                out[name]["len"], out[name]["v"] = 4, values[order]
            yield out.tobytes()
        yield b"\xff\xff"   # end of data


def _fill(conn: sa.Connection, layer: LayerSpec, table: str) -> None:
    """Count every row of ``table`` into the empty cell table (a plain INSERT, no conflict checks)."""
    with local_setting(conn, "work_mem", "64MB"):   # the sorts of a million points stay in memory
        conn.exec_driver_sql(f"WITH {_delta_ctes(layer, [(ident(table), 1)])} {_upsert(layer, empty=True)}")


# -- reading -----------------------------------------------------------------------------------
_ready: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # Store → {layer id: table usable}


def serves(store: Store, layer: LayerSpec, z: int) -> bool:
    """Whether the unfiltered aggregated tile at ``z`` can be read from the cell table.

    Checked once per store and layer (the table's COMMENT against the layer's signature); a
    database not yet upgraded keeps the per-request counting, which gives the same tiles.
    """
    return z + CELL_BITS in levels(layer) and ready(store, layer)


def ready(store: Store, layer: LayerSpec) -> bool:
    """Whether the layer's cell table exists with this layer's shape (checked once per store and layer)."""
    if store.dialect != "postgis" or not levels(layer):
        return False
    known = _ready.setdefault(store, {})
    if layer.id not in known:
        with store.read() as conn:
            sig = conn.exec_driver_sql("SELECT obj_description(to_regclass(%(t)s), 'pg_class')",
                                       {"t": ident(table_name(layer))}).scalar()
        known[layer.id] = sig == signature(layer)
        if not known[layer.id]:
            log.warning("%s is missing or out of date: run `geoapi db upgrade`; counting points per tile meanwhile",
                        table_name(layer))
    return known[layer.id]


def cell_features(lx, ly, count, counts: list) -> list:
    """The MVT rows of tile-local cells (fid, geom in tile units, count, count_<status>…)."""
    half = CELL_UNITS // 2
    return [(ly * CELLS + lx + 1).label("fid"),
            func.ST_MakePoint(lx * CELL_UNITS + half, ly * CELL_UNITS + half).label("geom"),
            count.label("count"), *counts]


def cells_select(layer: LayerSpec, tile: TileId) -> sa.Select:
    """The tile's cells from the table: one primary-key prefix scan (level, tx, ty)."""
    names = count_columns(layer)
    t = sa.table(table_name(layer), *(sa.column(c) for c in (*KEY, "n", *names)))
    lx, ly = t.c.cx - tile.x * CELLS, t.c.cy - tile.y * CELLS
    return (sa.select(*cell_features(lx, ly, t.c.n, [t.c[c] for c in names]))
            .where(t.c.level == tile.z + CELL_BITS, t.c.tx == tile.x, t.c.ty == tile.y))


# Run by Store.upgrade() once this module is imported (tilesql imports it).
if install_tile_cells not in POST_UPGRADE:
    POST_UPGRADE.append(install_tile_cells)
