"""Import batches: the durable record of every import (``import_batches``) and its rollback.

A batch row is written when an import is queued and updated when it runs and ends; it keeps
the provenance (file, size, SHA-256, who, when, options) and the report. Rolling a batch back
reads the history rows that carry its id and undoes them through a Store transaction, so the
undo is itself in history and invalidates the tiles it touches:

- rows the batch inserted are deleted;
- rows it updated get back the ``before`` of its history entry;
- rows a ``replace`` deleted are put back under their old ids.

A batch whose rows were changed by a later write is not rolled back (409 naming the rows):
undoing it would silently throw that later work away.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import sqlalchemy as sa
from shapely.geometry import shape

from geoapi.storage import schema
from importers.engine import ImportOptions, Progress, new_batch_id, run_import
from importers.errors import BatchNotFoundError, RollbackConflictError
from importers.report import ImportReport, RejectedRow

ROLLBACK_SUFFIX = "-rollback"
_CHUNK = 2000
# Options recorded with the batch (ArchiveLimits, city bounds … are the server's, not the caller's).
_RECORDED = ("layer", "crs", "encoding", "transform", "xy_order", "coord_columns", "source_layer", "mapping",
             "mode", "on_error", "dry_run")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# -- the batch record -----------------------------------------------------------------------------

def create_batch(store: Any, options: ImportOptions, *, file_name: str, file_size: int | None = None,
                 state: str = "queued") -> str:
    """Insert the batch row for an import about to run; returns its id (also set on ``options``)."""
    options.batch_id = options.batch_id or new_batch_id()
    recorded = {k: v for k, v in dataclasses.asdict(options).items() if k in _RECORDED}
    with store.engine.begin() as conn:
        conn.execute(schema.import_batches.insert().values(
            id=options.batch_id, layer=options.layer, state=state, actor=options.actor, created_at=_now(),
            file_name=file_name[:300], file_size=file_size, options=recorded))
    return options.batch_id


def update_batch(store: Any, batch_id: str, **values: Any) -> None:
    with store.engine.begin() as conn:
        conn.execute(schema.import_batches.update().where(schema.import_batches.c.id == batch_id).values(**values))


def finish_batch(store: Any, batch_id: str, report: ImportReport) -> None:
    """Record how the import ended: state, provenance and the full report."""
    prov = report.provenance
    update_batch(store, batch_id, state=report.state, finished_at=_now(), report=report.as_dict(),
                 file_size=prov.file_size if prov else None, file_sha256=prov.sha256 if prov else None)


def fail_batch(store: Any, batch_id: str, error: BaseException) -> None:
    """Record an import that could not run at all (refused delivery, unreadable file …)."""
    detail = getattr(error, "detail", None) or str(error) or type(error).__name__
    code = getattr(error, "code", "internal_error")
    update_batch(store, batch_id, state="failed", finished_at=_now(),
                 report={"state": "failed", "message": detail, "code": code,
                         "errors": getattr(error, "errors", [])})


def get_batch(store: Any, batch_id: str) -> dict[str, Any]:
    with store.read() as conn:
        row = conn.execute(sa.select(schema.import_batches).where(schema.import_batches.c.id == batch_id)).first()
    if row is None:
        raise BatchNotFoundError(f"no import batch {batch_id!r}")
    return dict(row._mapping)


def list_batches(store: Any, *, layer: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """Newest first; the report is left out (it can be large): fetch one batch for it."""
    t = schema.import_batches
    stmt = sa.select(*[c for c in t.c if c.name != "report"]).order_by(t.c.created_at.desc(), t.c.id).limit(limit)
    if layer:
        stmt = stmt.where(t.c.layer == layer)
    with store.read() as conn:
        return [dict(r._mapping) for r in conn.execute(stmt)]


def rejected_csv(batch: dict[str, Any]) -> str:
    """A recorded batch's rejected rows as the report CSV (UTF-8 with BOM)."""
    stored = batch.get("report") or {}
    report = ImportReport(layer=batch["layer"], mode="", on_error="", dry_run=False)
    report.rejected = [RejectedRow(r["row"], r.get("code"), tuple(r.get("reasons") or ()))
                       for r in stored.get("rejected") or []]
    return report.rejected_csv()


def run_recorded_import(store: Any, path: Path, options: ImportOptions, *, progress: Progress | None = None,
                        file_name: str | None = None, created: bool = False) -> ImportReport:
    """``run_import`` with its batch row: created (unless ``created``), set running, then finished.

    Refusals are recorded as a failed batch and re-raised, so callers still see the error.
    """
    if not created:
        create_batch(store, options, file_name=file_name or Path(path).name, state="running")
    else:
        update_batch(store, options.batch_id, state="running")
    try:
        report = run_import(store, path, options, progress=progress)
    except BaseException as exc:
        try:
            fail_batch(store, options.batch_id, exc)
        except Exception:   # the database may be what failed; the caller still gets the first error
            pass
        raise
    if report.provenance is not None and file_name:
        report.provenance.file_name = file_name
    finish_batch(store, options.batch_id, report)
    return report


# -- rollback -----------------------------------------------------------------------------------

@dataclass
class _Touched:
    """What one batch did to one feature id, from its history entries (in order)."""

    first_op: str
    last_op: str
    first_entry: int
    last_entry: int
    before: dict[str, Any] | None

    @property
    def existed_before(self) -> bool:
        return self.first_op != "insert"

    @property
    def exists_after(self) -> bool:
        return self.last_op != "delete"


class _Entry(NamedTuple):
    """One feature's part of a history entry (an entry may cover a run of ids)."""

    id: int
    feature_id: int
    op: str
    actor: str
    at: dt.datetime | None
    batch_id: str | None


@dataclass
class RollbackResult:
    batch_id: str
    layer: str
    deleted: int = 0      # rows the batch had inserted
    restored: int = 0     # rows it had updated, back to their old values
    reinserted: int = 0   # rows its replace had deleted
    conflicts: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def rollback_batch(store: Any, batch_id: str, *, actor: str) -> RollbackResult:
    """Undo a finished batch in one transaction; RollbackConflictError when it cannot be undone."""
    batch = get_batch(store, batch_id)
    if batch["state"] != "done":
        why = {"rolled_back": "it was already rolled back", "dry_run": "a dry run wrote nothing",
               "failed": "it failed, so nothing was written"}.get(batch["state"], f"it is {batch['state']}")
        raise RollbackConflictError(f"batch {batch_id} cannot be rolled back: {why}")
    layer_id = batch["layer"]
    touched = _touched(store, batch_id, layer_id)
    neutral = _neutral_batches(store)
    conflicts = _later_changes(store, layer_id, batch_id, touched, neutral)
    if conflicts:
        ids = ", ".join(str(c["id"]) for c in conflicts[:20])
        raise RollbackConflictError(
            f"batch {batch_id} cannot be rolled back: {len(conflicts)} of its {layer_id} features were "
            f"changed after it (ids {ids}{' …' if len(conflicts) > 20 else ''}); undo those changes first",
            [{"field": "id", "row": c["id"], "message": f"{c['op']} by {c['actor']} at {c['at']}"}
             for c in conflicts[:1000]])
    previous = _previous_batch_ids(store, layer_id, touched, neutral)
    result = RollbackResult(batch_id, layer_id)
    t = store.table(layer_id)
    with store.transaction(actor, batch_id=batch_id + ROLLBACK_SUFFIX) as w:
        # Deletes first: a restored or re-inserted row may take back a code a new row holds.
        for fid, what in sorted(touched.items()):
            if what.exists_after and not what.existed_before:
                w.delete(layer_id, fid)
                result.deleted += 1
        for fid, what in sorted(touched.items()):
            if not what.existed_before:
                continue
            props, geom = _snapshot(what.before)
            if what.exists_after:
                w.replace(layer_id, fid, props, geom)
                result.restored += 1
            else:
                w.reinsert(layer_id, fid, props, geom, meta=_created_meta(w.conn, layer_id, fid, what.first_entry))
                result.reinserted += 1
            # The row's batch_id says which import last wrote it: put back the one before ours.
            w.conn.execute(t.update().where(t.c.id == fid).values(batch_id=previous.get(fid)))
        w.conn.execute(schema.import_batches.update().where(schema.import_batches.c.id == batch_id)
                       .values(state="rolled_back", rolled_back_at=w.now))
    return result


def _snapshot(snap: dict[str, Any] | None) -> tuple[dict[str, Any], Any]:
    assert snap is not None
    return dict(snap["properties"]), shape(snap["geometry"])


def _touched(store: Any, batch_id: str, layer_id: str) -> dict[int, _Touched]:
    h = schema.history
    stmt = (sa.select(h.c.id, h.c.feature_id, h.c.last_feature_id, h.c.op, h.c.before)
            .where(h.c.batch_id == batch_id, h.c.layer == layer_id).order_by(h.c.id))
    out: dict[int, _Touched] = {}
    with store.read() as conn:
        for r in conn.execute(stmt):
            for fid in schema.entry_ids(r):   # an insert entry may be a run of ids
                t = out.get(fid)
                if t is None:
                    out[fid] = _Touched(r.op, r.op, r.id, r.id, r.before)
                else:
                    t.last_op, t.last_entry = r.op, r.id
    return out


def _neutral_batches(store: Any) -> set[str]:
    """Batches whose effect is gone (rolled back) and their rollbacks: later writes that do not count."""
    t = schema.import_batches
    with store.read() as conn:
        ids = conn.execute(sa.select(t.c.id).where(t.c.state == "rolled_back")).scalars().all()
    return set(ids) | {i + ROLLBACK_SUFFIX for i in ids}


def _history_after_batch(store: Any, layer_id: str, touched: dict[int, _Touched], *, before: bool):
    """History rows of the touched features after (or before) the batch's entries, in chunks."""
    h = schema.history
    fids = sorted(touched)
    edge = min((x.first_entry for x in touched.values()), default=0)
    with store.read() as conn:
        for i in range(0, len(fids), _CHUNK):
            cond = h.c.id < edge if before else h.c.id > edge
            part = fids[i:i + _CHUNK]
            stmt = (sa.select(h.c.id, h.c.feature_id, h.c.last_feature_id, h.c.op, h.c.actor, h.c.at, h.c.batch_id)
                    .where(schema.feature_entries(layer_id, part), cond).order_by(h.c.id))
            for r in conn.execute(stmt):
                for fid in schema.held(r, part):
                    yield _Entry(r.id, fid, r.op, r.actor, r.at, r.batch_id)


def _later_changes(store: Any, layer_id: str, batch_id: str, touched: dict[int, _Touched],
                   neutral: set[str]) -> list[dict[str, Any]]:
    out = []
    for r in _history_after_batch(store, layer_id, touched, before=False):
        if r.batch_id == batch_id or r.batch_id in neutral or r.id < touched[r.feature_id].last_entry:
            continue
        out.append({"id": r.feature_id, "op": r.op, "actor": r.actor, "at": r.at.isoformat() if r.at else None})
    return out


def _previous_batch_ids(store: Any, layer_id: str, touched: dict[int, _Touched], neutral: set[str]) -> dict[int, str]:
    """For each feature the batch had found in place, the import that had last written it."""
    out: dict[int, str] = {}
    existed = {fid: x for fid, x in touched.items() if x.existed_before}
    for r in _history_after_batch(store, layer_id, existed, before=True):
        if r.batch_id and r.batch_id not in neutral:
            out[r.feature_id] = r.batch_id
    return out


def _created_meta(conn: sa.Connection, layer_id: str, fid: int, before_entry: int) -> dict[str, Any]:
    """When and by whom a feature was created, from its last insert entry before the batch."""
    h = schema.history
    row = conn.execute(sa.select(h.c.at, h.c.actor)
                       .where(schema.feature_entries(layer_id, [fid]), h.c.op == "insert", h.c.id < before_entry)
                       .order_by(h.c.id.desc()).limit(1)).first()
    return {"created_at": row.at, "created_by": row.actor} if row else {}
