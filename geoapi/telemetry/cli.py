"""`geoapi fleet`: the database's smart covers (the demo's) as a simulated fleet publishing over
MQTT or HTTP to a running server, for demos (geoapi/telemetry/simulate.py)."""

from __future__ import annotations

from typing import Annotated

import typer

from geoapi.settings import Settings

DbOption = Annotated[str | None, typer.Option("--db", help="database URL (default: SpatiaLite in GEOAPI_DATA_DIR)")]


class _Context:
    state: object = None  # the main CLI's state; its .settings is set by the CLI callback


_ctx = _Context()


def _fail(message: str, code: int = 2) -> None:
    typer.secho(message, fg="red", err=True)
    raise typer.Exit(code)


def _settings(db: str | None) -> Settings:
    base = getattr(_ctx.state, "settings", None)
    values = base.model_dump() if base is not None else {}
    if db:
        values["database_url"] = db
    return Settings(**values)


def _load_fleet(settings: Settings, limit: int | None):
    import sqlalchemy as sa

    from geoapi.storage import Store
    from geoapi.telemetry.simulate import Fleet

    store = Store.open(settings)
    try:
        if "smart_covers" not in store.registry:
            _fail("layer smart_covers is not registered: nothing to simulate")
        return Fleet.from_store(store, limit)
    except sa.exc.DBAPIError as exc:
        _fail(f"cannot read smart covers ({type(exc.orig).__name__}): run `geoapi demo` or `geoapi db upgrade` first")
    finally:
        store.close()


def fleet(
    rate: Annotated[float, typer.Option(min=0.1, max=10_000, help="messages per second")] = 10.0,
    seconds: Annotated[float, typer.Option(min=0.1, help="how long to publish")] = 60.0,
    transport: Annotated[str, typer.Option(help="mqtt | http")] = "mqtt",
    devices: Annotated[int | None, typer.Option(min=1, help="use only the first N smart covers")] = None,
    open_share: Annotated[float, typer.Option(min=0, max=1, help="share of messages that open a cover")] = 0.01,
    reset_after: Annotated[float, typer.Option(min=0, help="seconds until an opened cover reports 复位")] = 30.0,
    url: Annotated[str | None, typer.Option(help="server base URL for http (default GEOAPI_PUBLIC_URL or host:port)")] = None,
    key: Annotated[str | None, typer.Option(help="API key (dispatcher or above) for http; "
                                                 "default: the push token GEOAPI_TELEMETRY_PUSH_TOKEN")] = None,
    mqtt_url: Annotated[str | None, typer.Option(help="broker (default GEOAPI_MQTT_URL or mqtt://127.0.0.1:1883)")] = None,
    topic: Annotated[str | None, typer.Option(help="topic prefix; messages go to <prefix>/<imei> "
                                                   "(default: GEOAPI_MQTT_TOPIC without /#)")] = None,
    seed: Annotated[int, typer.Option(help="random seed")] = 1,
    db: DbOption = None,
) -> None:
    """Publish simulated telemetry from the smart covers in the database (e.g. the demo's 859)."""
    from geoapi.telemetry.simulate import HttpPublisher, MqttPublisher, drive

    if transport not in ("mqtt", "http"):
        _fail(f"--transport must be mqtt or http, not {transport!r}")
    settings = _settings(db)
    sim = _load_fleet(settings, devices)
    if not sim.devices:
        _fail("no smart covers with an IMEI in the database: run `geoapi demo` first")
    if transport == "mqtt":
        broker = mqtt_url or settings.mqtt_url or "mqtt://127.0.0.1:1883"
        prefix = topic or settings.mqtt_topic.removesuffix("#").rstrip("/")
        try:
            pub = MqttPublisher.from_url(broker, prefix)
        except (OSError, ValueError) as exc:
            _fail(f"cannot connect to the MQTT broker {broker}: {exc}")
        target = f"{broker} topic {prefix}/<imei>"
    else:
        base = (url or settings.public_url or f"http://{settings.host}:{settings.port}").rstrip("/")
        if key:
            headers = {"Authorization": f"Bearer {key}"}
        elif settings.telemetry_push_token:
            headers = {"X-Push-Token": settings.telemetry_push_token}
        else:
            _fail("HTTP needs --key (dispatcher or above; `geoapi demo` prints an editor key) "
                  "or GEOAPI_TELEMETRY_PUSH_TOKEN")
        pub = HttpPublisher(base, headers)
        target = f"{base}/telemetry"
    typer.echo(f"fleet: {len(sim.devices)} smart covers, {rate:g} msg/s for {seconds:g} s over {transport} to {target}")
    try:
        stats = drive(sim, pub.publish, rate=rate, seconds=seconds, open_share=open_share,
                      reset_after_s=reset_after, seed=seed)
        pub.close()  # waits until the broker has every message
    except Exception as exc:  # httpx errors (refused, 401 …), a broker gone mid-run
        _fail(f"publishing stopped: {type(exc).__name__}: {exc}", 1)
    typer.echo(f"sent {stats.sent} messages in {stats.seconds:g} s ({stats.opened} cover openings, "
               f"{stats.reset} resets)")
    if isinstance(pub, HttpPublisher) and pub.unknown:
        typer.secho(f"the server did not know {len(pub.unknown)} device(s), e.g. {sorted(pub.unknown)[0]}: "
                    "is it serving the same database?", fg="yellow", err=True)


def register(app: typer.Typer, state: object) -> None:
    _ctx.state = state
    app.command("fleet")(fleet)
