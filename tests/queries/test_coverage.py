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
        return sorted((t.unit, t.group, t.count) for t in tallies.rows)

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
    grid = sorted((t.unit, t.group, t.count) for t in overlay._postgis_point_grid(store, table, wkbs, cols, []).rows)
    gist = sorted((t.unit, t.group, t.count) for t in overlay._postgis(store, table, wkbs, "point", cols, []).rows)
    assert grid == gist
    assert sum(n for *_, n in grid) == sum(1 for g in overlapping for p in pts if g.intersects(p))


# -- PostGIS: counts read from the tile-cell pyramid (geoapi.storage.cellcover) ------------------
def _edge_points(rng, geoms) -> list[tuple[float, float]]:
    """Points exactly on (and a float step either side of) cell edges of every pyramid level,
    on shared district vertices, and ~1 cm either side of district borders."""
    from geoapi.storage.cellcover import _lat
    out = []
    for level in range(16, 21):
        scale = float(1 << level)
        gx = np.floor((rng.uniform(112.9, 113.5, 40) / 360.0 + 0.5) * scale)
        lon_edge = (gx / scale - 0.5) * 360.0
        gy = np.floor((0.5 - np.log(np.tan(np.pi / 4 + rng.uniform(35.0, 35.4, 40) * np.pi / 360.0)) / (2 * np.pi))
                      * scale)
        lat_edge = _lat(gy / scale)
        for x, y in zip(lon_edge, lat_edge, strict=True):
            out += [(x, y), (np.nextafter(x, 0), y), (np.nextafter(x, 999), y), (x, np.nextafter(y, 0)),
                    (x + rng.uniform(-1e-4, 1e-4), y), (x, y + rng.uniform(-1e-4, 1e-4))]
    seen = Counter(c for g in geoms for c in {tuple(xy) for xy in shapely.get_coordinates(g)})
    out += [c for c, n in seen.items() if n >= 2][:40]
    for g in geoms[:4]:
        line = shapely.get_parts(shapely.boundary(g))[0]
        on = shapely.get_coordinates(shapely.line_interpolate_point(line, rng.uniform(0, 1, 40), normalized=True))
        for d in (1e-7, -1e-7):
            near = on + d
            out += [tuple(xy) for xy in near.tolist()]
            for level in range(16, 21):  # moved onto the nearest cell edges: cells a border crosses
                scale = float(1 << level)
                lon_edge = (np.round((near[:, 0] / 360.0 + 0.5) * scale) / scale - 0.5) * 360.0
                v = 0.5 - np.log(np.tan(np.pi / 4 + near[:, 1] * np.pi / 360.0)) / (2 * np.pi)
                lat_edge = _lat(np.round(v * scale) / scale)
                out += list(zip(lon_edge.tolist(), near[:, 1].tolist(), strict=True))
                out += list(zip(near[:, 0].tolist(), lat_edge.tolist(), strict=True))
                out += list(zip(np.nextafter(lon_edge, 0).tolist(), np.nextafter(lat_edge, 90).tolist(), strict=True))
    return out


def _db_points(store) -> list[tuple[Point, str | None, bool]]:
    with store.engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT ST_X(geom), ST_Y(geom), status, is_smart FROM manholes").all()
    return [(Point(x, y), s, bool(sm)) for x, y, s, sm in rows]


def _brute(store, geoms) -> tuple[dict, dict]:
    """(unit, status) → count and unit → smart count, by shapely over the stored points."""
    counts, smart = Counter(), Counter()
    for p, s, sm in _db_points(store):
        for i, g in enumerate(geoms):
            if g.intersects(p):
                counts[(i, s)] += 1
                smart[i] += sm
    return dict(counts), {k: v for k, v in smart.items() if v}


def _check_cells(store, geoms) -> None:
    from geoapi.storage import cellcover, overlay
    wkbs = [shapely.to_wkb(g, flavor="iso") for g in geoms]
    assert cellcover.usable(store, "manholes", ["status"], ["is_smart"])
    direct = cellcover.point_counts(store, "manholes", wkbs)
    assert direct is not None  # the cell path ran
    got = overlay.tallies(store, "manholes", wkbs, kind="point", group=["status"], conds=[], flags=["is_smart"])
    counts = {(t.unit, t.group[0]): t.count for t in got.rows}
    smart = {u: int(v[0]) for u, v in got.flagged.items() if v[0]}
    want_counts, want_smart = _brute(store, geoms)
    assert counts == want_counts
    assert smart == want_smart
    assert {(u, s): c for u, s, c in direct.rows} == counts and len(direct.rows) == len(counts)
    table = store.table("manholes")   # and the GiST join, the database's own answer
    gist = overlay._postgis(store, table, wkbs, "point", [table.c.status], [], [table.c.is_smart])
    assert {(t.unit, t.group[0]): t.count for t in gist.rows} == want_counts
    assert {u: int(v[0]) for u, v in gist.flagged.items() if v[0]} == want_smart


@pytest.mark.postgis
def test_cell_pyramid_path_is_exact_on_edges_borders_and_after_writes(store, client, districts):
    """Unfiltered point coverage read from the cell pyramid = shapely brute force = the GiST join:
    random points, points on and a float step off cell edges of every level, on shared district
    vertices and ~1 cm either side of borders, overlapping units; then after Store and plain-SQL
    inserts, moves, status and is_smart changes and deletes."""
    if store.dialect != "postgis":
        pytest.skip("the cell table is PostGIS-only")
    rng = np.random.default_rng(21)
    geoms = [shape(f["geometry"]) for f in districts]
    c = geoms[3].centroid
    units = [*geoms, shapely.box(c.x - 0.05, c.y - 0.05, c.x + 0.05, c.y + 0.05)]  # overlaps a district
    xy = [*zip(rng.uniform(112.75, 113.55, 1500).tolist(), rng.uniform(34.9, 35.42, 1500).tolist(), strict=True),
          *_edge_points(rng, geoms)]
    statuses = ["完好", "破损", "丢失", "占用"]
    rows = [({"status": statuses[i % 4], "is_smart": bool(i % 5 == 0), "well_use": "雨水"}, Point(x, y))
            for i, (x, y) in enumerate(xy)]
    store.bulk_write("manholes", rows, actor="test")
    _check_cells(store, units)

    ids = [store.create("manholes", {"status": "破损", "is_smart": True, "well_use": "污水"}, Point(113.24, 35.21), actor="test").id
           for _ in range(3)]
    border = shapely.get_coordinates(shapely.get_parts(shapely.boundary(geoms[3]))[0])[5]
    store.patch("manholes", ids[0], {}, Point(*border), actor="test")            # onto a border vertex
    store.patch("manholes", ids[1], {"status": "丢失", "is_smart": False}, actor="test")
    store.delete("manholes", ids[2], actor="test")
    _check_cells(store, units)

    with store.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE manholes SET geom = ST_Translate(geom, 0.013, -0.007) WHERE mod(id, 7) = 0")
        conn.exec_driver_sql("UPDATE manholes SET status = NULL WHERE mod(id, 11) = 0")      # no status column
        conn.exec_driver_sql("UPDATE manholes SET status = '其他' WHERE mod(id, 13) = 0")    # not a listed value
        conn.exec_driver_sql("UPDATE manholes SET is_smart = NOT coalesce(is_smart, false) WHERE mod(id, 6) = 0")
        conn.exec_driver_sql("INSERT INTO manholes (status, is_smart, version, created_at, created_by, updated_at, "
                             "updated_by, geom) SELECT status, true, 1, now(), 'psql', now(), 'psql', "
                             "ST_Translate(geom, 0.002, 0.002) FROM manholes WHERE mod(id, 9) = 0")
        conn.exec_driver_sql("DELETE FROM manholes WHERE mod(id, 17) = 0")
    _check_cells(store, units)

    # and through the API: the counts and smart shares the planner sees
    want_counts, want_smart = _brute(store, geoms)
    index = {d["properties"]["admin_code"]: i for i, d in enumerate(districts)}
    units = client.get("/coverage", params={"layer": "manholes", "by": "district"}).json()["units"]
    assert sorted(u["code"] for u in units) == sorted(index)
    for u in units:
        i = index[u["code"]]
        n = sum(v for (j, _), v in want_counts.items() if j == i)
        assert u["count"] == n
        assert u["by_status"] == {("未填" if s is None else s): v for (j, s), v in want_counts.items() if j == i}
        if n:
            assert u["smart_share"] == round(want_smart.get(i, 0) / n, 4)


@pytest.mark.postgis
def test_cell_pyramid_path_gives_way_when_borders_hold_too_many_points(store, districts, monkeypatch):
    """Thin units (or a low limit) would read too many points: the walk answers None and the
    tallies come from the layer table, with the same counts."""
    if store.dialect != "postgis":
        pytest.skip("the cell table is PostGIS-only")
    from geoapi.storage import cellcover, overlay
    rng = np.random.default_rng(5)
    pts = [({"status": "完好", "is_smart": bool(i % 2), "well_use": "雨水"}, Point(x, y)) for i, (x, y) in
           enumerate(zip(rng.uniform(112.8, 113.5, 400), rng.uniform(34.95, 35.4, 400), strict=True))]
    store.bulk_write("manholes", pts, actor="test")
    geoms = [shape(f["geometry"]) for f in districts]
    wkbs = [shapely.to_wkb(g, flavor="iso") for g in geoms]
    assert cellcover.point_counts(store, "manholes", wkbs) is not None
    before = overlay.tallies(store, "manholes", wkbs, kind="point", group=["status"], conds=[], flags=["is_smart"])
    monkeypatch.setattr(cellcover, "MAX_READ", 0)
    monkeypatch.setattr(cellcover, "MAX_READ_SHARE", 0.0)
    assert cellcover.point_counts(store, "manholes", wkbs) is None
    after = overlay.tallies(store, "manholes", wkbs, kind="point", group=["status"], conds=[], flags=["is_smart"])
    assert sorted((t.unit, t.group, t.count) for t in after.rows) == sorted((t.unit, t.group, t.count)
                                                                            for t in before.rows)
    assert after.flagged == before.flagged
    want_counts, want_smart = _brute(store, geoms)
    assert {(t.unit, t.group[0]): t.count for t in after.rows} == want_counts
    assert {u: int(v[0]) for u, v in after.flagged.items() if v[0]} == want_smart
