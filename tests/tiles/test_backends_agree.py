"""SpatiaLite (R*Tree + shapely + mapbox-vector-tile) and PostGIS (ST_AsMVT) make the same tiles."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from shapely import LineString, Polygon

from geoapi.settings import Settings
from geoapi.storage import Store
from geoapi.storage.tilesql import render_tile
from tests.tiles.conftest import MANHOLES, decode, tile_at
from tiles.filters import parse_filters

pytestmark = pytest.mark.postgis

PIPE = LineString([(113.2380, 35.2090), (113.2405, 35.2101), (113.2440, 35.2125)])
BAY = Polygon([(113.2398, 35.2098), (113.2402, 35.2098), (113.2402, 35.2101), (113.2398, 35.2101)])


@pytest.fixture
def both(db_factories, tmp_path):
    if "postgis" not in db_factories:
        pytest.skip("PostgreSQL with PostGIS is not reachable")
    stores = {}
    for backend in ("spatialite", "postgis"):
        s = Store.open(Settings(database_url=db_factories[backend].new_url(), data_dir=tmp_path))
        for props, geom in MANHOLES:
            s.create("manholes", props, geom, actor="test")
        s.create("pipes", {"pipe_class": "给水", "status": "在用", "diameter_mm": 300}, PIPE, actor="test")
        s.create("parking_bays", _bay_props(s), BAY, actor="test")
        stores[backend] = s
    yield stores
    for s in stores.values():
        s.close()


def _bay_props(store: Store) -> dict:
    layer = store.registry["parking_bays"]
    return {f.name: f.values[0] for f in layer.fields if f.required and f.values} | \
           {f.name: "1" for f in layer.fields if f.required and not f.values and f.type == "text"}


def _features(data: bytes) -> dict[tuple[str, int], dict]:
    out = {}
    for name, layer in decode(data).items():
        for f in layer["features"]:
            out[(name, f["id"])] = f
    return out


@pytest.mark.parametrize("z", [12, 14, 16, 18])
def test_both_backends_decode_to_the_same_features(both, z):
    layers_ids = ["parking_bays", "pipes", "manholes"]
    tile = tile_at(113.2400, 35.2100, z)
    got = {}
    for backend, s in both.items():
        layers = [s.registry[i] for i in layers_ids]
        got[backend] = _features(render_tile(s, layers, tile, parse_filters({}, layers)))
    lite, pg = got["spatialite"], got["postgis"]
    assert set(lite) == set(pg) and lite
    for key in lite:
        assert lite[key]["properties"] == pg[key]["properties"], key
        a = shapely.geometry.shape(lite[key]["geometry"])
        b = shapely.geometry.shape(pg[key]["geometry"])
        assert shapely.hausdorff_distance(a, b) <= 1.0, (key, a.wkt, b.wkt)


def test_points_land_on_the_same_tile_units(both):
    tile = tile_at(113.2400, 35.2100, 20)
    coords = {}
    for backend, s in both.items():
        layers = [s.registry["manholes"]]
        feats = _features(render_tile(s, layers, tile, parse_filters({}, layers)))
        coords[backend] = {k: tuple(v["geometry"]["coordinates"]) for k, v in feats.items()}
    assert coords["spatialite"] == coords["postgis"] and coords["spatialite"]
    assert np.all(np.array(list(coords["spatialite"].values())) >= -64)
