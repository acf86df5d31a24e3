"""`geoapi grids …`: segments, corridors, unitgrids, assign, check."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from geoapi.errors import GeoapiError
from geoapi.settings import Settings

grids_app = typer.Typer(help="路长制路段、路段责任区、单元网格与部件归属", no_args_is_help=True)

DbOption = Annotated[str | None, typer.Option("--db", help="database URL (default: SpatiaLite in GEOAPI_DATA_DIR)")]
ROAD_CODE_FIELDS = ("road_code", "DLBM", "DLBH", "ROADCODE", "道路编码", "道路编号")
ROAD_NAME_FIELDS = ("road_name", "name", "DLMC", "ROADNAME", "NAME", "道路名称", "名称")
ROAD_GRADE_FIELDS = ("road_grade", "DLDJ", "GRADE", "道路等级")
COMMUNITY_CODE_FIELDS = ("community_code", "SQDM", "CJDM", "社区代码", "社区(村)代码", "code")
COMMUNITY_NAME_FIELDS = ("name", "SQMC", "社区名称", "名称")
GRID_CODE_FIELDS = ("grid_code", "BGCODE", "WGBM", "DYWGCODE", "单元网格", "网格编码")


class _Context:
    state: object = None  # the main CLI's state; its .settings is set by the CLI callback


_ctx = _Context()


def _store(db: str | None):
    """The Store of the main CLI's settings (or ``--db``), upgraded, with the enricher on."""
    from geoapi.grids.assign import install
    from geoapi.storage import Store

    base = getattr(_ctx.state, "settings", None)
    values = base.model_dump() if base is not None else {}
    if db:
        values["database_url"] = db
    store = Store.open(Settings(**values))
    store.upgrade()
    install(store)
    return store


def _fail(exc: GeoapiError) -> None:
    typer.secho(exc.detail, fg="red", err=True)
    for e in exc.errors[:20]:
        typer.secho(f"  {e}", fg="red", err=True)
    raise typer.Exit(2)


def _echo_counts(what: str, counts: dict) -> None:
    typer.echo(f"{what}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))


@grids_app.command("segments")
def segments_cmd(
    roads: Annotated[Path | None, typer.Option("--roads", help="road centrelines (shp/gpkg/geojson); "
                                               "default: re-cut the stored segments")] = None,
    max_length: Annotated[float, typer.Option(min=50, help="longest segment, m")] = 500.0,
    code_field: Annotated[str | None, typer.Option(help="road code field (default: DLBM, road_code …)")] = None,
    name_field: Annotated[str | None, typer.Option(help="road name field (default: DLMC, name …)")] = None,
    grade_field: Annotated[str | None, typer.Option(help="road grade field (default: DLDJ …)")] = None,
    encoding: Annotated[str | None, typer.Option(help="DBF encoding when there is no .cpg (GBK …)")] = None,
    db: DbOption = None,
) -> None:
    """Cut centrelines into 路长制 segments at junctions and every --max-length m (idempotent)."""
    from geoapi.grids.build import stored_roads, write_segments
    from geoapi.grids.readers import pick_field, read_file
    from geoapi.grids.segments import RoadLine

    store = _store(db)
    try:
        if roads is None:
            lines = stored_roads(store)
        else:
            rows = read_file(roads, encoding=encoding)
            names = list(rows[0][0]) if rows else []
            nf = pick_field(names, name_field, ROAD_NAME_FIELDS, "road name")
            cf = pick_field(names, code_field, ROAD_CODE_FIELDS, "road code", required=False)
            gf = pick_field(names, grade_field, ROAD_GRADE_FIELDS, "road grade", required=False)
            lines = [RoadLine(str(p.get(cf) or p[nf]) if cf else str(p[nf]), str(p[nf]), p.get(gf) if gf else None, g)
                     for p, g in rows if g is not None and p.get(nf)]
        _echo_counts("road_segments", write_segments(store, lines, actor="cli:grids", max_length_m=max_length))
    except GeoapiError as exc:
        _fail(exc)
    finally:
        store.close()


@grids_app.command("corridors")
def corridors_cmd(
    frontage: Annotated[float, typer.Option(min=1, max=500, help="frontage for segments without frontage_m, m")] = 30.0,
    step: Annotated[float, typer.Option(min=0.5, max=50, help="centreline densification, m")] = 5.0,
    db: DbOption = None,
) -> None:
    """Build 路段责任区 (road_corridors) from the stored segments (idempotent)."""
    from geoapi.grids.build import write_corridors

    store = _store(db)
    try:
        _echo_counts("road_corridors", write_corridors(store, actor="cli:grids", default_frontage_m=frontage,
                                                       step_m=step))
    except GeoapiError as exc:
        _fail(exc)
    finally:
        store.close()


@grids_app.command("unitgrids")
def unitgrids_cmd(
    district: Annotated[str, typer.Option(help="6-digit 区划代码, e.g. 410802")],
    communities: Annotated[Path | None, typer.Option(help="社区 boundaries with 12-digit codes; default: "
                                                     "dissolved from the district's stored grids")] = None,
    community_field: Annotated[str | None, typer.Option(help="社区 code field (default: SQDM …)")] = None,
    target_m2: Annotated[float, typer.Option(min=100, help="cell size to aim for, m²")] = 10_000.0,
    encoding: Annotated[str | None, typer.Option(help="DBF encoding when there is no .cpg")] = None,
    db: DbOption = None,
) -> None:
    """Generate 单元网格 for a district: ~10,000 m² cells bounded by roads, coded W→E, N→S."""
    from geoapi.grids.build import write_unit_grids
    from geoapi.grids.readers import pick_field, read_file
    from geoapi.grids.unitgrids import Community, GridGenerationError

    if not (len(district) == 6 and district.isdigit()):
        typer.secho(f"--district must be a 6-digit 区划代码, not {district!r}", fg="red", err=True)
        raise typer.Exit(2)
    store = _store(db)
    try:
        comms = None
        if communities is not None:
            rows = read_file(communities, encoding=encoding)
            names = list(rows[0][0]) if rows else []
            cf = pick_field(names, community_field, COMMUNITY_CODE_FIELDS, "社区 code")
            nf = pick_field(names, None, COMMUNITY_NAME_FIELDS, "社区 name", required=False)
            comms = [Community(str(p[cf]), g, p.get(nf) if nf else None) for p, g in rows
                     if str(p.get(cf) or "").startswith(district)]
        _echo_counts("unit_grids", write_unit_grids(store, district, actor="cli:grids", communities=comms,
                                                    target_m2=target_m2))
    except GridGenerationError as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(2) from exc
    except GeoapiError as exc:
        _fail(exc)
    finally:
        store.close()


@grids_app.command("assign")
def assign_cmd(
    layer: Annotated[list[str] | None, typer.Option(help="only these layers (repeatable)")] = None,
    db: DbOption = None,
) -> None:
    """Fill grid_code and road_segment of every stored asset (bulk)."""
    from geoapi.grids.assign import assign_all

    store = _store(db)
    try:
        for layer_id, counts in assign_all(store, layer or None).items():
            _echo_counts(layer_id, counts)
    except GeoapiError as exc:
        _fail(exc)
    finally:
        store.close()


@grids_app.command("check")
def check_cmd(
    file: Annotated[Path | None, typer.Argument(help="unit grids to check; default: the stored unit_grids")] = None,
    code_field: Annotated[str | None, typer.Option(help="grid code field (default: BGCODE, WGBM …)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
    encoding: Annotated[str | None, typer.Option(help="DBF encoding when there is no .cpg")] = None,
    db: DbOption = None,
) -> None:
    """Check unit grids for malformed codes, self-intersections, overlaps and gaps."""
    from geoapi.grids.build import all_features
    from geoapi.grids.check import check_unit_grids
    from geoapi.grids.readers import pick_field, read_file

    try:
        if file is not None:
            rows = read_file(file, encoding=encoding)
            cf = pick_field(list(rows[0][0]) if rows else [], code_field, GRID_CODE_FIELDS, "grid code")
            rows = [({"grid_code": p.get(cf)}, g) for p, g in rows]
        else:
            store = _store(db)
            rows = [(f.props, f.geometry) for f in all_features(store, "unit_grids")]
            store.close()
    except GeoapiError as exc:
        _fail(exc)
    report = check_unit_grids(rows)
    if as_json:
        typer.echo(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
    else:
        for p in report.problems:
            typer.secho(f"{p.severity}: {p.message}", fg="red" if p.severity == "error" else "yellow")
        typer.echo(f"{report.checked} grids checked: {len(report.errors)} errors, "
                   f"{len(report.problems) - len(report.errors)} warnings")
    raise typer.Exit(0 if report.ok else 1)


def register(app: typer.Typer, state) -> None:
    """Called by geoapi.cli: adds `geoapi grids` (``state.settings`` is read when a command runs)."""
    _ctx.state = state
    app.add_typer(grids_app, name="grids")
