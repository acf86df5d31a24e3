"""GET /coverage: per-unit counts, densities, shares and service-radius coverage vs brute force."""

from __future__ import annotations

import csv
import io
from collections import Counter

import numpy as np
import pytest
import shapely
from pyproj import CRS, Geod, Transformer
from shapely.geometry import LineString, Point, shape

LAEA = CRS.from_proj4("+proj=laea +lat_0=35.15 +lon_0=113.125 +ellps=GRS80 +units=m")  # city-centred
TO_LAEA = Transformer.from_crs(4490, LAEA, always_xy=True)


def metric(geom):
    return shapely.transform(geom, lambda c: np.column_stack(TO_LAEA.transform(c[:, 0], c[:, 1])))


@pytest.fixture
def toilets(store) -> list[Point]:
    """120 toilets over the whole city, so every district gets some."""
    rng = np.random.default_rng(3)
    pts = [Point(x, y) for x, y in zip(rng.uniform(112.7, 113.6, 120), rng.uniform(34.85, 35.45, 120), strict=True)]
    statuses = ["完好", "破损", "停用"]
    store.bulk_write("toilets", [({"name": f"公厕{i}", "status": statuses[i % 3]}, p) for i, p in enumerate(pts)],
                     actor="test")
    return pts


def test_counts_and_density_by_district_match_shapely(client, districts, toilets):
    r = client.get("/coverage", params={"layer": "toilets", "by": "district"})
    assert r.status_code == 200, r.text
    units = {u["code"]: u for u in r.json()["units"]}
    assert len(units) == 10
    for f in districts:
        g = shape(f["geometry"])
        u = units[f["properties"]["admin_code"]]
        inside = [i for i, p in enumerate(toilets) if g.intersects(p)]
        assert u["count"] == len(inside)
        assert u["by_status"].get("停用", 0) == sum(1 for i in inside if i % 3 == 2)
        area = metric(g).area / 1e6
        assert u["area_km2"] == pytest.approx(area, rel=1e-6)
        assert u["density_per_km2"] == pytest.approx(len(inside) / area, rel=1e-3)
        assert u["name"] == f["properties"]["name"]


def test_radius_coverage_share_and_uncovered_geometry(client, districts, toilets):
    r = client.get("/coverage", params={"layer": "toilets", "by": "district", "radius_m": 3000, "format": "geojson"})
    assert r.status_code == 200, r.text
    reach = shapely.union_all([metric(p).buffer(3000, quad_segs=32) for p in toilets])
    for feat in r.json()["features"]:
        g = next(shape(f["geometry"]) for f in districts if f["properties"]["admin_code"] == feat["id"])
        local = metric(g)
        want = local.intersection(reach).area / local.area
        assert feat["properties"]["covered_share"] == pytest.approx(want, abs=0.003)
        unc = shape(feat["properties"]["uncovered"])
        assert metric(unc).area / local.area == pytest.approx(1 - want, abs=0.003)
        assert feat["geometry"]["type"] in ("Polygon", "MultiPolygon")


def test_line_layer_counts_by_length_share(client, store, districts):
    # one pipe along a straight line crossing district borders
    line = LineString([(113.0, 35.2, 80.0), (113.5, 35.2, 80.0)])  # pipes are 3D (管顶高程)
    spec = store.layer("pipes")
    props = {f.name: (f.values[0] if f.type == "enum" else None) for f in spec.all_fields if f.required}
    store.bulk_write("pipes", [(props, line)], actor="test")
    units = client.get("/coverage", params={"layer": "pipes", "by": "district"}).json()["units"]
    total_km = sum(u.get("length_km", 0) for u in units)
    geod_len = Geod(ellps="GRS80").geometry_length(line) / 1000
    assert total_km == pytest.approx(geod_len, rel=0.01)  # the districts tile the line (nearly)
    assert sum(u["count"] for u in units) == pytest.approx(1.0, abs=0.01)
    for u in units:
        if u["length_km"]:
            assert u["count"] == pytest.approx(u["length_km"] / geod_len, rel=0.01)


def test_smart_share_for_manholes_and_csv(client, districts, manholes):
    r = client.get("/coverage", params={"layer": "manholes", "by": "district"})
    units = [u for u in r.json()["units"] if u["count"]]
    assert sum(u["count"] for u in units) == len(manholes)
    smart = sum(1 for p, _ in manholes if p["is_smart"])
    assert sum(u["smart_share"] * u["count"] for u in units) == pytest.approx(smart, abs=0.05)
    text = client.get("/coverage", params={"layer": "manholes", "by": "district", "format": "csv"}).content.decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 10 and {"code", "name", "area_km2", "count", "smart_share", "status_破损"} <= set(rows[0])


def test_by_road_segment_counts_in_the_frontage_corridor(client, manholes, road_segments):
    units = {u["code"]: u for u in client.get("/coverage", params={"layer": "manholes", "by": "road_segment"}).json()["units"]}
    assert set(units) == {"JFL-01", "RMR-01"}
    assert units["JFL-01"]["unit_length_km"] == pytest.approx(
        Geod(ellps="GRS80").geometry_length(road_segments[0][1]) / 1000, rel=1e-3)
    assert units["RMR-01"]["area_km2"] == pytest.approx(units["RMR-01"]["unit_length_km"] * 0.04, rel=0.02)


@pytest.mark.parametrize(("params", "status"), [
    ({"by": "county"}, 400), ({"format": "xls"}, 400), ({"radius_m": 0}, 400), ({"layer": "nope"}, 404),
    ({"status": "坏了"}, 400),
])
def test_bad_coverage_requests(client, params, status):
    assert client.get("/coverage", params={"layer": "toilets", **params}).status_code == status


@pytest.mark.postgis
def test_point_grid_path_equals_the_gist_join_including_border_points(store, districts, toilets):
    """The PostGIS grid path (used for big point layers) counts exactly like the GiST join, also for
    points exactly on a shared border (a vertex both districts share counts in both)."""
    if store.dialect != "postgis":
        pytest.skip("the grid path is PostGIS-only")
    from geoapi.storage import overlay
    geoms = [shape(f["geometry"]) for f in districts]
    seen = Counter(c for g in geoms for c in {tuple(xy) for xy in shapely.get_coordinates(g)})
    shared = sorted(c for c, n in seen.items() if n >= 2)[:20]  # vertices on a shared border
    store.bulk_write("toilets", [({"name": f"界{i}", "status": "完好"}, Point(c)) for i, c in enumerate(shared)],
                     actor="test")
    wkbs = [shapely.to_wkb(g, flavor="iso") for g in geoms]
    table = store.table("toilets")
    cols = [table.c.status]

    def table_of(tallies):
        return sorted((t.unit, t.group, t.count) for t in tallies)

    grid = table_of(overlay._postgis_point_grid(store, table, wkbs, cols, []))
    gist = table_of(overlay._postgis(store, table, wkbs, "point", cols, []))
    assert grid == gist
    on_border = sum(1 for g in geoms for c in shared if g.intersects(Point(c)))
    assert on_border >= 2 * len(shared) > 0  # each border vertex counts in both districts
    want = sum(1 for g in geoms for p in toilets if g.intersects(p)) + on_border
    assert sum(n for *_, n in grid) == want


@pytest.mark.postgis
def test_point_grid_path_near_borders_overlaps_and_far_points(store, districts):
    """Points a hair either side of district borders, in overlapping units and far off the grid:
    the grid path (coarse and fine cells, exact tests in border cells) equals the GiST join."""
    if store.dialect != "postgis":
        pytest.skip("the grid path is PostGIS-only")
    from geoapi.storage import overlay
    rng = np.random.default_rng(11)
    geoms = [shape(f["geometry"]) for f in districts]
    lines = shapely.get_parts(shapely.boundary(geoms[3]))
    along = shapely.line_interpolate_point(lines[0], rng.uniform(0, 1, 300), normalized=True)
    xy = shapely.get_coordinates(along) + rng.normal(0, 2e-6, (300, 2))      # ~0.2 m off the border
    far = [(100.0, 20.0), (113.2, 80.0), (170.0, -40.0), (-75.0, 35.2)]
    x0, y0, x1, y1 = geoms[3].bounds
    inner = rng.uniform([x0, y0], [x1, y1], (200, 2))                             # inside and around it
    pts = [Point(x, y) for x, y in [*xy.tolist(), *inner.tolist()]]
    store.bulk_write("toilets", [({"name": f"p{i}", "status": "完好"}, p) for i, p in enumerate(pts)], actor="test")
    with store.engine.begin() as conn:   # outside the city bounds the Store would refuse: direct SQL
        for x, y in far:
            conn.exec_driver_sql("INSERT INTO toilets (name, status, version, created_at, created_by, updated_at, "
                                 f"updated_by, geom) VALUES ('far', '完好', 1, now(), 't', now(), 't', "
                                 f"ST_SetSRID(ST_MakePoint({x}, {y}), 4490))")
    pts += [Point(x, y) for x, y in far]
    c = geoms[3].centroid
    overlapping = [*geoms, shapely.box(c.x - 0.05, c.y - 0.05, c.x + 0.05, c.y + 0.05),
                   shapely.box(c.x - 0.02, c.y - 0.08, c.x + 0.08, c.y + 0.02)]
    wkbs = [shapely.to_wkb(g, flavor="iso") for g in overlapping]
    table = store.table("toilets")
    cols = [table.c.status]
    grid = sorted((t.unit, t.group, t.count) for t in overlay._postgis_point_grid(store, table, wkbs, cols, []))
    gist = sorted((t.unit, t.group, t.count) for t in overlay._postgis(store, table, wkbs, "point", cols, []))
    assert grid == gist
    assert sum(n for *_, n in grid) == sum(1 for g in overlapping for p in pts if g.intersects(p))
