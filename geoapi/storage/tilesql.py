"""The database side of vector tiles.

PostGIS makes the whole tile in SQL — ``ST_AsMVT(ST_AsMVTGeom(...))`` per layer, the layers of
a composite joined with ``||`` in one statement, candidates found with ``&&`` on the GiST
index. SpatiaLite finds candidates through its R*Tree (``SpatialIndex``) and hands WKB to the
in-process encoder (tiles.mvt). Low zooms of point layers are aggregated into grid cells on
both (tiles.aggregate): PostGIS reads an unfiltered aggregated tile from the maintained cell
table (geoapi.storage.tilecells) and counts filtered ones per request; SpatiaLite counts per
request. All produce the same decoded tiles.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import shapely
import sqlalchemy as sa
from sqlalchemy import func

from geoapi.storage import tilecells
from geoapi.storage.engine import autocommit_reads
from geoapi.storage.migrate import POST_UPGRADE
from geoapi.storage.model import FeatureQuery
from geoapi.storage.triggers import replace_triggers
from layers.spec import FieldSpec, LayerSpec
from tiles.aggregate import CELL_BITS, CELLS, aggregate_points, is_aggregated
from tiles.filters import LayerFilter
from tiles.grid import BUFFER, EXTENT, TileId, lonlat_bounds, to_mercator
from tiles.mvt import TileLayer, encode, quantize

if TYPE_CHECKING:
    from geoapi.storage.store import Store

log = logging.getLogger(__name__)
SRID = 4490


def render_tile(store: Store, layers: list[LayerSpec], tile: TileId, filters: Mapping[str, LayerFilter]) -> bytes:
    """The MVT bytes of ``layers`` at ``tile`` (b"" when empty)."""
    if store.dialect == "postgis":
        return _postgis_tile(store, layers, tile, filters)
    return _spatialite_tile(store, layers, tile, filters)


def _conditions(store: Store, layer: LayerSpec, f: LayerFilter | None) -> list:
    if not f:
        return []
    q = FeatureQuery(filters={p.field: list(p.values) for p in f.properties}, updated_since=f.updated_since,
                     count=False)
    return store.where(layer.id, q)


# -- PostGIS ---------------------------------------------------------------------------------
def _postgis_tile(store: Store, layers: list[LayerSpec], tile: TileId, filters: Mapping[str, LayerFilter]) -> bytes:
    template = _template(store, layers, tile, filters)
    with store.read() as conn:  # the engine turns parallel query off per session (engine.py)
        autocommit_reads(conn)  # one statement: no BEGIN / ROLLBACK round trips
        if template is None:
            data = conn.execute(_postgis_select(store, layers, tile, filters)).scalar()
        else:
            with conn.connection.driver_connection.cursor(binary=True) as cur:
                data = cur.execute(template.sql, template.params(tile)).fetchone()[0]
    return bytes(data or b"")


async def render_tile_async(store: Store, layers: list[LayerSpec], tile: TileId,
                            filters: Mapping[str, LayerFilter]) -> bytes | None:
    """The tile awaited on the event loop (PostGIS, unfiltered feature tiles: the z16 tiles a
    map asks for by the dozen), or None: render it with ``render_tile`` in a worker thread."""
    template = _template(store, layers, tile, filters) if store.dialect == "postgis" else None
    if template is None:
        return None
    async with store.read_async() as conn:
        async with conn.cursor(binary=True) as cur:
            await cur.execute(template.sql, template.params(tile))
            data = (await cur.fetchone())[0]
    return bytes(data or b"")


@dataclass(frozen=True)
class _Template:
    """A tile statement compiled to driver SQL, with its constant parameters; the tile's numbers
    are bound per request (``params``)."""

    sql: str
    constants: dict

    @classmethod
    def of(cls, store: Store, stmt: sa.Select) -> _Template:
        compiled = stmt.compile(dialect=store.engine.dialect)
        return cls(str(compiled), {k: v for k, v in compiled.params.items() if not k.startswith("tile_")})

    def params(self, tile: TileId) -> dict:
        return {**self.constants, **_tile_params(tile)}


def _template(store: Store, layers: list[LayerSpec], tile: TileId,
              filters: Mapping[str, LayerFilter]) -> _Template | None:
    """The shared statement of an unfiltered feature tile of ``layers``; None for a filtered or
    aggregated tile (built per request).

    Building and compiling the statement costs more than the query of a z16 tile; run as driver
    SQL it also skips SQLAlchemy's per-execution parameter and result processing (0.95 → 0.61
    ms per z16 tile, bench/README.md "Tiles"). It runs on a binary cursor: the MVT comes back as
    its bytes, not as hex text of twice the size for the server to write and the client to parse.
    """
    if any(filters.get(layer.id) or is_aggregated(layer, tile.z) for layer in layers):
        return None
    key = (store.metadata, tuple(layer.id for layer in layers))
    template = _TEMPLATES.get(key)
    if template is None:
        if len(_TEMPLATES) > 256:  # keyed by store: only closed stores make it grow
            _TEMPLATES.clear()
        template = _TEMPLATES[key] = _Template.of(store, _postgis_select(store, layers, None, filters))
    return template


_TEMPLATES: dict[tuple, _Template] = {}


def _postgis_select(store: Store, layers: list[LayerSpec], tile: TileId | None,
                    filters: Mapping[str, LayerFilter]) -> sa.Select:
    parts = [func.coalesce(_postgis_layer(store, layer, tile, filters.get(layer.id), i).scalar_subquery(),
                           sa.literal(b"", sa.LargeBinary))
             for i, layer in enumerate(layers)]
    expr = parts[0]
    for p in parts[1:]:
        expr = expr.op("||")(p)
    return sa.select(expr)


def _tile_params(tile: TileId) -> dict:
    x0, y0, x1, y1 = lonlat_bounds(tile, BUFFER)
    return {"tile_z": tile.z, "tile_x": tile.x, "tile_y": tile.y, "tile_x0": x0, "tile_y0": y0, "tile_x1": x1,
            "tile_y1": y1}


def _tile_envelope(tile: TileId | None):
    """ST_TileEnvelope of ``tile``, or of the bound tile (``_tile_params``) when None."""
    if tile is None:
        return func.ST_TileEnvelope(*[sa.bindparam(f"tile_{n}", type_=sa.Integer) for n in "zxy"])
    return func.ST_TileEnvelope(tile.z, tile.x, tile.y)


def _index_envelope(tile: TileId | None, buffer: int):
    if tile is None:  # the bound tile, with BUFFER
        return func.ST_MakeEnvelope(*[sa.bindparam(f"tile_{n}", type_=sa.Float) for n in ("x0", "y0", "x1", "y1")], SRID)
    return func.ST_MakeEnvelope(*lonlat_bounds(tile, buffer), SRID)


def _postgis_layer(store: Store, layer: LayerSpec, tile: TileId | None, f: LayerFilter | None, i: int) -> sa.Select:
    """One layer's ST_AsMVT; ``tile=None``: an unaggregated layer at the tile bound later."""
    t = store.table(layer.id)
    mvt = func.ST_AsMVT(sa.literal_column(f"q{i}"), layer.id, EXTENT, "geom", "fid")
    if tile is not None and is_aggregated(layer, tile.z):  # cell centres are inside the tile: never a NULL geom
        if not f and tilecells.serves(store, layer, tile.z):
            cells = tilecells.cells_select(layer, tile)
        else:
            cells = _postgis_cells(t, layer, tile, _conditions(store, layer, f))
        return sa.select(mvt).select_from(cells.subquery(f"q{i}"))
    env = _tile_envelope(tile)
    conds = [t.c.geom.op("&&")(_index_envelope(tile, BUFFER)), *_conditions(store, layer, f)]
    geom = func.ST_AsMVTGeom(func.ST_Transform(t.c.geom, 3857), env, EXTENT, BUFFER, True)
    props = [_pg_property(t, layer.field(n)) for n in layer.tiles.properties]
    inner = sa.select(t.c.id.label("fid"), geom.label("geom"), *props).where(*conds)
    inner = inner.subquery(f"q{i}")
    # An aggregate FILTER, not a WHERE on the subquery: the planner would copy a WHERE into the
    # scan and clip every feature twice (once to filter, once to encode).
    return sa.select(mvt.filter(inner.c.geom.is_not(None))).select_from(inner)


def _postgis_cells(t: sa.Table, layer: LayerSpec, tile: TileId, conds: list) -> sa.Select:
    """Grid-cell counts per request, from every (filtered) point of the tile.

    The unfiltered tile reads the maintained cell table instead (geoapi.storage.tilecells);
    both use the same cell formula, so they agree. Candidates come from the tile envelope
    grown by one unit (a point on an edge is kept or dropped by its cell index, not by float
    rounding in the envelope).
    """
    gx, gy = tilecells.cell_sql(*tilecells.xy_sql(layer, f'"{t.name}".geom'), tile.z + CELL_BITS)
    # OFFSET 0 keeps each step a fence the planner cannot flatten: pushed into the scan, the
    # cell-range filter makes it guess ~7 rows and walk the GiST index row by row (1.1 s →
    # 0.29 s on a 277k-point z12 tile).
    c = (sa.select(sa.literal_column(f"{gx} - {tile.x * CELLS}").label("cx"),
                   sa.literal_column(f"{gy} - {tile.y * CELLS}").label("cy"), t.c.status)
         .where(t.c.geom.op("&&")(_index_envelope(tile, 1)), *conds).offset(0).subquery("c"))
    counts = [func.count().filter(c.c.status == v).label(f"count_{v}") for v in layer.status.values]
    cells = (sa.select(c.c.cx, c.c.cy, func.count().label("count"), *counts)
             .group_by(c.c.cx, c.c.cy).offset(0).subquery("g")).c
    return (sa.select(*tilecells.cell_features(cells.cx, cells.cy, cells["count"],
                                               [cells[f"count_{v}"] for v in layer.status.values]))
            .where(cells.cx.between(0, CELLS - 1), cells.cy.between(0, CELLS - 1)))


def _pg_property(t: sa.Table, field: FieldSpec | None):
    """A tile property as MVT can carry it: scalars as they are, lists comma-joined, dates ISO."""
    col = t.c[field.name]
    if field.type == "enum_list":
        # SQLAlchemy writes Python None as JSON null, a scalar json_array_elements refuses
        array = sa.case((func.json_typeof(col) == "array", col))
        v = sa.select(func.string_agg(sa.literal_column("v"), ",")).select_from(
            func.json_array_elements_text(array).alias("v")).scalar_subquery()
        # The subquery only for rows that have a list: run for every row it was a tenth of a
        # dense z16 tile's time, and most assets have no defects.
        return sa.case((col.is_not(None), v)).label(field.name)
    if field.type == "json":
        return sa.cast(col, sa.Text).label(field.name)
    if field.type == "date":
        return func.to_char(col, "YYYY-MM-DD").label(field.name)
    if field.type == "datetime":
        return func.to_char(func.timezone("UTC", col), 'YYYY-MM-DD"T"HH24:MI:SS"Z"').label(field.name)
    return col.label(field.name)


# -- SpatiaLite ------------------------------------------------------------------------------
def _spatialite_tile(store: Store, layers: list[LayerSpec], tile: TileId,
                     filters: Mapping[str, LayerFilter]) -> bytes:
    out = []
    with store.read() as conn:
        for layer in layers:
            if is_aggregated(layer, tile.z):
                out.append(_spatialite_cells(store, conn, layer, tile, filters.get(layer.id)))
            else:
                out.append(_spatialite_features(store, conn, layer, tile, filters.get(layer.id)))
    return encode(out)


def _rowids(table: sa.Table, tile: TileId, buffer: int):
    x0, y0, x1, y1 = lonlat_bounds(tile, buffer)
    return sa.text(
        "SELECT rowid FROM SpatialIndex WHERE f_table_name = :tile_table AND f_geometry_column = 'geom' "
        "AND search_frame = BuildMbr(:tile_x0, :tile_y0, :tile_x1, :tile_y1, 4490)"
    ).bindparams(tile_table=table.name, tile_x0=x0, tile_y0=y0, tile_x1=x1, tile_y1=y1)


def _spatialite_features(store: Store, conn: sa.Connection, layer: LayerSpec, tile: TileId,
                         f: LayerFilter | None) -> TileLayer:
    t = store.table(layer.id)
    fields = [layer.field(n) for n in layer.tiles.properties]
    stmt = (sa.select(t.c.id, func.ST_AsBinary(t.c.geom).label("wkb"), *[t.c[fs.name] for fs in fields])
            .where(t.c.id.in_(_rowids(t, tile, BUFFER)), *_conditions(store, layer, f)))
    rows = conn.execute(stmt).all()
    if not rows:
        return TileLayer(layer.id, np.empty(0, dtype=object), np.empty(0, dtype=np.int64))
    geoms = to_mercator(shapely.from_wkb([bytes(r.wkb) for r in rows]))
    kept, keep = quantize(tile, geoms)
    idx = np.flatnonzero(keep)
    props = [{fs.name: _py_property(fs, rows[i]._mapping[fs.name]) for fs in fields} for i in idx]
    return TileLayer(layer.id, kept, np.array([rows[i].id for i in idx], dtype=np.int64), props)


def _spatialite_cells(store: Store, conn: sa.Connection, layer: LayerSpec, tile: TileId,
                      f: LayerFilter | None) -> TileLayer:
    t = store.table(layer.id)
    g = t.c.geom if layer.geometry == "Point" else func.ST_Centroid(t.c.geom)
    stmt = (sa.select(func.ST_X(g), func.ST_Y(g), t.c.status)
            .where(t.c.id.in_(_rowids(t, tile, 1)), *_conditions(store, layer, f)))
    rows = conn.execute(stmt).all()
    lon = np.array([r[0] for r in rows], dtype=float)
    lat = np.array([r[1] for r in rows], dtype=float)
    return aggregate_points(tile, layer, lon, lat, [r[2] for r in rows])


def _py_property(field: FieldSpec, value: Any) -> Any:
    """The same normalisation as _pg_property, for values read through SQLAlchemy."""
    if value is None:
        return None
    if field.type == "enum_list":
        return ",".join(value) if value else None
    if field.type == "json":
        return json.dumps(value)
    if field.type == "datetime" and isinstance(value, dt.datetime):
        utc = value.astimezone(dt.UTC) if value.tzinfo else value
        return utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


# -- PostGIS direct edits: triggers + LISTEN -------------------------------------------------
CHANNEL = "geoapi_changes"
# The Store sets this in its write transactions so the trigger stays quiet for writes the
# store announces itself (with exact geometries); anything else — psql, QGIS, ETL — notifies.
STORE_ORIGIN_SQL = "SET LOCAL geoapi.origin = 'store'"

_FUNCTIONS = r"""
CREATE OR REPLACE FUNCTION geoapi_change_payload(layer text, op text, ids bigint[], geoms geometry[])
RETURNS text LANGUAGE sql STABLE AS $$
  SELECT json_build_object(
    'layer', layer, 'op', op, 'ids', ids[1:100], 'count', cardinality(ids),
    'boxes', CASE WHEN cardinality(geoms) <= 50 THEN
        (SELECT json_agg(json_build_array(ST_XMin(g), ST_YMin(g), ST_XMax(g), ST_YMax(g)))
           FROM unnest(geoms) g WHERE g IS NOT NULL)
      ELSE
        (SELECT json_build_array(json_build_array(ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e)))
           FROM (SELECT ST_Extent(g) e FROM unnest(geoms) g) s)
      END)::text
$$;

CREATE OR REPLACE FUNCTION geoapi_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE payload text;
BEGIN
  IF coalesce(current_setting('geoapi.origin', true), '') = 'store' THEN
    RETURN NULL;
  END IF;
  IF TG_OP = 'INSERT' THEN
    payload := geoapi_change_payload(TG_ARGV[0], 'insert', ARRAY(SELECT id::bigint FROM new_rows),
                                     ARRAY(SELECT geom FROM new_rows));
  ELSIF TG_OP = 'DELETE' THEN
    payload := geoapi_change_payload(TG_ARGV[0], 'delete', ARRAY(SELECT id::bigint FROM old_rows),
                                     ARRAY(SELECT geom FROM old_rows));
  ELSIF TG_OP = 'UPDATE' THEN
    payload := geoapi_change_payload(TG_ARGV[0], 'update', ARRAY(SELECT id::bigint FROM new_rows),
                                     ARRAY(SELECT geom FROM old_rows UNION ALL SELECT geom FROM new_rows));
  ELSE  -- TRUNCATE: no rows to name; the whole layer
    payload := json_build_object('layer', TG_ARGV[0], 'op', 'truncate', 'ids', '[]'::json,
                                 'count', 0, 'boxes', NULL)::text;
  END IF;
  IF payload::json->>'op' = 'truncate' OR (payload::json->>'count')::int > 0 THEN
    PERFORM pg_notify('geoapi_changes', payload);
  END IF;
  RETURN NULL;
END $$;
"""

def install_change_triggers(conn: sa.Connection, store: Store) -> list[str]:
    """Create (or replace) the change-notify triggers on every layer table (PostGIS only).

    Statement-level with transition tables: one notification per statement, not per row, so a
    bulk load is not slowed row by row.
    """
    if store.dialect != "postgis":
        return []
    conn.exec_driver_sql(_FUNCTIONS)
    for layer in store.registry:
        replace_triggers(conn, store.table(layer.id).name, "geoapi_notify", f"geoapi_notify_change('{layer.id}')")
    return [f"change-notify triggers on {len(store.registry)} layer tables"]


@dataclass
class DirectChange:
    """A change announced by the database trigger: bounding boxes stand in for geometries."""

    layer: str
    ids: list[int]
    old_geoms: list[Any]
    new_geoms: list[Any] = field(default_factory=list)

    @classmethod
    def from_payload(cls, payload: str) -> DirectChange:
        data = json.loads(payload)
        boxes = [shapely.box(*b) for b in (data.get("boxes") or [])]
        return cls(layer=data["layer"], ids=list(data.get("ids") or []), old_geoms=boxes)


class ChangeListener:
    """A thread that LISTENs on the PostGIS change channel and hands each change to ``on_change``.

    After a lost connection it reconnects and calls ``on_gap`` (notifications sent meanwhile
    are lost, so whatever was cached may be stale).
    """

    def __init__(self, store: Store, on_change: Callable[[DirectChange], None], on_gap: Callable[[], None]):
        self.url = store.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self.on_change = on_change
        self.on_gap = on_gap
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="geoapi-tile-listen", daemon=True)

    def start(self, timeout: float = 10.0) -> ChangeListener:
        self._thread.start()
        self._ready.wait(timeout)
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        import psycopg

        first = True
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    if not first:
                        self.on_gap()
                    first = False
                    self._ready.set()
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=0.5):
                            self._handle(note.payload)
            except Exception:
                log.exception("tile change listener lost its connection; retrying")
                self._stop.wait(2.0)

    def _handle(self, payload: str) -> None:
        try:
            self.on_change(DirectChange.from_payload(payload))
        except Exception:
            log.exception("bad change notification %r", payload[:200])


# Run by Store.upgrade() once this module is imported (the tile plugin imports it).
if install_change_triggers not in POST_UPGRADE:
    POST_UPGRADE.append(install_change_triggers)
