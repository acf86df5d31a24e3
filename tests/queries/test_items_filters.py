"""Items with OGC query parameters: CQL2 filter, near/radius, properties, crs/bbox-crs, datetime, paging, HTML."""

from __future__ import annotations

import numpy as np
import pytest
from pyproj import Geod, Transformer
from shapely.geometry import Polygon

GEOD = Geod(ellps="GRS80")
TRIANGLE = Polygon([(113.22, 35.20), (113.27, 35.21), (113.23, 35.25)])


def items(client, **params):
    r = client.get("/collections/manholes/items", params={"limit": 1000, **params})
    assert r.status_code == 200, r.text
    return r


def codes(r) -> set[str]:
    return {f["properties"]["cover_no"] for f in r.json()["features"]}


def test_s_intersects_polygon_matches_shapely(client, manholes):
    wkt = TRIANGLE.wkt
    r = items(client, filter=f"S_INTERSECTS(geom, {wkt}) AND status <> '丢失'")
    want = {p["cover_no"] for p, g in manholes if TRIANGLE.intersects(g) and p["status"] != "丢失"}
    assert want and codes(r) == want
    assert r.json()["numberMatched"] == len(want)


def test_s_intersects_bbox_and_cql2_json(client, manholes):
    r = items(client, filter='{"op":"s_intersects","args":[{"property":"geom"},{"bbox":[113.22,35.2,113.25,35.23]}]}',
              **{"filter-lang": "cql2-json"})
    want = {p["cover_no"] for p, g in manholes if 113.22 <= g.x <= 113.25 and 35.2 <= g.y <= 35.23}
    assert codes(r) == want


@pytest.mark.parametrize(("cql", "keep"), [
    ("is_smart = true AND well_use = '雨水'", lambda p: p["is_smart"] and p["well_use"] == "雨水"),
    ("NOT (status IN ('完好','破损')) OR cover_no LIKE 'JG000%'",
     lambda p: p["status"] not in ("完好", "破损") or p["cover_no"].startswith("JG000")),
    ("cover_no >= 'JG0290'", lambda p: p["cover_no"] >= "JG0290"),
    ("(status = '占用' OR status = '丢失') AND NOT is_smart = true",
     lambda p: p["status"] in ("占用", "丢失") and not p["is_smart"]),
])
def test_cql2_comparisons(client, manholes, cql, keep):
    assert codes(items(client, filter=cql)) == {p["cover_no"] for p, _ in manholes if keep(p)}


def test_s_dwithin_and_near_radius_match_geodesic_brute_force(client, manholes):
    lon, lat = 113.245, 35.215
    xs = np.array([g.x for _, g in manholes])
    ys = np.array([g.y for _, g in manholes])
    d = GEOD.inv(np.full(len(xs), lon), np.full(len(xs), lat), xs, ys)[2]
    want = {p["cover_no"] for (p, _), di in zip(manholes, d, strict=True) if di <= 1500}
    assert want
    assert codes(items(client, near=f"{lon},{lat}", radius_m=1500)) == want
    assert codes(items(client, filter=f"S_DWITHIN(geom, POINT({lon} {lat}), 1.5, kilometers)")) == want


def test_properties_selects_fields(client, manholes):
    f = items(client, properties="status,well_use", limit=1).json()["features"][0]
    assert set(f["properties"]) == {"status", "well_use"}


def test_crs_3857_output_with_content_crs_header(client, manholes):
    r = items(client, crs="http://www.opengis.net/def/crs/EPSG/0/3857", limit=5)
    assert r.headers["content-crs"] == "<http://www.opengis.net/def/crs/EPSG/0/3857>"
    x, y = r.json()["features"][0]["geometry"]["coordinates"]
    lon, lat = Transformer.from_crs(3857, 4490, always_xy=True).transform(x, y)
    assert 113.1 < lon < 113.4 and 35.1 < lat < 35.3


def test_epsg4326_is_lat_lon_and_bbox_crs_follows_it(client, manholes):
    crs = "http://www.opengis.net/def/crs/EPSG/0/4326"
    r = items(client, crs=crs, bbox="35.2,113.22,35.23,113.25", **{"bbox-crs": crs})
    want = {p["cover_no"] for p, g in manholes if 113.22 <= g.x <= 113.25 and 35.2 <= g.y <= 35.23}
    assert codes(r) == want
    lat, lon = r.json()["features"][0]["geometry"]["coordinates"]
    assert 35 < lat < 36 and 113 < lon < 114


def test_bbox_in_3857(client, manholes):
    t = Transformer.from_crs(4490, 3857, always_xy=True)
    x0, y0 = t.transform(113.22, 35.2)
    x1, y1 = t.transform(113.25, 35.23)
    r = items(client, bbox=f"{x0},{y0},{x1},{y1}", **{"bbox-crs": "http://www.opengis.net/def/crs/EPSG/0/3857"})
    assert codes(r) == {p["cover_no"] for p, g in manholes if 113.22 <= g.x <= 113.25 and 35.2 <= g.y <= 35.23}


def test_datetime_interval_on_updated_at(client, manholes):
    assert len(items(client, datetime="2000-01-01T00:00:00Z/..").json()["features"]) == len(manholes)
    assert items(client, datetime="../2000-01-01T00:00:00Z").json()["features"] == []


def test_paging_numbers_and_links(client, manholes):
    r = client.get("/collections/manholes/items", params={"limit": 30, "offset": 30, "status": "破损"})
    body = r.json()
    total = sum(1 for p, _ in manholes if p["status"] == "破损")
    assert body["numberMatched"] == total and body["numberReturned"] == min(30, total - 30)
    rels = {link["rel"] for link in body["links"]}
    assert "prev" in rels and ("next" in rels) == (60 < total)


def test_every_page_of_a_walk_adds_up(client, manholes):
    seen, url = [], "/collections/manholes/items?limit=70"
    while url:
        body = client.get(url).json()
        seen += [f["id"] for f in body["features"]]
        url = next((link["href"] for link in body["links"] if link["rel"] == "next"), None)
    assert sorted(seen) == sorted(set(seen)) and len(seen) == len(manholes)


def test_html_pages(client, manholes):
    r = client.get("/collections/manholes/items", params={"f": "html", "limit": 3})
    assert r.headers["content-type"].startswith("text/html") and "JG" in r.text and "<table>" in r.text
    assert "manholes" in client.get("/collections", params={"f": "html"}).text
    assert client.get("/", headers={"Accept": "text/html,application/xhtml+xml"}).headers["content-type"].startswith("text/html")


def test_conformance_and_queryables(client):
    conf = client.get("/conformance").json()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs" in conf
    q = client.get("/collections/manholes/queryables").json()
    assert q["properties"]["well_use"]["enum"][0] == "给水" and "geom" in q["properties"]


@pytest.mark.parametrize(("params", "fragment"), [
    ({"filter": "status = = '破损'"}, "CQL2"),
    ({"filter": "nosuch = 1"}, "nosuch"),
    ({"filter": "status = '坏了'"}, "坏了"),
    ({"filter": "S_INTERSECTS(geom, POLYGON((1 2, 3 4)))"}, "S_INTERSECTS"),
    ({"filter-lang": "sql", "filter": "1=1"}, "filter-lang"),
    ({"near": "113.2,95", "radius_m": 10}, "latitude"),
    ({"near": "113.2,35.2"}, "radius_m"),
    ({"crs": "EPSG:2000"}, "crs"),
    ({"properties": "nosuch"}, "nosuch"),
    ({"datetime": "yesterday"}, "datetime"),
    ({"f": "pdf"}, "f must be"),
])
def test_bad_parameters_are_400(client, params, fragment):
    r = client.get("/collections/manholes/items", params=params)
    assert r.status_code == 400, r.text
    assert fragment in r.json()["detail"]


@pytest.mark.parametrize("param", ["filter", "sortby", "properties", "crs", "bbox", "near", "datetime", "status"])
def test_injection_in_items_parameters(client, store, manholes, param):
    r = client.get("/collections/manholes/items", params={param: "'; DROP TABLE manholes; --"})
    assert r.status_code == 400, r.text
    assert store.count("manholes") == len(manholes)


@pytest.mark.parametrize("cql", [
    "well_depth_m BETWEEN 1.5 AND 3 AND install_date >= DATE('2020-01-01')",
    "defects = '下沉'",
    "rectify_status IS NULL",
    "updated_at > TIMESTAMP('2020-01-01T00:00:00Z')",
    "S_INTERSECTS(geom, BBOX(113.22, 35.20, 113.25, 35.23)) AND S_DWITHIN(geom, POINT(113.245 35.215), 300, meters)",
])
def test_documented_filters_run(client, manholes, cql):
    assert client.get("/collections/manholes/items", params={"filter": cql}).status_code == 200
