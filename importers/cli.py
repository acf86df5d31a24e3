"""``geoapi import``, ``geoapi imports list|show|rollback`` and ``geoapi export`` (registered by geoapi.cli)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

DbOption = Annotated[str | None, typer.Option("--db", help="database URL (default: SpatiaLite in GEOAPI_DATA_DIR)")]
_SHOW_REJECTED = 10


def register(app: typer.Typer, state: Any) -> None:
    imports_app = typer.Typer(help="import batches: list, show, roll back", no_args_is_help=True)
    app.add_typer(imports_app, name="imports")

    @app.command("import")
    def import_cmd(
        path: Annotated[Path, typer.Argument(help="zip or folder of shapefile parts, .shp, .gpkg, .geojson, .csv, .xlsx")],
        layer: Annotated[str, typer.Option(help="target layer, e.g. manholes")],
        crs: Annotated[str | None, typer.Option(help="source CRS when the .prj is missing or wrong: EPSG:4547, GCJ-02 …")] = None,
        encoding: Annotated[str | None, typer.Option(help="DBF/CSV text encoding, e.g. gbk (default: detected)")] = None,
        transform: Annotated[str | None, typer.Option(help="Xian 1980 / Beijing 1954 → CGCS2000: '+towgs84=…' or '4param:…'")] = None,
        xy_order: Annotated[str, typer.Option(help="CSV/XLSX X/Y: survey (X = northing) or gis")] = "survey",
        source_layer: Annotated[str | None, typer.Option(help="dataset inside a zip/folder, GeoPackage layer, sheet")] = None,
        mapping: Annotated[str | None, typer.Option(help='JSON {"source column": "field" or null}')] = None,
        mode: Annotated[str, typer.Option(help="append | upsert (update by code) | replace")] = "append",
        on_error: Annotated[str, typer.Option(help="abort (all or nothing) | skip (load the good rows)")] = "abort",
        dry_run: Annotated[bool, typer.Option("--dry-run", help="check and report, write nothing")] = False,
        actor: Annotated[str | None, typer.Option(help="who is importing (recorded in history)")] = None,
        report_csv: Annotated[Path | None, typer.Option("--report-csv", help="where to write the rejected rows")] = None,
        db: DbOption = None,
    ) -> None:
        """Import a survey delivery into a layer, with a report (exit 1 when refused or failed)."""
        from geoapi.errors import GeoapiError
        from importers import ImportOptions
        from importers.batches import run_recorded_import

        for name, value, allowed in (("--mode", mode, ("append", "upsert", "replace")),
                                     ("--on-error", on_error, ("abort", "skip")), ("--xy-order", xy_order, ("survey", "gis"))):
            if value not in allowed:
                _fail(f"{name} must be one of {', '.join(allowed)}; got {value!r}", 2)
        try:
            parsed_mapping = json.loads(mapping) if mapping else None
        except json.JSONDecodeError as exc:
            _fail(f"--mapping is not valid JSON: {exc}", 2)
        settings = _settings(state, db)
        store = _open_store(settings)
        try:
            store.layer(layer)
            options = ImportOptions(layer=layer, crs=crs, encoding=encoding, transform=transform, xy_order=xy_order,  # type: ignore[arg-type]
                                    source_layer=source_layer, mapping=parsed_mapping, mode=mode, on_error=on_error,  # type: ignore[arg-type]
                                    dry_run=dry_run, actor=actor or "cli", city_bounds=tuple(settings.city_bounds))
            with _progress_bar(path.name) as progress:
                report = run_recorded_import(store, path, options, progress=progress)
        except GeoapiError as exc:
            _fail(f"import refused: {exc.detail}", 1)
        finally:
            store.close()
        if report.rejected:
            report_csv = report_csv or Path(f"{options.batch_id}-rejected.csv")
            report_csv.write_text(report.rejected_csv(), encoding="utf-8")
        _print_report(report, options.batch_id, report_csv)
        if not report.ok:
            raise typer.Exit(1)

    @imports_app.command("list")
    def imports_list(layer: Annotated[str | None, typer.Option(help="only this layer")] = None,
                     limit: Annotated[int, typer.Option(min=1)] = 50, db: DbOption = None) -> None:
        """Import batches, newest first."""
        from importers.batches import list_batches

        store = _open_store(_settings(state, db))
        rows = list_batches(store, layer=layer, limit=limit)
        store.close()
        if not rows:
            typer.echo("no imports yet")
        for b in rows:
            typer.echo(f"{b['id']}  {b['created_at']:%Y-%m-%d %H:%M}  {b['layer']:<16} {b['state']:<12} "
                       f"{b['actor']:<12} {b['file_name'] or ''}")

    @imports_app.command("show")
    def imports_show(batch_id: str, db: DbOption = None) -> None:
        """One batch's record and report as JSON."""
        from geoapi.errors import GeoapiError
        from importers.batches import get_batch

        store = _open_store(_settings(state, db))
        try:
            batch = get_batch(store, batch_id)
        except GeoapiError as exc:
            _fail(exc.detail, 1)
        finally:
            store.close()
        typer.echo(json.dumps(batch, ensure_ascii=False, indent=2, default=str))

    @imports_app.command("rollback")
    def imports_rollback(batch_id: str, actor: Annotated[str | None, typer.Option()] = None, db: DbOption = None) -> None:
        """Undo an import: delete what it inserted, restore what it updated or replaced."""
        from geoapi.errors import GeoapiError
        from importers.batches import rollback_batch

        store = _open_store(_settings(state, db))
        try:
            r = rollback_batch(store, batch_id, actor=actor or "cli")
        except GeoapiError as exc:
            _fail(exc.detail, 1)
        finally:
            store.close()
        typer.echo(f"rolled back {batch_id} ({r.layer}): {r.deleted} deleted, {r.restored} restored, "
                   f"{r.reinserted} re-inserted")

    @app.command("export")
    def export_cmd(
        layer: Annotated[str, typer.Argument(help="layer id, e.g. manholes")],
        out: Annotated[Path, typer.Argument(help="output file (.geojson, .gpkg, .zip for shapefile, .csv)")],
        format: Annotated[str | None, typer.Option("--format", help="geojson | gpkg | shp | csv (default: from OUT)")] = None,
        crs: Annotated[str | None, typer.Option(help="output CRS: EPSG:4490 (default), EPSG:4547, GCJ-02 …")] = None,
        encoding: Annotated[str | None, typer.Option(help="shapefile/CSV encoding, e.g. gbk for old desktop GIS")] = None,
        db: DbOption = None,
    ) -> None:
        """Export a layer for desktop GIS or a round trip."""
        from geoapi.errors import GeoapiError
        from importers.export import export_layer

        fmt = format or _format_from_suffix(out)
        if fmt is None:
            _fail("cannot tell the format from the file name: pass --format geojson|gpkg|shp|csv", 2)
        store = _open_store(_settings(state, db))
        try:
            result = export_layer(store, layer, out, fmt, crs=crs, encoding=encoding)
        except GeoapiError as exc:
            _fail(exc.detail, 1)
        finally:
            store.close()
        typer.echo(f"wrote {result.count} features of {layer} to {result.path} ({fmt}, {result.crs})")


# geoapi.cli has the same two helpers, but importing it would pull in geoapi.api (import-linter).
def _settings(state: Any, db: str | None) -> Any:
    return state.settings.model_copy(update={"database_url": db}) if db else state.settings


def _open_store(settings: Any) -> Any:
    from geoapi.storage import Store
    from layers import LayerFileError

    try:
        store = Store.open(settings)
    except LayerFileError as exc:
        _fail(str(exc), 2)
    for line in store.upgrade():
        typer.echo(f"schema: {line}", err=True)
    return store


def _fail(message: str, code: int = 1) -> NoReturn:
    typer.secho(message, fg="red", err=True)
    raise typer.Exit(code)


def _format_from_suffix(out: Path) -> str | None:
    return {".geojson": "geojson", ".json": "geojson", ".gpkg": "gpkg", ".zip": "shp", ".shp": "shp",
            ".csv": "csv"}.get(out.suffix.lower())


class _progress_bar:
    """A rich progress bar fed by the engine's progress(done, total) callback."""

    def __init__(self, label: str):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                  TimeElapsedColumn(), transient=True)
        self._task = self._progress.add_task(f"checking {label}", total=None)

    def __enter__(self):
        self._progress.start()
        return self

    def __call__(self, done: int, total: int | None) -> None:
        self._progress.update(self._task, completed=done, total=total)

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()


def _print_report(report: Any, batch_id: str | None, csv_path: Path | None) -> None:
    p = report.provenance
    colour = "green" if report.state == "done" else ("yellow" if report.state == "dry_run" else "red")
    typer.secho(f"import {batch_id}: {report.state}" + (f" — {report.message}" if report.message else ""), fg=colour)
    typer.echo(f"  rows read {report.rows_read}, imported {report.imported}, updated {report.updated}, "
               f"skipped {report.skipped}, repaired {report.repaired}, rejected {len(report.rejected)}")
    if p is not None:
        if p.encoding:
            typer.echo(f"  encoding: {p.encoding.get('encoding')} ({p.encoding.get('reason')})")
        if p.crs:
            typer.echo(f"  CRS: {p.crs.get('crs') or p.crs.get('label')} ({p.crs.get('reason')})"
                       + (", axes swapped" if p.axes_swapped else ""))
        if p.transform:
            typer.echo(f"  transform: {p.transform}")
        typer.echo(f"  file: {p.file_name} ({p.file_size:,} bytes, sha256 {p.sha256[:12]}…)")
    if report.unmapped_columns:
        typer.echo(f"  kept in extra (no matching field): {', '.join(report.unmapped_columns)}")
    for note in report.notes:
        typer.echo(f"  note: {note}")
    for r in report.rejected[:_SHOW_REJECTED]:
        typer.echo(f"  row {r.row}" + (f" [{r.code}]" if r.code else "") + ": " + "; ".join(r.reasons))
    if len(report.rejected) > _SHOW_REJECTED:
        typer.echo(f"  … {len(report.rejected) - _SHOW_REJECTED} more")
    if csv_path is not None:
        typer.echo(f"  rejected rows: {csv_path}")
