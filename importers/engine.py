"""The import engine behind both ``geoapi import`` and ``POST /imports``.

open (readers) → map columns (mapping) → CRS frame from the first batch (crs, transforms) →
per batch: reproject, check (checks), reject duplicates → one ``store.bulk_write`` call fed
by a generator, so the whole import is one transaction. With ``on_error="abort"`` (the
default) any rejected row makes the generator raise at the end, after every row has been
checked, and the store rolls everything back: nothing is half-loaded, and the report still
lists every bad row.

Reading and checking run in a worker thread a few thousand rows ahead of the writer
(importers.prefetch). Nothing is kept per row beyond the rows in flight: codes seen for the
duplicate check are kept compactly (importers.seen), unmapped columns travel with their row.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import shapely
import sqlalchemy as sa

from geoapi.storage.assign import has_rows
from importers.archive import ArchiveLimits
from importers.checks import BatchProblems, check_codes, check_properties, code_field, conform_geometries
from importers.crs import SourceCrs, parse_crs_text, refuse_missing_crs, with_zone_prefix
from importers.errors import ImportRefusedError
from importers.mapping import FieldMapping, build_mapping
from importers.prefetch import prefetched
from importers.readers import Batch, ReadOptions, Source, XYOrder, open_source
from importers.report import ImportReport, Provenance, RejectedRow, fingerprint
from importers.seen import SeenCodes
from importers.transforms import DatumTransform, Mapper, make_mapper, parse_transform
from layers.spec import LayerSpec

Mode = Literal["append", "upsert", "replace"]
OnError = Literal["abort", "skip"]
Progress = Callable[[int, int | None], None]

# 焦作市 with a margin (the same numbers as geoapi.settings.JIAOZUO_BOUNDS); callers pass
# settings.city_bounds.
DEFAULT_CITY_BOUNDS = (112.5, 34.75, 113.75, 35.55)
_SAMPLE = 2_000
_HANDOFF = 5_000   # rows per item handed from the reading thread to the writer


@dataclass
class ImportOptions:
    layer: str
    crs: str | None = None                       # override/supply the source CRS (EPSG:4547, GCJ-02 …)
    encoding: str | None = None                  # override the detected text encoding
    transform: str | None = None                 # '+towgs84=…' or '4param:…' for Xian 1980 / Beijing 1954
    xy_order: XYOrder = "survey"                 # CSV/XLSX X/Y columns: survey = X northing
    coord_columns: tuple[str, str] | None = None  # CSV/XLSX (easting/lon, northing/lat) columns
    source_layer: str | None = None              # dataset in a zip/folder, GeoPackage layer, XLSX sheet
    mapping: dict[str, str | None] | None = None  # source column → field (None: keep in extra)
    mode: Mode = "append"
    on_error: OnError = "abort"
    dry_run: bool = False
    actor: str = "import"
    batch_id: str | None = None
    city_bounds: tuple[float, float, float, float] = DEFAULT_CITY_BOUNDS
    batch_size: int = 50_000
    limits: ArchiveLimits = field(default_factory=ArchiveLimits)

    def read_options(self) -> ReadOptions:
        return ReadOptions(encoding=self.encoding, layer=self.source_layer, xy_order=self.xy_order,
                           coord_columns=self.coord_columns, limits=self.limits)


@dataclass(frozen=True)
class Frame:
    """How source coordinates become EPSG:4490: the (fitted) CRS, the mapper, an axis swap."""

    crs: SourceCrs
    mapper: Mapper
    swapped: bool
    transform: DatumTransform | None

    def apply(self, geoms: np.ndarray) -> np.ndarray:
        if len(geoms) and (shapely.get_type_id(geoms) == 0).all() and not \
                (shapely.is_empty(geoms) | shapely.has_z(geoms)).any():
            # 2D points (most deliveries): new points from the mapped coordinates instead of a
            # clone of every geometry with its coordinates set (shapely.transform)
            xy = shapely.get_coordinates(geoms)
            x, y = (xy[:, 1], xy[:, 0]) if self.swapped else (xy[:, 0], xy[:, 1])
            return shapely.points(*self.mapper(x, y))

        def fn(coords: np.ndarray) -> np.ndarray:
            x, y = (coords[:, 1], coords[:, 0]) if self.swapped else (coords[:, 0], coords[:, 1])
            out = coords.astype("float64", copy=True)
            out[:, 0], out[:, 1] = self.mapper(x, y)   # Z (heights) is left as surveyed
            return out
        return shapely.transform(geoms, fn, include_z=None)


class _Rejected(Exception):
    """Raised inside the row stream so the store rolls the transaction back."""


def run_import(store: Any, path: Path, options: ImportOptions, *, layer_spec: LayerSpec | None = None,
               progress: Progress | None = None) -> ImportReport:
    """Import ``path`` into ``options.layer``; raises ImportRefusedError (and friends) when the
    delivery cannot be read at all, returns a report otherwise (``state`` says how it went)."""
    layer = layer_spec or _layer_from_store(store, options.layer)
    path = Path(path)
    size, sha = fingerprint(path)
    transform = parse_transform(options.transform) if options.transform else None
    report = ImportReport(layer=layer.id, mode=options.mode, on_error=options.on_error, dry_run=options.dry_run,
                          batch_id=None if options.dry_run else (options.batch_id or new_batch_id()))
    report.provenance = Provenance(file_name=path.name, file_size=size, sha256=sha,
                                   transform=transform.text if transform else None)
    with open_source(path, options.read_options()) as source:
        mapping = build_mapping(layer, source.columns, options.mapping)
        _describe_source(report, source, mapping)
        run = _Run(layer, source, mapping, options, report, transform, progress, store=store)
        run.prepare()   # reads the first batch: CRS refusals happen before any transaction opens
        if options.dry_run:
            try:
                for _ in run.rows():
                    pass
            except _Rejected:
                report.message = f"{len(report.rejected)} rows would be rejected"
            report.state = "dry_run"
            return report
        try:
            result = _write(store, layer.id, run, options, report)
        except Exception as exc:
            if not _caused_by(exc, _Rejected):
                raise
            report.state = "failed"
            report.imported = report.updated = 0
            report.message = (f"{len(report.rejected)} rows rejected; nothing was imported "
                              "(on_error=abort). Fix them or import with on_error=skip")
            return report
        _count_result(report, result, run.valid)
    return report


def _write(store: Any, layer_id: str, run: _Run, options: ImportOptions, report: ImportReport) -> Any:
    """One ``store.bulk_write`` call (one transaction) fed by the row stream, read and checked in
    a worker thread; rows are ``(props, geom, extra)``, unmapped columns going to ``extra``."""
    rows = _flatten(prefetched(run.checked(), name="geoapi-import-read"))
    try:
        return store.bulk_write(layer_id, rows, actor=options.actor, batch_id=report.batch_id,
                                mode=options.mode, src_file=run.src_file, src_crs=run.src_crs, validated=True,
                                expected_rows=run.source.count)
    finally:
        rows.close()   # a failed write stops the reading thread now, not when the generator is collected


def _flatten(lists: Iterator[list]) -> Iterator:
    try:
        for items in lists:
            yield from items
    finally:
        close = getattr(lists, "close", None)
        if close is not None:
            close()


def new_batch_id() -> str:
    return "imp-" + uuid.uuid4().hex[:16]


def _layer_from_store(store: Any, layer_id: str) -> LayerSpec:
    registry = getattr(store, "registry", None)
    spec = registry.get(layer_id) if registry is not None else None
    if spec is None:
        from geoapi.errors import LayerNotFoundError

        raise LayerNotFoundError(f"unknown layer {layer_id!r}")
    return spec


def _describe_source(report: ImportReport, source: Source, mapping: FieldMapping) -> None:
    assert report.provenance is not None
    report.provenance.source_kind = source.kind
    report.provenance.dataset = source.path.name + (f" / {source.layer}" if source.layer else "")
    report.provenance.encoding = source.encoding.as_dict() if source.encoding else None
    report.mapping = dict(mapping.columns)
    report.unmapped_columns = list(mapping.extra)
    report.notes += source.notes + mapping.notes


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, kind):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _count_result(report: ImportReport, result: Any, valid: int) -> None:
    """bulk_write may return nothing, a dict or an object with inserted/updated counts."""
    get = (lambda k: result.get(k)) if isinstance(result, dict) else (lambda k: getattr(result, k, None))
    inserted = get("inserted") if result is not None else None
    if inserted is None and result is not None:
        inserted = get("imported")
    updated = (get("updated") if result is not None else None) or 0
    report.imported = int(inserted) if inserted is not None else valid - int(updated)
    report.updated = int(updated)


class _Run:
    """The state of one import while its rows stream through."""

    def __init__(self, layer: LayerSpec, source: Source, mapping: FieldMapping, options: ImportOptions,
                 report: ImportReport, transform: DatumTransform | None, progress: Progress | None,
                 store: Any = None):
        self.layer, self.source, self.mapping, self.options = layer, source, mapping, options
        self.report, self.transform, self.progress = report, transform, progress
        # Codes already in the registry would fail the unique index mid-transaction; in append
        # mode they are rejected per row instead. Not when the layer is empty: there is nothing
        # to find, and a PostGIS load into an empty layer holds its lock (geoapi.storage.pgload)
        # that this thread's queries would wait on while the writer waits for their rows.
        self.store = store if options.mode == "append" and store is not None and \
            _layer_has_rows(store, layer.id) else None
        self.key = code_field(layer)
        self.seen = SeenCodes()
        self.frame: Frame | None = None
        self.valid = 0
        self.src_file = report.provenance.file_name if report.provenance else source.path.name
        self._batches = source.batches(options.batch_size)
        self._first: Batch | None = None

    @property
    def src_crs(self) -> str | None:
        return self.frame.crs.label if self.frame else None

    def prepare(self) -> None:
        self._first = next(self._batches, None)
        if self._first is not None:
            self.frame = resolve_frame(self.source, self._first, self.options, self.transform, self.report)
        else:
            self.report.notes.append("the file holds no rows")

    def rows(self) -> Iterator[tuple[dict[str, Any], Any, dict[str, Any] | None]]:
        """Valid rows as (props, geometry in EPSG:4490, extra); raises _Rejected at the end when aborting."""
        for rows in self.checked():
            yield from rows

    def checked(self, size: int | None = None) -> Iterator[list[tuple[dict[str, Any], Any, dict[str, Any] | None]]]:
        """``rows()`` in lists of up to ``size`` (default _HANDOFF)."""
        size = size or _HANDOFF
        abort = self.options.on_error == "abort"
        batches = self._batches if self._first is None else _chain(self._first, self._batches)
        self._first = None
        out: list = []
        for batch in batches:
            rows = self._check(batch)
            self.valid += len(rows)
            if not (abort and self.report.rejected):   # else keep checking to report every bad row;
                out += rows                             # the transaction is lost anyway
            while len(out) >= size:
                yield out[:size]
                del out[:size]
            self.report.rows_read += len(batch)
            if self.progress:
                self.progress(self.report.rows_read, self.source.count)
        if out:
            yield out
        if abort and self.report.rejected:
            raise _Rejected(f"{len(self.report.rejected)} rows rejected")

    def _check(self, batch: Batch) -> list[tuple[dict[str, Any], Any, dict[str, Any] | None]]:
        """The batch's valid rows as (props, geometry, extra); rejected rows go to the report."""
        assert self.frame is not None
        n = len(batch)
        problems = BatchProblems()
        props = {fname: batch.columns[col] for col, fname in self.mapping.columns.items()}
        blank = _blank_rows(batch)
        clean = check_properties(self.layer, props, n, problems)
        check_codes(self.layer, clean, n, problems)
        geoms = conform_geometries(self.layer, self.frame.apply(batch.geoms), self.options.city_bounds, problems)
        self.report.repaired += problems.repaired
        codes = clean.get(self.key) if self.key else None
        if codes is not None:
            self._check_duplicates(batch.start, codes, blank, problems)
        # Fields empty in the whole batch are left out of new rows (the store writes NULL for
        # them): a row's dict holds the few fields a delivery fills, not all ~45. An upsert
        # keeps them all: there an empty field replaces the stored value.
        filled = clean if self.options.mode == "upsert" else \
            {name: values for name, values in clean.items() if values.count(None) < n}
        keep = ~blank
        for i in sorted(problems.reasons):
            if blank[i]:
                continue
            keep[i] = False
            code = codes[i] if codes is not None else None
            self.report.rejected.append(RejectedRow(batch.start + i + 1, None if code is None else str(code),
                                                    tuple(problems.reasons[i])))
        self.report.skipped += int(blank.sum())
        # Built column-wise, by C-level maps: a dict per row, not a Python step per value.
        names = list(filled)
        dicts = list(map(dict, map(zip, itertools.repeat(names), zip(*filled.values(), strict=True)))) \
            if filled else [{} for _ in range(n)]
        extras = [_extra(batch, self.mapping.extra, i) for i in range(n)] if self.mapping.extra else [None] * n
        rows = list(zip(dicts, geoms.tolist(), extras, strict=True))
        return rows if keep.all() else [rows[i] for i in np.flatnonzero(keep).tolist()]

    def _check_duplicates(self, start: int, codes: list[Any], blank: np.ndarray, problems: BatchProblems) -> None:
        live = [i for i, code in enumerate(codes) if code is not None and not blank[i]]
        texts = [str(codes[i]) for i in live]
        fresh: list[str] = []
        for i, code, first in zip(live, texts, self.seen.check(texts, [start + i + 1 for i in live]), strict=True):
            if first is not None:
                problems.add(i, f"{self.key}: duplicate {code} (also in row {first})")
            else:
                fresh.append(code)
        if self.store is not None and fresh:
            existing = existing_codes(self.store, self.layer.id, self.key, fresh)
            if existing:
                for i, code in enumerate(codes):
                    if code is not None and str(code) in existing:
                        problems.add(i, f"{self.key}: {code} is already in the registry (use mode=upsert to update)")


def _layer_has_rows(store: Any, layer_id: str) -> bool:
    with store.read() as conn:
        return has_rows(conn, store, layer_id)


def existing_codes(store: Any, layer_id: str, key: str, codes: list[str]) -> set[str]:
    """Which of ``codes`` the registry already holds (chunked IN lists; index-backed)."""
    t = store.table(layer_id)
    found: set[str] = set()
    with store.read() as conn:
        for i in range(0, len(codes), 2000):
            found.update(conn.execute(sa.select(t.c[key]).where(t.c[key].in_(codes[i:i + 2000]))).scalars())
    return found


def _chain(first: Batch, rest: Iterator[Batch]) -> Iterator[Batch]:
    yield first
    yield from rest


def resolve_frame(source: Source, batch: Batch, options: ImportOptions, transform: DatumTransform | None,
                  report: ImportReport) -> Frame:
    """Decide the source CRS (given, .prj, dataset), fit zone prefixes, detect swapped axes."""
    coords = shapely.get_coordinates(batch.geoms[:_SAMPLE])
    x, y = coords[:, 0], coords[:, 1]
    if options.crs:
        src = parse_crs_text(options.crs, "given")
    elif source.crs_text:
        src = parse_crs_text(source.crs_text, "prj" if source.kind == "shapefile" else "dataset")
    elif source.kind in ("csv", "xlsx") and _looks_geographic(x, y):
        src = parse_crs_text("EPSG:4490", "assumed from longitude/latitude values")
        report.notes.append("no CRS given: longitude/latitude values taken as CGCS2000 (EPSG:4490)")
    else:
        raise refuse_missing_crs(source.path.name, x, y)
    candidates = []
    for swapped in (False, True):
        e, n = (y, x) if swapped else (x, y)
        try:
            fitted, note = with_zone_prefix(src, e)
        except ImportRefusedError:
            if swapped:
                continue
            raise
        mapper = make_mapper(fitted, transform)   # refuses Xian 1980 / Beijing 1954 without parameters
        candidates.append((_share_inside(mapper, e, n, options.city_bounds), swapped, fitted, note, mapper))
    share, swapped, fitted, note, mapper = candidates[0]
    if len(candidates) > 1 and share < 0.5 and candidates[1][0] > share:
        share, swapped, fitted, note, mapper = candidates[1]
        report.notes.append("x and y are swapped in this file (detected from the city bounds); read them swapped")
    if note:
        report.notes.append(note)
    if report.provenance is not None:
        report.provenance.crs = fitted.as_dict()
        report.provenance.axes_swapped = swapped
    return Frame(fitted, mapper, swapped, transform)


def _share_inside(mapper: Mapper, x: np.ndarray, y: np.ndarray, bounds: tuple[float, float, float, float]) -> float:
    if x.size == 0:
        return 0.0
    with np.errstate(all="ignore"):
        lon, lat = mapper(x, y)
    minx, miny, maxx, maxy = bounds
    inside = (lon >= minx) & (lon <= maxx) & (lat >= miny) & (lat <= maxy)
    return float(np.mean(inside))


def _looks_geographic(x: np.ndarray, y: np.ndarray) -> bool:
    ok = np.isfinite(x) & np.isfinite(y)
    if not ok.any():
        return False
    a, b = np.abs(x[ok]), np.abs(y[ok])
    return bool(np.all((a <= 180) & (b <= 180)))


def _is_blank(v: Any) -> bool:
    return v is None or (isinstance(v, str) and not v.strip()) or (isinstance(v, float) and math.isnan(v))


def _blank_rows(batch: Batch) -> np.ndarray:
    """Rows with no geometry and no values (trailing spreadsheet rows): skipped, not rejected."""
    blank = shapely.is_missing(batch.geoms)
    if not blank.any():
        return blank
    for values in batch.columns.values():
        blank &= np.fromiter((_is_blank(v) for v in values), dtype=bool, count=len(values))
    return blank


def _extra(batch: Batch, columns: list[str], i: int) -> dict[str, Any] | None:
    out = {}
    for col in columns:
        v = batch.columns[col][i]
        if _is_blank(v):
            continue
        out[col] = _json_safe(v)
    return out or None


def _json_safe(v: Any) -> Any:
    if isinstance(v, dt.date | dt.datetime | dt.time):
        return v.isoformat()
    if isinstance(v, bytes):
        return v.hex()
    if isinstance(v, np.generic):
        return v.item()
    return v
