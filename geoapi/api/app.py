"""The FastAPI application factory."""

from __future__ import annotations

import gc
import importlib
import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI

from geoapi import __version__
from geoapi.api import features, meta
from geoapi.api.errors import install_error_handlers
from geoapi.settings import Settings
from geoapi.storage import Store

log = logging.getLogger("geoapi")
SERVER_GC_THRESHOLDS = (50_000, 50, 100)  # gc.set_threshold while the app runs (lifespan)

# Optional routers other parts of the product add (module path, attribute). Each module exposes
# an APIRouter named `router` and may expose `startup(app)` / `shutdown(app)`.
PLUGINS = (
    "geoapi.api.tiles",
    "geoapi.api.queries",
    "geoapi.api.imports",
    "geoapi.api.grids",
    "geoapi.api.telemetry",
    "geoapi.api.webmap",
)


def _plugins():
    for name in PLUGINS:
        try:
            yield importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise


def create_app(settings: Settings | None = None, store: Store | None = None) -> FastAPI:
    settings = settings or Settings()
    plugins = list(_plugins())

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        own_store = app.state.store is None
        if own_store:
            app.state.store = Store.open(settings)
            for line in app.state.store.upgrade():
                log.info("schema: %s", line)
        for plugin in plugins:
            if hasattr(plugin, "startup"):
                await _maybe_await(plugin.startup(app))
        # The ~150,000 objects of the started app (modules, SQLAlchemy tables, routes) live as long
        # as the process: kept out of the collector, a full collection no longer walks them. A page
        # of 1,000 features allocates enough to trigger one every few pages: 200 ms at load 4,
        # now ≈ 5 ms (bench/README.md, Queries).
        gc.freeze()
        # Requests allocate short-lived objects by the thousand: with the default thresholds a
        # young-generation pass ran every few requests, and each older-generation pass (1–2 ms)
        # landed on some request's latency (z16 tiles: p95 1.34–1.39× → 1.30× the bare SQL,
        # bench/README.md "Sitting T"). Cyclic garbage is rare on these paths.
        gc_thresholds = gc.get_threshold()
        gc.set_threshold(*SERVER_GC_THRESHOLDS)
        try:
            yield
        finally:
            gc.set_threshold(*gc_thresholds)
            for plugin in reversed(plugins):
                if hasattr(plugin, "shutdown"):
                    await _maybe_await(plugin.shutdown(app))
            await app.state.store.close_async()  # connections of this event loop (Store.read_async)
            if own_store:
                app.state.store.close()

    app = FastAPI(
        title="geoapi",
        version=__version__,
        description="城市管理部件资产库与空间数据服务 — GIS asset registry for 城市管理局",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.store = store
    install_error_handlers(app)
    app.include_router(meta.router)
    app.include_router(features.router)
    for plugin in plugins:
        app.include_router(plugin.router)
    return app


async def _maybe_await(value):
    if hasattr(value, "__await__"):
        await value
