"""TileJSON, styles, glyphs and sprite: what a MapLibre map loads before the first tile."""

from __future__ import annotations

import pytest

from tiles import assets


def test_tilejson_uses_the_callers_address_and_describes_fields(client):
    r = client.get("/tiles/manholes,pipes/tilejson.json",
                   headers={"X-Forwarded-Proto": "https", "X-Forwarded-Host": "gis.jiaozuo.example"})
    doc = r.json()
    assert doc["tilejson"] == "3.0.0"
    assert doc["tiles"] == ["https://gis.jiaozuo.example/tiles/manholes,pipes/{z}/{x}/{y}.mvt"]
    manholes = next(v for v in doc["vector_layers"] if v["id"] == "manholes")
    assert manholes["fields"]["status"].startswith("状态")
    assert "count_破损" in manholes["fields"]
    assert doc["geoapi:aggregated_below"] == {"manholes": 15}
    assert (doc["minzoom"], doc["maxzoom"]) == (10, 22)
    assert len(doc["bounds"]) == 4


def test_tilejson_carries_filters_into_tile_urls_and_checks_them(client):
    doc = client.get("/tiles/manholes/tilejson.json?status=破损").json()
    assert doc["tiles"][0].endswith(".mvt?status=%E7%A0%B4%E6%8D%9F")
    assert client.get("/tiles/manholes/tilejson.json?status=nope").status_code == 400
    assert client.get("/tiles/nope/tilejson.json").status_code == 404


def test_yizhangtu_style_colours_by_status_and_points_at_our_own_urls(client):
    style = client.get("/styles/yizhangtu.json", headers={"Host": "10.0.0.5:8000"}).json()
    assert style["version"] == 8
    src = style["sources"]["geoapi"]["url"]
    assert src.startswith("http://10.0.0.5:8000/tiles/") and src.endswith("/tilejson.json")
    assert style["glyphs"] == "http://10.0.0.5:8000/fonts/{fontstack}/{range}.pbf"
    circle = next(x for x in style["layers"] if x["id"] == "manholes")
    assert circle["paint"]["circle-color"][:2] == ["match", ["to-string", ["get", "status"]]]
    assert "破损" in circle["paint"]["circle-color"]
    cells = next(x for x in style["layers"] if x["id"] == "manholes-cells")
    assert cells["maxzoom"] == 15 == circle["minzoom"]
    kinds = {x["id"]: x["type"] for x in style["layers"]}
    assert kinds["pipes"] == "line" and kinds["parking_bays"] == "fill"


def test_style_per_layer_and_unknown_style(client):
    assert client.get("/styles/pipes.json").json()["sources"]["geoapi"]["url"].endswith("/tiles/pipes/tilejson.json")
    assert client.get("/styles/nope.json").status_code == 404


def test_glyph_ranges_and_sprite_are_served_locally(client):
    r = client.get("/fonts/Noto Sans Regular/0-255.pbf")
    assert r.status_code == 200 and r.content.startswith(b"\x0a")
    assert client.get("/fonts/Noto Sans Regular/0-300.pbf").status_code == 400
    assert client.get("/sprites/geoapi.json").json() == {}
    assert client.get("/sprites/geoapi@2x.png").content.startswith(b"\x89PNG")


@pytest.mark.parametrize("span", ["0-255", "19968-20223"])
def test_empty_glyph_range_is_valid_protobuf(span):
    data = assets.empty_range("Noto Sans Regular", *map(int, span.split("-")))
    # field 1 (stacks), then name (field 1) and range (field 2)
    assert data[0] == 0x0A and b"Noto Sans Regular" in data and span.encode() in data
