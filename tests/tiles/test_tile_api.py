"""The tile routes over HTTP on both backends: content, filters, errors, caching headers."""

from __future__ import annotations

import pytest

from tests.tiles.conftest import CENTRE, decode, ids_in, tile_at

pytestmark = pytest.mark.usefixtures("seeded")


def url(layers: str, z: int, lon: float = CENTRE[0], lat: float = CENTRE[1], query: str = "") -> str:
    t = tile_at(lon, lat, z)
    return f"/tiles/{layers}/{t.z}/{t.x}/{t.y}.mvt" + (f"?{query}" if query else "")


def test_tile_carries_every_feature_with_its_tile_properties(client, seeded):
    r = client.get(url("manholes", 16))
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    layer = decode(r.content)["manholes"]
    assert {f["id"] for f in layer["features"]} == set(seeded["manholes"][:3])
    broken = next(f for f in layer["features"] if f["id"] == seeded["manholes"][1])
    assert broken["properties"]["status"] == "破损"
    assert broken["properties"]["defects"] == "破损,下沉"
    assert "id" not in broken["properties"]   # the feature id carries it
    assert "cover_no" not in broken["properties"]  # not a tile property of manholes


@pytest.mark.parametrize("layers", ["manholes", "manholes,pipes,smart_covers"])
@pytest.mark.parametrize("z", [12, 16])
def test_a_tile_served_on_the_event_loop_equals_the_thread_rendering(client, store, layers, z):
    from geoapi.api.tiles import _runtime
    from geoapi.storage.tilesql import render_tile
    from tiles.filters import parse_filters
    from tiles.service import resolve_layers

    runtime = _runtime(client.app)
    assert runtime.renders_on_loop == (store.dialect == "postgis")  # an in-process cache here
    specs = resolve_layers(store.registry, layers)
    tile = tile_at(*CENTRE, z)
    served = client.get(f"/tiles/{layers}/{tile.z}/{tile.x}/{tile.y}.mvt", headers={"Accept-Encoding": "identity"})
    assert served.status_code == 200 and served.headers["x-tile-cache"] == "miss"
    def features(data: bytes) -> dict:  # per layer, in id order (row order is the planner's)
        return {name: sorted(layer["features"], key=lambda f: f["id"]) for name, layer in decode(data).items()}

    rendered = render_tile(store, specs, tile, parse_filters({}, specs))
    assert features(served.content) == features(rendered) and features(rendered)


def test_composite_tile_has_one_mvt_layer_per_layer(client, seeded):
    r = client.get(url("manholes,pipes,smart_covers", 16))
    tile = decode(r.content)
    assert set(tile) == {"manholes", "pipes", "smart_covers"}
    assert ids_in(r.content, "pipes") == set(seeded["pipes"])


def test_property_filters_select_features(client, seeded):
    r = client.get(url("manholes", 16, query="status=破损,丢失"))
    assert ids_in(r.content, "manholes") == set(seeded["manholes"][1:3])
    r = client.get(url("manholes", 16, query="well_use=雨水&status=完好"))
    assert ids_in(r.content, "manholes") == {seeded["manholes"][0]}


def test_enum_list_filter_matches_any_listed_value(client, seeded):
    r = client.get(url("manholes", 16, query="defects=下沉"))
    assert ids_in(r.content, "manholes") == {seeded["manholes"][1]}


def test_filter_in_composite_applies_where_the_property_exists(client, seeded):
    r = client.get(url("manholes,pipes", 16, query="well_use=污水"))
    assert ids_in(r.content, "manholes") == {seeded["manholes"][1]}
    assert ids_in(r.content, "pipes") == set(seeded["pipes"])


def test_updated_since_in_the_future_gives_an_empty_tile(client):
    assert client.get(url("manholes", 16, query="updated_since=2999-01-01T00:00:00Z")).status_code == 204
    assert client.get(url("manholes", 16, query="updated_since=2000-01-01")).status_code == 200


@pytest.mark.parametrize(("query", "needle"), [
    ("status=坏了", "must be one of"), ("colour=red", "unknown filter 'colour'"),
    ("well_depth_m=deep", "well_depth_m"), ("updated_since=yesterday", "updated_since"),
])
def test_bad_filters_are_400_saying_what_is_wrong(client, query, needle):
    r = client.get(url("manholes", 16, query=query))
    assert r.status_code == 400
    assert needle in r.json()["detail"]


@pytest.mark.parametrize(("path", "needle"), [
    ("/tiles/manholes/23/0/0.mvt", "zoom 23"), ("/tiles/manholes/-1/0/0.mvt", "zoom -1"),
    ("/tiles/manholes/3/8/0.mvt", "x 8"), ("/tiles/manholes/3/0/9.mvt", "y 9"),
    ("/tiles/manholes/1.5/0/0.mvt", "tile z must be a whole number"),
    ("/tiles/manholes/3/x/0.mvt", "tile x must be a whole number"),
    ("/tiles/manholes/3/0/99999999999999.mvt", "tile y must be a whole number"),
])
def test_addresses_outside_the_grid_are_400(client, path, needle):
    r = client.get(path)
    assert r.status_code == 400
    assert needle in r.json()["detail"]


def test_the_tile_route_is_documented_with_its_parameters(client):
    op = client.get("/openapi.json").json()["paths"]["/tiles/{layers}/{z}/{x}/{y}.mvt"]["get"]
    assert [p["name"] for p in op["parameters"] if p["in"] == "path"] == ["layers", "z", "x", "y"]
    assert "application/vnd.mapbox-vector-tile" in op["responses"]["200"]["content"]


def test_unknown_layer_is_404(client):
    r = client.get("/tiles/manholes,nope/16/0/0.mvt")
    assert r.status_code == 404
    assert "nope" in r.json()["detail"]


def test_empty_tile_and_zoom_outside_the_layer_are_204(client):
    assert client.get("/tiles/manholes/16/0/0.mvt").status_code == 204
    assert client.get(url("manholes", 9)).status_code == 204  # manholes start at z10
    assert client.get(url("pipes", 11)).status_code == 204  # pipes start at z12


def test_low_zoom_is_aggregated_and_counts_every_feature(client, seeded):
    r = client.get(url("manholes", 12))
    cells = decode(r.content)["manholes"]["features"]
    assert sum(c["properties"]["count"] for c in cells) == len(seeded["manholes"])
    assert sum(c["properties"]["count_破损"] for c in cells) == 1
    assert sum(c["properties"]["count_完好"] for c in cells) == 2
    assert all("status" not in c["properties"] for c in cells)


def test_etag_gives_304_and_gzip_when_accepted(client):
    first = client.get(url("manholes", 16), headers={"Accept-Encoding": "gzip"})
    assert first.headers["content-encoding"] == "gzip"
    assert first.headers["x-tile-cache"] == "miss"
    again = client.get(url("manholes", 16), headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    assert again.headers["x-tile-cache"] == "hit"
    plain = client.get(url("manholes", 16), headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert plain.content == first.content  # httpx has un-gzipped the first


def test_live_layers_are_cached_briefly(client):
    live = client.get(url("smart_covers", 16)).headers["cache-control"]
    still = client.get(url("manholes", 16)).headers["cache-control"]
    assert "max-age=5" in live and "must-revalidate" in live
    assert "max-age=60" in still
    assert "max-age=5" in client.get(url("manholes,smart_covers", 16)).headers["cache-control"]
