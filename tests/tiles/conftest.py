"""Tiny tile fixtures: a handful of manholes, a pipe and a smart cover near 焦作 centre."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import asynccontextmanager

import mapbox_vector_tile
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from shapely import LineString, Point

from geoapi.api import tiles as tiles_api
from geoapi.api.errors import install_error_handlers
from tiles.grid import TMS, TileId

CENTRE = (113.2400, 35.2100)


def tile_at(lon: float, lat: float, z: int) -> TileId:
    t = TMS.tile(lon, lat, z)
    return TileId(t.z, t.x, t.y)


def decode(data: bytes) -> dict:
    return mapbox_vector_tile.decode(data, default_options={"y_coord_down": True})


def ids_in(data: bytes, layer: str) -> set[int]:
    return {f["id"] for f in decode(data).get(layer, {}).get("features", [])} if data else set()


MANHOLES = [
    ({"well_use": "雨水", "status": "完好", "cover_no": "YS-001", "is_smart": True}, Point(113.2400, 35.2100)),
    ({"well_use": "污水", "status": "破损", "defects": ["破损", "下沉"]}, Point(113.2403, 35.2102)),
    ({"well_use": "雨水", "status": "丢失"}, Point(113.2406, 35.2098)),
    ({"well_use": "给水", "status": "完好"}, Point(113.2600, 35.2300)),  # a few tiles away at z16
]


@pytest.fixture
def seeded(store):
    """Write the fixture features through the Store; returns {layer: [ids]}."""
    ids = {"manholes": [store.create("manholes", p, g, actor="test").id for p, g in MANHOLES]}
    pipe = store.create("pipes", {"pipe_class": "排水", "status": "在用"},
                        LineString([(113.2395, 35.2095), (113.2410, 35.2105)]), actor="test")
    ids["pipes"] = [pipe.id]
    cover = store.create("smart_covers", {"status": "报警", "device_sn": "SC-1"}, Point(113.2401, 35.2101),
                         actor="test")
    ids["smart_covers"] = [cover.id]
    return ids


@pytest.fixture
def client(settings, store) -> Iterator[TestClient]:
    """The tile router alone, on a real ASGI app with the project's error table and the
    plugin start-up/shut-down (so routers of work in progress elsewhere cannot break these)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        tiles_api.startup(app)
        yield
        tiles_api.shutdown(app)
        await store.close_async()

    app = FastAPI(lifespan=lifespan)
    app.state.settings, app.state.store = settings, store
    install_error_handlers(app)
    app.include_router(tiles_api.router)
    with TestClient(app) as c:
        yield c
