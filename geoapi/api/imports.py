"""Imports over HTTP: upload a survey delivery, watch it run, download its report, roll it back.

The engine is ``importers`` (docs/imports.md); this module parses the request, hands the upload
to the background worker (``importers.jobs``) and answers from the batch record.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
import threading
import uuid
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query, Request, Response

from geoapi.api.deps import EditorDep, ReaderDep, SettingsDep, StoreDep
from geoapi.api.features import base_url, json_response
from geoapi.api.uploads import receive_upload
from geoapi.errors import BadRequestError
from importers import ImportOptions
from importers.archive import check_zip
from importers.batches import get_batch, list_batches, rejected_csv, rollback_batch
from importers.crs import parse_crs_text
from importers.jobs import ImportJobs
from importers.transforms import parse_transform
from layers import LayerSpec

router = APIRouter(tags=["Imports 数据导入"])

_CHOICES = {"mode": ("append", "upsert", "replace"), "on_error": ("abort", "skip"), "xy_order": ("survey", "gis")}
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")
_jobs_lock = threading.Lock()
_DOWNLOAD_PAGE = 5000


def jobs(request: Request) -> ImportJobs:
    app = request.app
    with _jobs_lock:
        if getattr(app.state, "import_jobs", None) is None:
            app.state.import_jobs = ImportJobs(app.state.store)
        return app.state.import_jobs


def shutdown(app: FastAPI) -> None:
    runner = getattr(app.state, "import_jobs", None)
    if runner is not None:
        runner.shutdown()


def parse_options(fields: dict[str, str], layer: LayerSpec, *, actor: str, city_bounds) -> ImportOptions:
    """Form fields → ImportOptions; every bad value is a 400 (or 422 for an unreadable CRS/transform)."""
    for name, allowed in _CHOICES.items():
        if fields.get(name, allowed[0]) not in allowed:
            raise BadRequestError(f"{name} must be one of {', '.join(allowed)}; got {fields[name]!r}")
    dry = fields.get("dry_run", "").strip().lower()
    if dry not in _TRUE + _FALSE:
        raise BadRequestError(f"dry_run must be true or false; got {fields['dry_run']!r}")
    crs = fields.get("crs") or None
    transform = fields.get("transform") or None
    if crs:
        parse_crs_text(crs, "given")          # 422 now rather than a failed job later
    if transform:
        parse_transform(transform)
    return ImportOptions(layer=layer.id, crs=crs, encoding=fields.get("encoding") or None, transform=transform,
                         xy_order=fields.get("xy_order") or "survey",  # type: ignore[arg-type]
                         source_layer=fields.get("source_layer") or None,
                         mapping=_parse_mapping(fields.get("mapping"), layer),
                         mode=fields.get("mode") or "append", on_error=fields.get("on_error") or "abort",  # type: ignore[arg-type]
                         dry_run=dry in _TRUE, actor=actor, city_bounds=tuple(city_bounds))


def _parse_mapping(text: str | None, layer: LayerSpec) -> dict[str, str | None] | None:
    if not text or not text.strip():
        return None
    try:
        mapping = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadRequestError(f"mapping is not valid JSON: {exc}") from exc
    if not isinstance(mapping, dict) or not all(isinstance(k, str) and (v is None or isinstance(v, str))
                                                for k, v in mapping.items()):
        raise BadRequestError('mapping must be a JSON object {"source column": "field" or null}')
    unknown = sorted(v for v in mapping.values() if v is not None and layer.field(v) is None)
    if unknown:
        raise BadRequestError(f"mapping names fields {layer.id} does not have: {', '.join(unknown)}")
    return mapping


def _links(request: Request, batch_id: str) -> list[dict[str, str]]:
    base = f"{base_url(request)}/imports/{batch_id}"
    return [{"href": base, "rel": "self", "type": "application/json"},
            {"href": f"{base}/report.csv", "rel": "describedby", "type": "text/csv", "title": "rejected rows"},
            {"href": f"{base}/rollback", "rel": "rollback", "type": "application/json", "title": "POST to undo"}]


def _batch_body(request: Request, batch: dict[str, Any], runner: ImportJobs) -> dict[str, Any]:
    job = runner.get(batch["id"])
    state = batch["state"]
    if job is not None and state in ("queued", "running"):
        state = job.state if job.state in ("queued", "running") else state
    percent = job.percent if job is not None and state == job.state else (
        100.0 if state not in ("queued", "running") else None)
    return {**batch, "state": state, "percent": percent, "links": _links(request, batch["id"])}


@router.post("/imports", status_code=202, summary="Upload a survey delivery (zip, GeoPackage, GeoJSON, CSV, XLSX)")
async def create_import(request: Request, store: StoreDep, settings: SettingsDep, who: EditorDep):
    folder = Path(settings.data_dir) / "uploads" / uuid.uuid4().hex
    try:
        upload = await receive_upload(request, folder, file_field="file", max_bytes=settings.upload_max_bytes)
        if not upload.fields.get("layer"):
            raise BadRequestError("the form field 'layer' is required (e.g. manholes)")
        layer = store.layer(upload.fields["layer"])
        options = parse_options(upload.fields, layer, actor=who.actor, city_bounds=settings.city_bounds)
        assert upload.file is not None and upload.file_name is not None
        if upload.file.suffix.lower() == ".zip":
            check_zip(upload.file, options.limits)   # `..` entries, zip bombs: 400/413 now, not later
        job = jobs(request).submit(upload.file, options, file_name=upload.file_name, cleanup=folder)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    body = {"id": job.id, "state": job.state, "percent": job.percent, "links": _links(request, job.id)}
    return json_response(body, status=202, headers={"Location": f"{base_url(request)}/imports/{job.id}"})


@router.get("/imports", summary="Import batches, newest first")
def list_imports(request: Request, store: StoreDep, _: ReaderDep,
                 layer: Annotated[str | None, Query(description="only this layer's batches")] = None,
                 limit: Annotated[int, Query(ge=1, le=1000)] = 100):
    if layer:
        store.layer(layer)
    runner = jobs(request)
    return json_response({"imports": [_batch_body(request, b, runner) for b in list_batches(store, layer=layer,
                                                                                            limit=limit)]})


@router.get("/imports/{batch_id}", summary="State, percent done and report of one import")
def get_import(request: Request, batch_id: str, store: StoreDep, _: ReaderDep):
    return json_response(_batch_body(request, get_batch(store, batch_id), jobs(request)))


@router.get("/imports/{batch_id}/report.csv", summary="Rejected rows as CSV (UTF-8 with BOM for Excel)")
def import_report_csv(batch_id: str, store: StoreDep, _: ReaderDep):
    text = rejected_csv(get_batch(store, batch_id))
    return Response(text.encode("utf-8"), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{batch_id}-rejected.csv"'})


@router.post("/imports/{batch_id}/rollback", summary="Undo an import (refused if later edits touched its rows)")
def rollback_import(request: Request, batch_id: str, store: StoreDep, who: EditorDep):
    result = rollback_batch(store, batch_id, actor=who.actor)
    return json_response({"id": batch_id, "state": "rolled_back", **result.as_dict(),
                          "links": _links(request, batch_id)})


# -- downloads: GET /collections/{layer}/items?f=gpkg|shp|csv|geojson (features.list_items) ---------

def items_download(store: StoreDep, layer: LayerSpec, req: Any, fmt: str, out_crs: Any) -> Response:
    """Every feature matching the items request (all pages) as one file in ``fmt``."""
    from starlette.background import BackgroundTask
    from starlette.responses import FileResponse

    from geoapi.services.items import find_items
    from importers.export import MEDIA_TYPES, SUFFIXES, export_layer

    def chunks():
        offset = 0
        while True:
            q = dataclasses.replace(req.query, limit=_DOWNLOAD_PAGE, offset=offset, count=False)
            page = find_items(store, layer, dataclasses.replace(req, query=q))
            if page.features:
                yield page.features
            if len(page.features) < _DOWNLOAD_PAGE:
                return
            offset += _DOWNLOAD_PAGE

    crs = "EPSG:4326" if out_crs.epsg is None else f"EPSG:{out_crs.epsg}"
    tmp = Path(tempfile.mkdtemp(prefix="geoapi-download-"))
    name = f"{layer.id}{SUFFIXES[fmt]}"
    try:
        export_layer(store, layer.id, tmp / name, fmt, crs=crs, chunks=chunks())
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return FileResponse(tmp / name, media_type=MEDIA_TYPES[fmt], filename=name,
                        background=BackgroundTask(shutil.rmtree, tmp, ignore_errors=True))
