"""The `geoapi` command: serve, demo, db, keys, layers (and import/export/tiles/grids when present)."""

from __future__ import annotations

import importlib
import logging
import socket
import sys
from pathlib import Path
from typing import Annotated
from urllib.parse import urlparse

import typer

from geoapi.settings import Settings

app = typer.Typer(help="geoapi — 城市管理部件资产库与空间数据服务", no_args_is_help=True,
                  pretty_exceptions_show_locals=False)
db_app = typer.Typer(help="database schema", no_args_is_help=True)
keys_app = typer.Typer(help="API keys (roles: viewer, dispatcher, editor, admin)", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(keys_app, name="keys")

DbOption = Annotated[str | None, typer.Option("--db", help="database URL (default: SpatiaLite in GEOAPI_DATA_DIR)")]


class State:
    settings: Settings


state = State()


@app.callback()
def main_callback(
    data_dir: Annotated[Path | None, typer.Option(help="data directory (GEOAPI_DATA_DIR)")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if not verbose:
        logging.getLogger("alembic").setLevel(logging.WARNING)
    overrides = {"data_dir": data_dir} if data_dir else {}
    try:
        state.settings = Settings(**overrides)
    except Exception as exc:  # pydantic ValidationError: say which variable is wrong
        typer.secho(f"invalid settings: {exc}", fg="red", err=True)
        raise typer.Exit(2) from exc


def settings_with(db: str | None = None, **kw) -> Settings:
    values = state.settings.model_dump()
    if db:
        values["database_url"] = db
    values.update({k: v for k, v in kw.items() if v is not None})
    return Settings(**values)


def open_store(settings: Settings, upgrade: bool = True):
    from geoapi.storage import Store
    from layers import LayerFileError

    try:
        store = Store.open(settings)
    except LayerFileError as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(2) from exc
    if upgrade:
        for line in store.upgrade():
            typer.echo(f"schema: {line}")
    from geoapi.grids.assign import install as install_grid_assignment

    install_grid_assignment(store)  # grid_code / road_segment on every write, as in the API
    return store


def fail(message: str, code: int = 1):
    typer.secho(message, fg="red", err=True)
    raise typer.Exit(code)


# -- db ---------------------------------------------------------------------------------------
@db_app.command("upgrade")
def db_upgrade(db: DbOption = None) -> None:
    """Create or migrate the schema (core tables by alembic, layer tables from the layer files)."""
    store = open_store(settings_with(db), upgrade=False)
    done = store.upgrade()
    typer.echo("\n".join(done) if done else "schema is up to date")
    store.close()


@db_app.command("optimize")
def db_optimize(
    layer: Annotated[list[str] | None, typer.Option(help="a layer id (repeat for several; default: all)")] = None,
    db: DbOption = None,
) -> None:
    """After a large import: rewrite layer tables in spatial order (PostGIS CLUSTER on the
    spatial index; each table is locked while it is rewritten) and refresh planner statistics."""
    from geoapi.errors import GeoapiError
    from geoapi.storage.maintenance import optimize

    store = open_store(settings_with(db))

    def report(o) -> None:
        what = "rewritten in spatial order, statistics" if o.clustered else "statistics"
        typer.echo(f"{o.layer:22s} {o.rows:>10,} rows  {what}  ({o.seconds:.1f} s)")

    try:
        optimize(store, layer, progress=report)
    except GeoapiError as exc:
        fail(str(exc), 2)
    finally:
        store.close()


# -- keys -------------------------------------------------------------------------------------
@keys_app.command("create")
def keys_create(
    role: Annotated[str, typer.Option(help="viewer | dispatcher | editor | admin")],
    name: Annotated[str | None, typer.Option(help="who holds it (recorded in history)")] = None,
    db: DbOption = None,
) -> None:
    """Create a key and print it once (only a digest is stored)."""
    from geoapi.auth import create_key
    from geoapi.errors import GeoapiError

    store = open_store(settings_with(db))
    try:
        key = create_key(store.engine, role, name)
    except GeoapiError as exc:
        fail(exc.detail, 2)
    typer.echo(key)
    typer.echo(f"role {role}; keep it now — it cannot be shown again", err=True)


@keys_app.command("list")
def keys_list(db: DbOption = None) -> None:
    from geoapi.auth import list_keys

    store = open_store(settings_with(db))
    for k in list_keys(store.engine):
        state_ = f"revoked {k['revoked_at']:%Y-%m-%d}" if k["revoked_at"] else "active"
        typer.echo(f"{k['key_id']}  {k['role']:<10} {k['name'] or '':<20} {k['created_at']:%Y-%m-%d %H:%M}  {state_}")


@keys_app.command("revoke")
def keys_revoke(key_id: str, db: DbOption = None) -> None:
    from geoapi.auth import revoke_key

    store = open_store(settings_with(db))
    if not revoke_key(store.engine, key_id):
        fail(f"no active key {key_id}")
    typer.echo(f"revoked {key_id}")


# -- layers -----------------------------------------------------------------------------------
@app.command("layers")
def layers_cmd() -> None:
    """Validate and list the layer files (built-in and GEOAPI_LAYERS_DIR)."""
    from layers import LayerFileError, load_registry

    try:
        registry = load_registry(state.settings.layers_dir)
    except LayerFileError as exc:
        fail(str(exc), 2)
    for layer in registry:
        ident = f"{layer.identifier.class_code}" if layer.identifier else "--"
        typer.echo(f"{layer.id:<20} {layer.title:<12} {layer.geometry:<16} 大类 {ident:<3} "
                   f"{len(layer.fields):>3} fields  {layer.source}")


# -- serve / demo -----------------------------------------------------------------------------
def _port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _broker_answers(url: str) -> bool:
    u = urlparse(url)
    try:
        with socket.create_connection((u.hostname or "127.0.0.1", u.port or 1883), timeout=0.5):
            return True
    except OSError:
        return False


def run_server(settings: Settings, *, workers: int = 1) -> None:
    import uvicorn

    from geoapi.api.app import create_app

    if not _port_free(settings.host, settings.port):
        fail(f"port {settings.port} on {settings.host} is in use: stop the other server or pass --port", 1)
    base = settings.public_url or f"http://{settings.host}:{settings.port}"
    typer.secho(f"\n  窨井盖监管一张图: {base}/map\n  API: {base}/docs   OGC: {base}/collections\n", fg="green")
    if workers > 1:
        uvicorn.run("geoapi.api.app:create_app", factory=True, host=settings.host, port=settings.port,
                    workers=workers, log_level=settings.log_level)
    else:
        uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level=settings.log_level)


@app.command("serve")
def serve(
    host: Annotated[str | None, typer.Option()] = None,
    port: Annotated[int | None, typer.Option()] = None,
    workers: Annotated[int, typer.Option(help="uvicorn worker processes (settings from GEOAPI_* env)")] = 1,
    db: DbOption = None,
) -> None:
    """Serve the API and the map."""
    settings = settings_with(db, host=host, port=port)
    open_store(settings).close()  # fail early, and create/upgrade the schema once
    run_server(settings, workers=workers)


@app.command("demo")
def demo(
    db: DbOption = None,
    port: Annotated[int | None, typer.Option(help="HTTP port (default 8000)")] = None,
    scale: Annotated[int, typer.Option(min=100, max=1_000_000, help="number of manholes")] = 20_000,
    seed: Annotated[int, typer.Option(help="random seed (same seed, same data)")] = 42,
    force: Annotated[bool, typer.Option(help="reload even if this demo is already loaded")] = False,
    serve_: Annotated[bool, typer.Option("--serve/--no-serve", help="start the server after loading")] = True,
) -> None:
    """Load the 焦作 demo (idempotent) and serve it, printing the map URL."""
    from geoapi.demo.keys import demo_key
    from geoapi.demo.load import load_demo

    settings = settings_with(db, port=port)
    if settings.mqtt_url is None and _broker_answers("mqtt://127.0.0.1:1883"):
        settings = settings_with(db, port=port, mqtt_url="mqtt://127.0.0.1:1883")
        typer.echo("MQTT broker found at 127.0.0.1:1883: smart-cover telemetry on topic " + settings.mqtt_topic)
    if serve_ and not _port_free(settings.host, settings.port):
        fail(f"port {settings.port} is in use: stop the other server or run `geoapi demo --port 8001`")
    store = open_store(settings)
    load_demo(store, scale=scale, seed=seed, force=force, echo=typer.echo)
    key = demo_key(store, settings.data_dir)
    typer.echo(f"demo editor key (paste it into the map's 登录): {key}")
    store.close()
    if serve_:
        run_server(settings)


@app.command("export-tiles")
def export_tiles(
    out: Annotated[Path, typer.Argument(help="the .pmtiles file to write")],
    layers: Annotated[str, typer.Option(help="comma-separated layer ids")] = "manholes,smart_covers,pipes,road_segments",
    district: Annotated[str | None, typer.Option(help="6-digit admin code, e.g. 410802: its extent")] = None,
    bbox: Annotated[str | None, typer.Option(help="minlon,minlat,maxlon,maxlat instead of a district")] = None,
    minzoom: Annotated[int, typer.Option(min=0, max=22)] = 12,
    maxzoom: Annotated[int, typer.Option(min=0, max=22)] = 16,
    db: DbOption = None,
) -> None:
    """Write vector tiles of an area to a PMTiles file for field crews (offline maps)."""
    from geoapi.api.params import parse_bbox
    from geoapi.errors import GeoapiError
    from geoapi.services.tile_export import export_pmtiles
    from geoapi.storage import FeatureQuery

    store = open_store(settings_with(db))
    try:
        if district:
            found = store.query("districts", FeatureQuery(filters={"admin_code": [district]}, limit=1)).features
            if not found:
                fail(f"no district with admin code {district} (see GET /collections/districts/items)", 2)
            bounds = found[0].geometry.bounds
        elif bbox:
            bounds = parse_bbox(bbox)
        else:
            bounds = store.bounds
        stats = export_pmtiles(store, [x for x in layers.split(",") if x], bounds, minzoom, maxzoom, out)
    except (GeoapiError, ValueError, LookupError) as exc:
        fail(getattr(exc, "detail", None) or str(exc), 2)
    typer.echo(f"{out}: {stats['tiles']:,} tiles ({stats['empty']:,} empty skipped), {stats['bytes'] / 1e6:.1f} MB")


# Commands contributed by other packages, when present: (module, attribute, name).
_SUBCOMMANDS = (
    ("importers.cli", "register"),
    ("tiles.cli", "register"),
    ("geoapi.grids.cli", "register"),
    ("geoapi.telemetry.cli", "register"),
)


def _register_subcommands() -> None:
    for module, attr in _SUBCOMMANDS:
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name and module.startswith(exc.name):
                continue
            raise
        getattr(mod, attr)(app, state)


def main() -> None:
    _register_subcommands()
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
