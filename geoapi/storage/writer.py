"""Writes inside one transaction: validation, 部件标识码 allocation, the row, its history.

History: an entry per change of a feature (insert, update, delete) with who, when, the batch
and the version. An update or a delete stores the row before it (``before``; an update also
``after``); an insert stores neither: the row as inserted is the ``before`` of the feature's next
entry or, until there is one, the row itself, and ``Store.history`` reads it from there. The
inserts of a bulk write are one entry per run of consecutive ids (``feature_id`` to
``last_feature_id``, schema.feature_entries): a load of a million rows writes a few dozen
entries, not a million (bench/README.md, "Imports"). Snapshots leave out empty (NULL) fields.
"""

from __future__ import annotations

import datetime as dt
import decimal
import gc
import itertools
import operator
import threading
from collections import defaultdict
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np
import shapely
import sqlalchemy as sa
from shapely.geometry import mapping
from sqlalchemy import func
from sqlalchemy.dialects import postgresql, sqlite

from geoapi.errors import (
    ConflictError,
    FeatureNotFoundError,
    PreconditionFailedError,
    ValidationFailedError,
)
from geoapi.storage import pgcopy, pgload, schema, tilecells, zorder
from geoapi.storage.assign import has_rows
from geoapi.storage.dialect import greatest
from geoapi.storage.engine import dump_json
from geoapi.storage.model import ChangeSet, Feature, IdSet
from geoapi.storage.spatial import in_bbox
from geoapi.storage.sqlitebulk import spatial_index_after
from layers import LayerSpec
from layers.codes import check_code, code_prefix, format_code
from layers.validate import conform_geometry, validate_properties

if TYPE_CHECKING:
    from geoapi.storage.store import Store

CHUNK = 25_000       # rows prepared at a time (COPY text, SpatiaLite executemany): bounds memory
COPY_ROWS = 100_000  # PostGIS: chunks joined into one COPY statement of at least this many rows
# the history columns of a bulk write's insert entry (Writer._insert_runs)
_RUN_COLUMNS = ("feature_id", "last_feature_id", "layer", "version", "op", "actor", "at", "batch_id")


_gc_lock = threading.Lock()
_gc_users = 0
_gc_saved: tuple[int, int, int] | None = None


@contextmanager
def fewer_gc_passes(first: int = 50_000):
    """Fewer cyclic-GC passes while a bulk write runs. Its rows are dicts, tuples and lists with
    no cycles (reference counting frees them), but each chunk keeps ~10^5 of them alive, and with
    the default thresholds the collector kept scanning them: a third of an import's CPU. The
    thresholds go back when the last bulk write of the process ends."""
    global _gc_users, _gc_saved
    with _gc_lock:
        if _gc_users == 0:
            _gc_saved = gc.get_threshold()
            gc.set_threshold(max(first, _gc_saved[0]), max(20, _gc_saved[1]), max(100, _gc_saved[2]))
        _gc_users += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_users -= 1
            if _gc_users == 0 and _gc_saved is not None:
                gc.set_threshold(*_gc_saved)


def batched(rows, n: int):
    """Lists of up to ``n`` items from any iterable (itertools.batched yields tuples)."""
    it = iter(rows)
    while chunk := list(itertools.islice(it, n)):
        yield chunk


def jsonable(value: Any) -> Any:
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def snapshot(props: dict[str, Any], geom) -> dict[str, Any]:
    """A feature as JSON for the history table. Empty (NULL) fields are left out: a survey row
    fills a handful of a layer's ~45 fields, and :func:`expand_snapshot` puts them back on read."""
    return {"properties": jsonable({k: v for k, v in props.items() if v is not None}),
            "geometry": jsonable(mapping(geom)) if geom is not None else None}


def expand_snapshot(layer: LayerSpec, snap: dict[str, Any] | None) -> dict[str, Any] | None:
    """A stored snapshot with every field of the layer, absent ones as None (the history API's
    shape, whether the entry was written compact or, before, in full)."""
    if not snap or not isinstance(snap.get("properties"), dict):
        return snap
    props = snap["properties"]
    full = {f.name: props.get(f.name) for f in layer.all_fields}
    full.update((k, v) for k, v in props.items() if k not in full)   # fields since removed from the layer
    return {**snap, "properties": full}


class Writer:
    def __init__(self, store: Store, conn: sa.Connection, *, actor: str, batch_id: str | None):
        self.store = store
        self.conn = conn
        self.actor = actor
        self.batch_id = batch_id
        self.now = dt.datetime.now(dt.UTC)
        self._changes: dict[tuple[str, str], ChangeSet] = {}
        self._districts: tuple[list[str], shapely.STRtree] | None = None   # for _fill_admin_codes
        # PostGIS bulk writes: the COPY of chunk k runs in a worker while chunk k+1 is prepared
        self._copies = pgcopy.CopyPipe(conn) if store.dialect == "postgis" else None
        self._copying: LayerSpec | None = None
        self._may_defer = False
        self._deferred: pgload.InitialLoad | None = None
        self._tally: tilecells.LoadTally | None = None   # cell counts of a possible initial load
        self._expected = 0   # rows the caller of write_many expects

    # -- helpers ---------------------------------------------------------------------------
    def _change(self, layer_id: str, op: str) -> ChangeSet:
        key = (layer_id, op)
        if key not in self._changes:
            tiles = self.store.layer(layer_id).tiles
            self._changes[key] = ChangeSet(layer=layer_id, op=op, batch_id=self.batch_id,
                                           zooms=range(tiles.minzoom, tiles.maxzoom + 1))
        return self._changes[key]

    def changes(self) -> list[ChangeSet]:
        return list(self._changes.values())

    def prepare(self, layer: LayerSpec, props: dict, geom, *, partial: bool = False,
                current: Feature | None = None) -> tuple[dict, Any]:
        """Validate props and geometry; raise ValidationFailedError listing every problem."""
        clean, problems = validate_properties(layer, props, partial=partial)
        if geom is not None or not partial:
            geom, gprob = conform_geometry(layer, geom, self.store.bounds)
            problems += gprob
        if problems:
            raise ValidationFailedError(
                f"{len(problems)} problem(s) with the {layer.title} feature",
                [p.as_dict() for p in problems],
            )
        return clean, geom

    def _enrich(self, layer: LayerSpec, props: dict, geom) -> None:
        for enricher in self.store.enrichers:
            enricher(self.conn, layer, props, geom)

    def _fill_admin_code(self, layer: LayerSpec, props: dict, geom) -> None:
        if props.get("admin_code") or layer.id == "districts" or "districts" not in self.store.registry:
            return
        t = self.store.table("districts")
        point = geom.representative_point()
        x, y = point.x, point.y
        p = func.ST_GeomFromWKB(shapely.to_wkb(point, flavor="iso"), schema.SRID)
        code = self.conn.execute(
            sa.select(t.c.admin_code).where(in_bbox(self.store.dialect, t, (x, y, x, y)),
                                            func.ST_Contains(t.c.geom, p)).order_by(t.c.id).limit(1)
        ).scalar()
        props["admin_code"] = code or self.store.city_admin_code

    def _fill_admin_codes(self, layer: LayerSpec, items: list[tuple[dict, Any]]) -> None:
        """``_fill_admin_code`` for a whole chunk: the districts are read once per transaction and
        matched in memory (an STRtree), instead of one spatial query per row."""
        todo = [(props, geom) for props, geom in items if not props.get("admin_code")]
        if not todo or layer.id == "districts" or "districts" not in self.store.registry:
            return
        if self._districts is None:
            t = self.store.table("districts")
            rows = self.conn.execute(sa.select(t.c.admin_code, func.ST_AsBinary(t.c.geom)).order_by(t.c.id)).all()
            self._districts = ([r[0] for r in rows], shapely.STRtree(shapely.from_wkb([bytes(r[1]) for r in rows])))
        codes, tree = self._districts
        # each row's first district (its index in codes), or the city's code (the last entry)
        first = np.full(len(todo), len(codes), dtype=np.int64)
        if codes:
            geoms = np.fromiter((g for _, g in todo), dtype=object, count=len(todo))
            other = shapely.get_type_id(geoms) != 0   # a point is its own point on surface
            if other.any():
                geoms[other] = shapely.point_on_surface(geoms[other])
            i, j = tree.query(geoms, predicate="within")
            first[i[::-1]] = j[::-1]   # of several matches the first wins (the last write of the reversed list)
        choice = [*codes, self.store.city_admin_code]
        for (props, _geom), k in zip(todo, first.tolist(), strict=True):
            props["admin_code"] = choice[k] or self.store.city_admin_code

    def _insert_stmt(self, table: sa.Table):
        mod = postgresql if self.store.dialect == "postgis" else sqlite
        return mod.insert(table)

    def _reserve_serials(self, prefix: str, n: int) -> int:
        """Reserve ``n`` serials for a 10-digit prefix (admin + 小类); returns the last one reserved."""
        cs = schema.code_serials
        stmt = self._insert_stmt(cs).values(prefix=prefix, last=n)
        stmt = stmt.on_conflict_do_update(index_elements=["prefix"], set_={"last": cs.c.last + n})
        return self.conn.execute(stmt.returning(cs.c.last)).scalar_one()

    def _note_given_serial(self, prefix: str, serial: int) -> None:
        """Serials up to ``serial`` of ``prefix`` are in use (a code given by the caller)."""
        cs = schema.code_serials
        stmt = self._insert_stmt(cs).values(prefix=prefix, last=serial)
        stmt = stmt.on_conflict_do_update(index_elements=["prefix"],
                                          set_={"last": greatest(self.store.dialect, cs.c.last, serial)})
        self.conn.execute(stmt)

    def _code_taken(self, layer_id: str, code: str) -> bool:
        t = self.store.table(layer_id)
        return self.conn.execute(sa.select(t.c.id).where(t.c.obj_code == code).limit(1)).first() is not None

    def assign_codes(self, layer: LayerSpec, items: list[tuple[dict, Any]], exclude_id: int | None = None) -> None:
        """Check given 部件标识码 and allocate missing ones (per prefix, in blocks). Set-wise: a
        chunk of 25,000 rows costs a query per 2,000 given codes and two per prefix, not a
        query per row."""
        if layer.identifier is None:
            return
        props = [p for p, _ in items]
        codes = [p.get("obj_code") for p in props]
        todo = props
        if any(codes):
            self._check_given_codes(layer, props, codes, exclude_id)
            todo = [p for p, code in zip(props, codes, strict=True) if not code]
        # rows without a code, grouped by prefix (admin_code + the 小类 of their subclass field)
        sub = layer.identifier.subclass_field
        keys = zip([p.get("admin_code") for p in todo], [p.get(sub) for p in todo] if sub else [None] * len(todo),
                   strict=True)
        groups: dict[tuple, list[dict]] = defaultdict(list)
        for key, p in zip(keys, todo, strict=True):
            groups[key].append(p)
        missing: dict[str, list[dict]] = defaultdict(list)
        for (admin, _), group in groups.items():
            missing[code_prefix(layer, admin, group[0])] += group
        for prefix, group in missing.items():
            last = self._reserve_serials(prefix, len(group))
            first = last - len(group) + 1
            format_code(prefix, first)
            format_code(prefix, last)   # checks the prefix and the serial range once for the block
            block = [f"{prefix}{serial:06d}" for serial in range(first, last + 1)]
            # A code given earlier may sit in our block: one index range scan per block, not one
            # query per code (codes are 16 digits, so they sort as numbers do).
            taken = self._codes_between(layer.id, block[0], block[-1])
            for code, p in zip(block, group, strict=True):
                if taken and code in taken:
                    code = format_code(prefix, self._reserve_serials(prefix, 1))
                    while self._code_taken(layer.id, code):
                        code = format_code(prefix, self._reserve_serials(prefix, 1))
                p["obj_code"] = code

    def _check_given_codes(self, layer: LayerSpec, props: list[dict], codes: list, exclude_id: int | None) -> None:
        """Given codes: well formed (ValidationFailedError listing the rows), not used by
        another feature (ConflictError), and their serials noted so that allocation skips them."""
        problems = []
        for i, (p, code) in enumerate(zip(props, codes, strict=True)):
            if code and (reason := check_code(layer, code, p)):
                problems.append({"field": "obj_code", "message": reason, "row": i})
        if problems:
            raise ValidationFailedError("invalid 部件标识码", problems)
        given = [code for code in codes if code]
        t = self.store.table(layer.id)
        for part in batched(given, 2000):
            stmt = sa.select(t.c.obj_code).where(t.c.obj_code.in_(part))
            if exclude_id is not None:
                stmt = stmt.where(t.c.id != exclude_id)
            if taken := set(self.conn.execute(stmt).scalars()):
                rows = [i for i, code in enumerate(codes) if code in taken]
                raise ConflictError(f"部件标识码 {codes[rows[0]]} is already used in {layer.title}",
                                    [{"field": "obj_code", "message": "duplicate", "row": i} for i in rows[:1000]])
        top: dict[str, int] = {}
        for code in given:
            top[code[:10]] = max(top.get(code[:10], 0), int(code[10:]))
        for prefix, serial in top.items():
            self._note_given_serial(prefix, serial)

    def _codes_between(self, layer_id: str, low: str, high: str) -> set[str]:
        t = self.store.table(layer_id)
        return set(self.conn.execute(sa.select(t.c.obj_code).where(t.c.obj_code.between(low, high))).scalars())

    def _history(self, rows: list[dict]) -> None:
        if rows:
            self.conn.execute(schema.history.insert(), rows)

    def _history_row(self, layer_id: str, fid: int, version: int, op: str, before, after) -> dict:
        return {"layer": layer_id, "feature_id": fid, "version": version, "op": op, "actor": self.actor,
                "at": self.now, "batch_id": self.batch_id, "before": before, "after": after}

    def _load(self, layer_id: str, fid: int, if_version: int | None) -> Feature:
        current = self.store.get(layer_id, fid, conn=self.conn)
        if current is None:
            raise FeatureNotFoundError(f"no feature {fid} in layer {layer_id}")
        if if_version is not None and if_version != current.version:
            raise PreconditionFailedError(
                f"feature {layer_id}/{fid} is at version {current.version}, not {if_version}: "
                "someone changed it since you read it; reload and retry")
        return current

    def _geom_value(self, geom):
        return func.ST_GeomFromWKB(shapely.to_wkb(geom, flavor="iso"), schema.SRID)

    # -- single features -------------------------------------------------------------------
    def create(self, layer_id: str, props: dict, geom, *, validated: bool = False,
               src_file: str | None = None, src_crs: str | None = None, extra: dict | None = None) -> Feature:
        layer = self.store.layer(layer_id)
        t = self.store.table(layer_id)
        if not validated:
            props, geom = self.prepare(layer, props, geom)
        self._fill_admin_code(layer, props, geom)
        self._enrich(layer, props, geom)
        self.assign_codes(layer, [(props, geom)])
        values = {**props, "version": 1, "created_at": self.now, "created_by": self.actor,
                  "updated_at": self.now, "updated_by": self.actor, "batch_id": self.batch_id,
                  "src_file": src_file, "src_crs": src_crs, "extra": extra, "geom": self._geom_value(geom)}
        try:
            fid = self.conn.execute(t.insert().values(values).returning(t.c.id)).scalar_one()
        except sa.exc.IntegrityError as exc:
            raise ConflictError(f"{layer.title}: the database refused the feature ({exc.orig})") from exc
        self._history([self._history_row(layer_id, fid, 1, "insert", None, None)])
        self._change(layer_id, "insert").record([fid], new=[geom])
        return self.store.get(layer_id, fid, conn=self.conn)

    def _update(self, layer: LayerSpec, current: Feature, props: dict, geom) -> Feature:
        t = self.store.table(layer.id)
        new_props = {**current.props, **props}
        if layer.identifier:
            given = props.get("obj_code")
            old_code = current.props.get("obj_code")
            if not given:
                # Keep the code unless the change reclassified the asset (e.g. 雨水 → 污水 changes
                # the 小类): then it gets a new code; history keeps the old one.
                fits = old_code and check_code(layer, old_code, new_props) is None
                new_props["obj_code"] = old_code if fits else None
            if new_props["obj_code"] != old_code or not new_props["obj_code"]:
                self.assign_codes(layer, [(new_props, geom)], exclude_id=current.id)
            else:
                reason = check_code(layer, new_props["obj_code"], new_props)
                if reason:
                    raise ValidationFailedError(reason, [{"field": "obj_code", "message": reason}])
        self._enrich(layer, new_props, geom)
        version = current.version + 1
        values = {**new_props, "version": version, "updated_at": self.now, "updated_by": self.actor,
                  "geom": self._geom_value(geom)}
        if self.batch_id:
            values["batch_id"] = self.batch_id
        try:
            self.conn.execute(t.update().where(t.c.id == current.id).values(values))
        except sa.exc.IntegrityError as exc:
            raise ConflictError(f"{layer.title}: the new values clash with another feature ({exc.orig})") from exc
        self._history([self._history_row(layer.id, current.id, version, "update",
                                         snapshot(current.props, current.geometry), snapshot(new_props, geom))])
        ch = self._change(layer.id, "update")
        ch.record([current.id], old=[current.geometry], new=[geom])
        ch.status_changed = ch.status_changed or new_props.get("status") != current.props.get("status")
        return self.store.get(layer.id, current.id, conn=self.conn)

    def replace(self, layer_id: str, fid: int, props: dict, geom, *, if_version: int | None = None) -> Feature:
        layer = self.store.layer(layer_id)
        current = self._load(layer_id, fid, if_version)
        clean, geom = self.prepare(layer, props, geom)
        # PUT replaces every field: absent ones become NULL (or their default).
        full = {f.name: clean.get(f.name) for f in layer.all_fields}
        if not full.get("admin_code"):
            full["admin_code"] = current.props.get("admin_code")
        return self._update(layer, current, full, geom)

    def patch(self, layer_id: str, fid: int, props: dict, geom=None, *, if_version: int | None = None) -> Feature:
        layer = self.store.layer(layer_id)
        current = self._load(layer_id, fid, if_version)
        clean, new_geom = self.prepare(layer, props, geom, partial=True)
        return self._update(layer, current, clean, new_geom if geom is not None else current.geometry)

    def delete(self, layer_id: str, fid: int, *, if_version: int | None = None) -> Feature:
        current = self._load(layer_id, fid, if_version)
        t = self.store.table(layer_id)
        self.conn.execute(t.delete().where(t.c.id == fid))
        self._history([self._history_row(layer_id, fid, current.version + 1, "delete",
                                         snapshot(current.props, current.geometry), None)])
        self._change(layer_id, "delete").record([fid], old=[current.geometry])
        return current

    def reinsert(self, layer_id: str, fid: int, props: dict, geom, *, meta: dict | None = None) -> Feature:
        """Put a deleted feature back under its old id (an import rollback undoing ``replace``).

        ``meta`` may restore system columns history keeps no copy of (created_at/by, batch_id …).
        """
        layer = self.store.layer(layer_id)
        t = self.store.table(layer_id)
        props, geom = self.prepare(layer, props, geom)
        h = schema.history
        last = self.conn.execute(sa.select(func.max(h.c.version)).where(schema.feature_entries(layer_id, [fid]))).scalar()
        version = (last or 0) + 1
        values = {**{f.name: props.get(f.name) for f in layer.all_fields}, "id": fid, "version": version,
                  "created_at": self.now, "created_by": self.actor, "updated_at": self.now,
                  "updated_by": self.actor, "batch_id": self.batch_id, **(meta or {}),
                  "geom": self._geom_value(geom)}
        try:
            self.conn.execute(t.insert().values(values))
        except sa.exc.IntegrityError as exc:
            raise ConflictError(f"{layer.title}: cannot restore feature {fid}: its id or code is taken "
                                f"({exc.orig})") from exc
        self._history([self._history_row(layer_id, fid, version, "insert", None, None)])
        self._change(layer_id, "insert").record([fid], new=[geom])
        return self.store.get(layer_id, fid, conn=self.conn)

    # -- many features -----------------------------------------------------------------------
    def write_many(self, layer_id: str, rows, *, mode: str = "append", src_file: str | None = None,
                   src_crs: str | None = None, validated: bool = False,
                   expected_rows: int | None = None) -> dict[str, int]:
        """Write ``(props, geom)`` or ``(props, geom, extra)`` rows in chunks, streaming (``rows``
        may be a generator; nothing is kept past its chunk).

        ``validated=True`` skips the per-row checks (the importers and the demo check rows
        themselves, and report per row). ``extra`` (a dict or None) goes to the ``extra``
        column. ``append`` inserts all; ``upsert`` updates rows whose code (the layer's
        code_field, else obj_code) exists and inserts the rest; ``replace`` deletes the layer's
        rows first. ``expected_rows``: how many rows the caller expects (an import knows its
        file's count); a PostGIS initial load of at least COPY_ROWS then starts its COPY with
        the first chunk instead of after COPY_ROWS rows. Returns {"inserted", "updated", "deleted"}.
        """
        if mode not in ("append", "upsert", "replace"):
            raise ValueError(f"mode must be append, upsert or replace, not {mode!r}")
        self._expected = expected_rows or 0
        with fewer_gc_passes():
            return self._write_many(layer_id, rows, mode, src_file, src_crs, validated)

    def _write_many(self, layer_id: str, rows, mode: str, src_file: str | None, src_crs: str | None,
                    validated: bool) -> dict[str, int]:
        layer = self.store.layer(layer_id)
        counts = {"inserted": 0, "updated": 0, "deleted": 0}
        # An initial load (append/replace into a table empty at the start: readers of a layer
        # with rows are never made to wait) that reaches COPY_ROWS builds its secondary indexes
        # and tile cell counts after the rows (geoapi.storage.pgload).
        self._may_defer = (self._copies is not None and mode != "upsert"
                           and not has_rows(self.conn, self.store, layer_id))
        self._deferred = None
        self._tally = tilecells.LoadTally.for_layer(layer) if self._may_defer else None
        if mode == "replace":
            counts["deleted"] = self._delete_all(layer_id)
        key = layer.code_field or ("obj_code" if layer.identifier else None)
        size = CHUNK
        start = 0
        try:
            for chunk in batched(rows, size):
                counts_chunk = self._write_chunk(layer, chunk, start, key, mode, src_file, src_crs, validated)
                start += counts_chunk.pop("rows")
                for k, v in counts_chunk.items():
                    counts[k] += v
            self._flush_copies()
            if self._deferred is not None:
                self._deferred.restore(self._tally)
        except BaseException:
            if self._copies is not None:   # let a COPY in flight end before the rollback
                self._copies.drop()
                try:
                    self._copies.wait()
                except Exception:
                    pass
            if self._deferred is not None:   # the indexes are back, whatever the caller does next
                self._deferred.abandon()
            raise
        finally:
            self._may_defer, self._deferred, self._tally = False, None, None
        return counts

    def _write_chunk(self, layer: LayerSpec, chunk: list, start: int, key: str | None, mode: str,
                     src_file: str | None, src_crs: str | None, validated: bool) -> dict[str, int]:
        counts = {"rows": len(chunk), "inserted": 0, "updated": 0}
        if validated and mode != "upsert" and all(map((3).__eq__, map(len, chunk))):
            counts["inserted"] += self._insert_chunk(layer, chunk, src_file, src_crs)   # the import's rows as they are
            return counts
        chunk_extras = [r[2] if len(r) > 2 else None for r in chunk]
        chunk = [(r[0], r[1]) for r in chunk]
        if not validated:
            chunk = self._prepare_rows(layer, chunk, offset=start)
        if mode == "upsert":
            self._flush_copies()   # the lookup must see the rows of earlier chunks
        existing = self._existing_by_code(layer, key, chunk) if mode == "upsert" and key else {}
        to_insert = []
        for (props, geom), extra in zip(chunk, chunk_extras, strict=True):
            current = existing.get(props.get(key)) if key else None
            if current is not None:
                self._update(layer, current, props, geom)
                counts["updated"] += 1
            else:
                to_insert.append((props, geom, extra))
        if to_insert:
            counts["inserted"] += self._insert_chunk(layer, to_insert, src_file, src_crs)
        return counts

    def _existing_by_code(self, layer: LayerSpec, key: str, chunk: list) -> dict[str, Feature]:
        t = self.store.table(layer.id)
        codes = [p.get(key) for p, _ in chunk if p.get(key)]
        if not codes:
            return {}
        stmt = sa.select(*self.store.select_columns(layer.id)).where(t.c[key].in_(codes))
        return {f.props[key]: f for f in self.store.rows_to_features(layer.id, self.conn.execute(stmt))}

    def _prepare_rows(self, layer: LayerSpec, rows: list, offset: int = 0) -> list:
        out, problems = [], []
        for i, (props, geom) in enumerate(rows):
            try:
                out.append(self.prepare(layer, props, geom))
            except ValidationFailedError as exc:
                problems += [{**e, "row": offset + i} for e in exc.errors]
        if problems:
            raise ValidationFailedError(f"{len({p['row'] for p in problems})} rows are invalid for {layer.title} "
                                        f"(rows {offset}–{offset + len(rows) - 1} checked)", problems[:1000])
        return out

    def _delete_all(self, layer_id: str) -> int:
        """Delete every row of the layer, each with its history entry; read a chunk at a time."""
        t = self.store.table(layer_id)
        ch = self._change(layer_id, "delete")
        stmt = sa.select(*self.store.select_columns(layer_id)).order_by(t.c.id).limit(CHUNK)
        n, last = 0, None
        while old := self.store.rows_to_features(
                layer_id, self.conn.execute(stmt if last is None else stmt.where(t.c.id > last))):
            self._history([self._history_row(layer_id, f.id, f.version + 1, "delete",
                                             snapshot(f.props, f.geometry), None) for f in old])
            ch.record([f.id for f in old], old=[f.geometry for f in old])
            n, last = n + len(old), old[-1].id
        self.conn.execute(t.delete())
        return n

    def _insert_chunk(self, layer: LayerSpec, chunk: list[tuple[dict, Any, dict | None]],
                      src_file: str | None, src_crs: str | None) -> int:
        n = len(chunk)
        props = list(map(operator.itemgetter(0), chunk))
        geoms = np.fromiter(map(operator.itemgetter(1), chunk), dtype=object, count=n)
        items = list(zip(props, geoms.tolist(), strict=True))
        if self._copies is not None:
            self._wait_copies()   # the COPY started for an earlier chunk has ended: the connection is free
        # In the rows' own order (codes are allocated in it); each pass reads the row dicts in
        # the order they were made, which is also the order they lie in memory.
        self._fill_admin_codes(layer, items)
        self._enrich_many(layer, items)
        self.assign_codes(layer, items)
        cols = {**self._field_columns(layer, props), **self._extra_column(chunk)}
        if self._tally is not None:
            self._tally.add(geoms, cols)
        cols["geom"] = pgcopy.hex_ewkb(geoms, schema.SRID) if self._copies is not None else \
            shapely.to_wkb(geoms, flavor="iso").tolist()
        # Stored in Z-order: neighbours on neighbouring pages (geoapi.storage.zorder). The columns
        # are permuted last: the geometries are read in the order they were made (and lie in
        # memory); read in Z-order, each costs a cache miss.
        order = zorder.order(geoms)
        if order is not None:
            take = operator.itemgetter(*order)
            cols = {name: list(take(values)) for name, values in cols.items()}
        if self._copies is not None:
            ids = pgcopy.reserve_ids(self.conn, self.store.table(layer.id), n)
            # The chunks queued so far are copied while this one's text is built, and while the
            # next chunk is read, up to its own statements above (they need the connection).
            # During an initial load that is every chunk; otherwise chunks are joined into
            # statements of COPY_ROWS rows, for the statement triggers (CopyPipe).
            big = self._may_defer and self._expected >= COPY_ROWS   # an initial load from its first chunk
            if big or self._copies.queued_rows >= (1 if self._deferred is not None else COPY_ROWS):
                if self._may_defer:
                    self._may_defer = False
                    self._deferred = pgload.InitialLoad.defer(self.conn, layer, self.store.table(layer.id))
                self._copies.start()
            self._copies.add(self._copy_jobs(layer, cols, ids, src_file, src_crs), n)
            self._copying = layer   # for the message of a refused COPY (one layer per write_many)
        else:
            ids = self._insert_values(layer, cols, src_file, src_crs)
        self._change(layer.id, "insert").record(ids, new=geoms)   # in any order: ids and tiles are sets
        return len(ids)

    def _wait_copies(self) -> None:
        try:
            self._copies.wait()
        except Exception as exc:  # psycopg raises its own errors from COPY; say which row class failed
            if getattr(exc, "sqlstate", None) and exc.sqlstate.startswith("23"):
                title = self._copying.title if self._copying else "layer"
                raise ConflictError(f"{title}: the database refused the batch ({exc})") from exc
            raise

    def _flush_copies(self) -> None:
        """COPY what is prepared and wait for it: the connection is the caller's again."""
        if self._copies is not None:
            self._copies.start()
            self._wait_copies()

    def _enrich_many(self, layer: LayerSpec, items: list[tuple[dict, Any]]) -> None:
        """Enrichers that offer ``many(conn, layer, items)`` run once per chunk, the rest per row."""
        for enricher in self.store.enrichers:
            many = getattr(enricher, "many", None)
            if many is not None:
                many(self.conn, layer, items)
            else:
                for props, geom in items:
                    enricher(self.conn, layer, props, geom)

    def _field_columns(self, layer: LayerSpec, props: list[dict]) -> dict[str, list[Any]]:
        """The chunk's field values column by column.

        Columns NULL in every row of the chunk are left out (of the statement and of the history
        snapshot): they are stored as NULL all the same (no field column has a server default),
        and most of a layer's fields are empty in a survey delivery.
        """
        n = len(props)
        keys = set(props[0])
        try:
            # The importer gives every row of a batch the same fields: rows of the same size that
            # all have the first row's keys have the same keys (else KeyError). A column is one
            # C-level map over the dicts (the writer reads them in the order they were made).
            if len(set(map(len, props))) > 1:
                raise KeyError
            cols = {f.name: list(map(operator.itemgetter(f.name), props)) for f in layer.all_fields if f.name in keys}
        except KeyError:
            cols = {f.name: [p.get(f.name) for p in props] for f in layer.all_fields}
        t = self.store.table(layer.id)
        return {name: v for name, v in cols.items() if v.count(None) < n or t.c[name].server_default is not None}

    def _system_values(self, src_file: str | None, src_crs: str | None) -> dict[str, Any]:
        """The system columns of inserted rows: the same for every row of a write."""
        return dict(version=1, created_at=self.now, created_by=self.actor, updated_at=self.now,
                    updated_by=self.actor, batch_id=self.batch_id, src_file=src_file, src_crs=src_crs)

    @staticmethod
    def _extra_column(chunk: list) -> dict[str, list[Any]]:
        """``{"extra": [...]}`` when a row of the chunk has unmapped columns, else nothing."""
        extra = [e for _, _, e in chunk]
        return {"extra": extra} if extra.count(None) < len(extra) else {}

    def _copy_jobs(self, layer: LayerSpec, cols: dict[str, list[Any]], ids: list[int],
                   src_file: str | None, src_crs: str | None) -> list[pgcopy.Job]:
        """PostGIS: the chunk's rows (``cols``: _field_columns, _extra_column and ``geom`` as
        hex EWKB) and their history entry as COPY text (geoapi.storage.pgcopy)."""
        t = self.store.table(layer.id)
        cols = dict(cols)
        geom = cols.pop("geom")
        json_cols = {f.name for f in layer.all_fields if f.type in ("json", "enum_list")} | {"extra"}
        system = self._system_values(src_file, src_crs)
        ids_text = [str(i) for i in ids]
        texts = [ids_text]
        texts += [pgcopy.text_column(values, dump_json, as_json=name in json_cols) for name, values in cols.items()]
        texts.append(geom)
        rows = pgcopy.copy_body(texts, pgcopy.constant_text(system.values(), dump_json))   # bytes: compact
        del texts
        runs = self._insert_runs(layer.id, ids)
        entries = pgcopy.copy_body([[str(run[0]) for run in runs], [str(run[1]) for run in runs]],
                                   pgcopy.constant_text(runs[0][2:], dump_json))
        return [(t, ["id", *cols, "geom", *system], rows),
                (schema.history, [*_RUN_COLUMNS], entries)]

    def _insert_runs(self, layer_id: str, ids: list[int]) -> list[tuple]:
        """History entries for inserted ids, one per run of consecutive ids, in the order of
        ``_RUN_COLUMNS``; they carry no snapshot (module docstring, "History")."""
        return [(start, stop - 1, layer_id, 1, "insert", self.actor, self.now, self.batch_id)
                for start, stop in IdSet(ids).runs()]

    def _insert_values(self, layer: LayerSpec, cols: dict[str, list[Any]], src_file: str | None,
                       src_crs: str | None) -> list[int]:
        """SpatiaLite: one prepared INSERT run by the driver's executemany, ids given explicitly
        (``cols``: _field_columns, _extra_column and ``geom`` as WKB).

        The writer holds SQLite's write lock (BEGIN IMMEDIATE), so the ids after the table's
        AUTOINCREMENT high-water mark are free; SQLite moves the mark past explicit ids itself.
        """
        t = self.store.table(layer.id)
        dialect = self.conn.dialect
        has_seq = self.conn.execute(sa.text("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'")).scalar()
        seq = self.conn.execute(sa.text("SELECT seq FROM sqlite_sequence WHERE name = :t"),
                                {"t": t.name}).scalar() if has_seq else None
        top = self.conn.execute(sa.select(func.max(t.c.id))).scalar()
        first = max(seq or 0, top or 0) + 1
        cols = dict(cols)
        wkb = cols.pop("geom")
        n = len(wkb)
        ids = list(range(first, first + n))
        cols = {**{k: [v] * n for k, v in self._system_values(src_file, src_crs).items()}, **cols}
        for name, values in cols.items():
            process = t.c[name].type._cached_bind_processor(dialect)
            if process is None:
                continue
            if values.count(values[0]) == len(values):   # system columns: one value for the chunk
                cols[name] = [process(values[0])] * len(values)
            else:
                cols[name] = [process(v) for v in values]
        names = ", ".join(f'"{c}"' for c in ["id", *cols, "geom"])
        marks = ", ".join(["?"] * (len(cols) + 1))
        sql = f'INSERT INTO "{t.name}" ({names}) VALUES ({marks}, ST_GeomFromWKB(?, {schema.SRID}))'
        cur = self.conn.connection.driver_connection.cursor()
        try:
            with spatial_index_after(cur, t.name, ids[0], ids[-1]):
                cur.executemany(sql, zip(ids, *cols.values(), wkb, strict=True))
        except Exception as exc:
            if "constraint" in str(exc).lower():
                raise ConflictError(f"{layer.title}: the database refused the batch ({exc})") from exc
            raise
        finally:
            cur.close()
        self.conn.execute(schema.history.insert(), [dict(zip(_RUN_COLUMNS, run, strict=True))
                                                    for run in self._insert_runs(layer.id, ids)])
        return ids

