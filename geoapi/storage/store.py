"""The Store: every read and write of layer data goes through here, on either backend."""

from __future__ import annotations

import asyncio
import logging
import operator
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import psycopg
import shapely
import sqlalchemy as sa
from sqlalchemy import func

from geoapi.errors import DatabaseUnavailableError, LayerNotFoundError
from geoapi.storage import dialect as dx
from geoapi.storage import rowcount, schema, spatial
from geoapi.storage.asyncpool import AsyncReadPool
from geoapi.storage.engine import autocommit_reads, make_async_reader, make_engine
from geoapi.storage.model import ChangeSet, Feature, FeatureQuery, HistoryEntry, Page
from layers import LayerRegistry, LayerSpec, load_registry

log = logging.getLogger("geoapi.storage")

Listener = Callable[[ChangeSet], None]
Enricher = Callable[[sa.Connection, LayerSpec, dict[str, Any], Any], None]

SYSTEM_READ = ("version", "created_at", "created_by", "updated_at", "updated_by", "src_file", "src_crs",
               "batch_id", "extra")


def _raise_if_unavailable(exc: sa.exc.DBAPIError) -> None:
    """A database that cannot be reached is a 503 (DatabaseUnavailableError), not a 500."""
    if dx.is_unavailable(exc):
        raise _unavailable(exc.orig) from exc


def _unavailable(exc: BaseException) -> DatabaseUnavailableError:
    return DatabaseUnavailableError(f"database unavailable: {exc}")


class Store:
    def __init__(self, engine: sa.Engine, dialect: str, registry: LayerRegistry, *,
                 bounds: tuple[float, float, float, float], city_admin_code: str):
        self.engine = engine
        self.dialect = dialect
        self.registry = registry
        self.bounds = bounds
        self.city_admin_code = city_admin_code
        self.metadata = sa.MetaData()
        self._tables = {layer.id: schema.layer_table(layer, self.metadata) for layer in registry}
        self._listeners: list[Listener] = []
        self._listeners_lock = threading.Lock()
        # Run inside each write, before the row is stored, to fill derived columns
        # (district, unit grid, road segment …). Registered by the services that own them.
        self.enrichers: list[Enricher] = []
        self._async_reader: tuple[asyncio.AbstractEventLoop, AsyncReadPool] | None = None  # read_async

    # -- lifecycle -----------------------------------------------------------------------
    @classmethod
    def open(cls, settings, registry: LayerRegistry | None = None) -> Store:
        registry = registry or load_registry(settings.layers_dir)
        engine, dialect = make_engine(settings.resolved_database_url)
        return cls(engine, dialect, registry, bounds=tuple(settings.city_bounds),
                   city_admin_code=settings.city_admin_code)

    def upgrade(self) -> list[str]:
        """Create or migrate the schema; returns what was done (for the CLI to print)."""
        from geoapi.storage.migrate import upgrade

        return upgrade(self)

    def close(self) -> None:
        self.engine.dispose()

    async def close_async(self) -> None:
        """Close the event loop's read connections (read_async), on the loop that opened them."""
        reader, self._async_reader = self._async_reader, None
        if reader is not None:
            await reader[1].close()

    def ping(self) -> None:
        try:
            with self.engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
        except sa.exc.DBAPIError as exc:
            raise DatabaseUnavailableError(f"database unreachable: {exc.orig}") from exc

    def layer(self, layer_id: str) -> LayerSpec:
        spec = self.registry.get(layer_id)
        if spec is None:
            raise LayerNotFoundError(f"unknown layer {layer_id!r}; known layers: {', '.join(self.registry.ids)}")
        return spec

    def table(self, layer_id: str) -> sa.Table:
        self.layer(layer_id)
        return self._tables[layer_id]

    def subscribe(self, listener: Listener) -> None:
        with self._listeners_lock:
            self._listeners.append(listener)

    def unsubscribe(self, listener: Listener) -> None:
        with self._listeners_lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def publish(self, changes: list[ChangeSet]) -> None:
        with self._listeners_lock:
            listeners = list(self._listeners)
        for change in changes:
            for listener in listeners:
                try:
                    listener(change)
                except Exception:  # a broken listener must not undo a committed write
                    log.exception("change listener %r failed for %s", listener, change.layer)

    @contextmanager
    def read(self) -> Iterator[sa.Connection]:
        try:
            with self.engine.connect() as conn:
                yield conn
        except sa.exc.DBAPIError as exc:
            _raise_if_unavailable(exc)
            raise
        except psycopg.OperationalError as exc:   # from a driver cursor (tilesql)
            raise _unavailable(exc) from exc

    @asynccontextmanager
    async def read_async(self) -> AsyncIterator[psycopg.AsyncConnection]:
        """PostGIS: an autocommit driver connection (psycopg's), awaited on the running event
        loop, for a one-statement read without a thread-pool hop or SQLAlchemy's greenlet
        bridge (vector tiles). Errors as in ``read``."""
        if self.dialect != "postgis":
            raise RuntimeError("read_async needs PostGIS")
        loop = asyncio.get_running_loop()
        if self._async_reader is None or self._async_reader[0] is not loop:
            # A connection belongs to the loop that opened it: a store served by a new loop
            # (an app started again) gets new ones; the app's shutdown closes them (close_async).
            self._async_reader = (loop, make_async_reader(self.engine))
        try:
            async with self._async_reader[1].connection() as conn:
                yield conn
        except psycopg.OperationalError as exc:
            raise _unavailable(exc) from exc

    # -- reads ---------------------------------------------------------------------------
    def select_columns(self, layer_id: str) -> list:
        t = self.table(layer_id)
        return [c for c in t.c if c.name != "geom"] + [func.ST_AsBinary(t.c.geom).label("geom_wkb")]

    def rows_to_features(self, layer_id: str, rows) -> list[Feature]:
        rows = list(rows)
        if not rows:
            return []
        layer = self.layer(layer_id)
        names = [f.name for f in layer.all_fields]
        meta_names = [k for k in SYSTEM_READ if k != "version"]
        keys = list(rows[0]._fields)
        # Positional access: a page of 1,000 rows × 45 columns through RowMapping costs ~20 ms.
        pick_props = operator.itemgetter(*[keys.index(n) for n in names])
        pick_meta = operator.itemgetter(*[keys.index(n) for n in meta_names])
        i_id, i_version, i_geom = keys.index("id"), keys.index("version"), keys.index("geom_wkb")
        geoms = shapely.from_wkb([bytes(r[i_geom]) for r in rows])
        return [Feature(layer=layer_id, id=r[i_id], props=dict(zip(names, pick_props(r), strict=True)), geometry=g,
                        version=r[i_version], meta=dict(zip(meta_names, pick_meta(r), strict=True)))
                for r, g in zip(rows, geoms, strict=True)]

    def get(self, layer_id: str, fid: int, conn: sa.Connection | None = None) -> Feature | None:
        t = self.table(layer_id)
        stmt = sa.select(*self.select_columns(layer_id)).where(t.c.id == fid)
        if conn is not None:
            return next(iter(self.rows_to_features(layer_id, conn.execute(stmt))), None)
        with self.read() as c:
            return next(iter(self.rows_to_features(layer_id, c.execute(stmt))), None)

    def where(self, layer_id: str, q: FeatureQuery) -> list:
        """SQL conditions for a query's filters (shared by items, tiles, counts)."""
        layer, t = self.layer(layer_id), self.table(layer_id)
        conds: list = []
        if q.bbox:
            conds.append(spatial.in_bbox(self.dialect, t, q.bbox))
        if q.intersects is not None:
            conds.append(spatial.intersects(self.dialect, t, shapely.to_wkb(q.intersects, flavor="iso"),
                                            q.intersects.bounds))
        for name, values in q.filters.items():
            spec = layer.field(name)
            col = t.c[name]
            if spec is not None and spec.type == "enum_list":
                text = dx.json_text(self.dialect, col)
                conds.append(sa.or_(*[text.like(f'%"{v}"%') for v in values]))
            elif len(values) == 1:
                conds.append(col.is_(None) if values[0] is None else col == values[0])
            else:
                conds.append(col.in_(values))
        if q.updated_since:
            conds.append(t.c.updated_at >= q.updated_since)
        if q.ids is not None:
            conds.append(t.c.id.in_(q.ids))
        return conds + list(q.conditions)

    def query(self, layer_id: str, q: FeatureQuery) -> Page:
        t = self.table(layer_id)
        conds = self.where(layer_id, q)
        order = self._order(t, q)
        counted = q.count and (q.bbox is not None or q.intersects is not None)
        if counted:
            stmt = self._counted_page(layer_id, conds, q)
        elif q.offset or conds:
            # Rows skipped by OFFSET or sorted away are read for their id only; the page's columns
            # and WKB are built for its own rows (1M manholes, offset 19,000: 14 → 3 ms).
            page = sa.select(t.c.id).where(*conds).order_by(*order).limit(q.limit).offset(q.offset).subquery()
            stmt = sa.select(*self.select_columns(layer_id)).join_from(t, page, t.c.id == page.c.id).order_by(*order)
        else:
            stmt = sa.select(*self.select_columns(layer_id)).where(*conds).order_by(*order).limit(q.limit)
        with self.read() as conn:
            autocommit_reads(conn)  # each statement is a read of its own (as under READ COMMITTED)
            rows = conn.execute(stmt).all()  # all(): one fetch, not a fetchone per row
            features = self.rows_to_features(layer_id, rows)
            matched = None
            if q.count:
                if len(features) < q.limit and (features or q.offset == 0):
                    matched = q.offset + len(features)
                elif counted and rows and rows[0].n_capped < self._count_cap(q):
                    matched = rows[0].n_capped
                else:
                    matched = self._count(conn, layer_id, conds)
        return Page(features=features, number_matched=matched)

    COUNT_CAP = 20_000  # matches a bbox page counts in its own statement (_counted_page)

    def _count_cap(self, q: FeatureQuery) -> int:
        return max(self.COUNT_CAP, q.offset + q.limit + 1)

    def _counted_page(self, layer_id: str, conds: list, q: FeatureQuery):
        """A spatially filtered page and its ``numberMatched`` in one statement: the first
        ``_count_cap`` matching ids in page order, counted by a window (``n_capped``), sliced to
        the page, joined to their full rows. The GiST scan hands its matches over in no useful
        order, so the database collects all of them before it can order them by id anyway;
        counting them on the way saves the second scan a separate ``count(*)`` made (each match
        a random heap page: 1M manholes, a box of 11,700, ≈ 20–60 ms). Attribute filters keep
        the separate count: their page stops early in id order and their count is often an
        index-only scan (``status = '破损'``: 5 ms), where this would read 20,000 matches
        (200 ms). ``n_capped`` at the cap: count separately."""
        t = self.table(layer_id)
        sort = [t.c[n] for n, _ in q.sortby if n != "id"]
        capped = (sa.select(t.c.id, *sort).where(*conds).order_by(*self._order(t, q))
                  .limit(self._count_cap(q)).subquery())
        page = (sa.select(capped.c.id, func.count().over().label("n_capped")).order_by(*self._order(capped, q))
                .limit(q.limit).offset(q.offset).subquery())
        return (sa.select(*self.select_columns(layer_id), page.c.n_capped).join_from(t, page, t.c.id == page.c.id)
                .order_by(*self._order(t, q)))

    @staticmethod
    def _order(source, q: FeatureQuery) -> list:
        return [sa.desc(source.c[n]) if desc else sa.asc(source.c[n]) for n, desc in q.sortby] + [source.c.id]

    def count(self, layer_id: str, q: FeatureQuery | None = None) -> int:
        with self.read() as conn:
            return self._count(conn, layer_id, self.where(layer_id, q or FeatureQuery()))

    def _count(self, conn: sa.Connection, layer_id: str, conds: list) -> int:
        """Rows matching ``conds``; unfiltered on PostGIS from the trigger-kept count (storage.rowcount)."""
        if not conds and (n := rowcount.exact_count(self, conn, layer_id)) is not None:
            return n
        t = self.table(layer_id)
        return conn.execute(sa.select(func.count()).select_from(t).where(*conds)).scalar_one()

    def history(self, layer_id: str, fid: int) -> list[HistoryEntry]:
        """The feature's history entries, oldest first; snapshots with every field (expand_snapshot).

        An insert entry may cover a run of ids and stores no ``after`` (geoapi.storage.writer,
        "History"): the row as inserted is the ``before`` of the feature's next entry or, while
        there is none, the row as it is now. Entries written before that rule keep their own
        ``after``.
        """
        from geoapi.storage.writer import expand_snapshot, snapshot

        layer = self.layer(layer_id)
        h = schema.history
        stmt = sa.select(h).where(schema.feature_entries(layer_id, [fid])).order_by(h.c.id)
        with self.read() as conn:
            rows = conn.execute(stmt).all()   # exact for one feature: no run to filter
            afters = [r.after for r in rows]
            for i, r in enumerate(rows):
                if r.op != "insert" or r.after is not None:
                    continue
                if i + 1 < len(rows):
                    afters[i] = rows[i + 1].before
                elif (now := self.get(layer_id, fid, conn=conn)) is not None:
                    afters[i] = snapshot(now.props, now.geometry)
        return [HistoryEntry(version=r.version, op=r.op, actor=r.actor, at=r.at, batch_id=r.batch_id,
                             before=expand_snapshot(layer, r.before), after=expand_snapshot(layer, after))
                for r, after in zip(rows, afters, strict=True)]

    # -- writes --------------------------------------------------------------------------
    @contextmanager
    def transaction(self, actor: str, batch_id: str | None = None):
        """One database transaction; listeners hear about its changes only after commit."""
        from geoapi.storage.writer import Writer

        try:
            with self.engine.connect().execution_options(geoapi_write=True) as conn:
                writer = Writer(self, conn, actor=actor, batch_id=batch_id)
                with conn.begin():
                    if self.dialect == "postgis":
                        # Our own writes announce their changes after commit; the NOTIFY trigger
                        # is for direct SQL edits only (geoapi.storage.tilesql).
                        conn.exec_driver_sql("SET LOCAL geoapi.origin = 'store'")
                    yield writer
        except sa.exc.DBAPIError as exc:
            if dx.is_unavailable(exc):
                raise DatabaseUnavailableError(f"database unavailable: {exc.orig}") from exc
            raise
        self.publish(writer.changes())

    def create(self, layer_id: str, props: dict, geom, *, actor: str) -> Feature:
        with self.transaction(actor) as w:
            return w.create(layer_id, props, geom)

    def replace(self, layer_id: str, fid: int, props: dict, geom, *, actor: str,
                if_version: int | None = None) -> Feature:
        with self.transaction(actor) as w:
            return w.replace(layer_id, fid, props, geom, if_version=if_version)

    def patch(self, layer_id: str, fid: int, props: dict, geom=None, *, actor: str,
              if_version: int | None = None) -> Feature:
        with self.transaction(actor) as w:
            return w.patch(layer_id, fid, props, geom, if_version=if_version)

    def delete(self, layer_id: str, fid: int, *, actor: str, if_version: int | None = None) -> Feature:
        with self.transaction(actor) as w:
            return w.delete(layer_id, fid, if_version=if_version)

    def bulk_write(self, layer_id: str, rows, *, actor: str, batch_id: str | None = None,
                   mode: str = "append", src_file: str | None = None, src_crs: str | None = None,
                   validated: bool = False, expected_rows: int | None = None) -> dict[str, int]:
        """Write rows ``(props, geom)`` or ``(props, geom, extra)`` in one transaction, streaming;
        see Writer.write_many. ``extra`` goes to the ``extra`` JSON column: source columns that
        map to no field are kept there, not dropped.
        """
        with self.transaction(actor, batch_id=batch_id) as w:
            return w.write_many(layer_id, rows, mode=mode, src_file=src_file, src_crs=src_crs,
                                validated=validated, expected_rows=expected_rows)
