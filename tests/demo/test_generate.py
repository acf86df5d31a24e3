"""The 焦作 demo generator: deterministic, complete, valid for every layer, inside the city."""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import pytest
import shapely

from geoapi.demo import generate
from geoapi.demo.geo import load_districts
from layers import load_registry
from layers.codes import check_code
from layers.validate import conform_geometry, validate_properties

BOUNDS = (112.5, 34.75, 113.75, 35.55)
PY_TYPES = (str, int, float, bool, dt.date, dt.datetime, list, dict)


@pytest.fixture(scope="module")
def demo():
    return generate(20000, seed=7)


@pytest.fixture(scope="module")
def registry():
    return load_registry()


def _luhn_ok(number: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def test_same_seed_gives_identical_output():
    a, b = generate(3000, seed=11), generate(3000, seed=11)
    assert a.keys() == b.keys()
    for layer in a:
        assert len(a[layer]) == len(b[layer]), layer
        for (pa, ga), (pb, gb) in zip(a[layer], b[layer], strict=True):
            assert pa == pb, layer
            assert shapely.to_wkb(ga) == shapely.to_wkb(gb), layer


def test_another_seed_gives_other_assets():
    a, b = generate(3000, seed=1), generate(3000, seed=2)
    ga = shapely.get_coordinates(a["manholes"].geometries)
    gb = shapely.get_coordinates(b["manholes"].geometries)
    assert ga.shape != gb.shape or not np.array_equal(ga, gb)


def test_counts_match_the_published_figures(demo):
    assert len(demo["manholes"]) == 20000
    assert len(demo["smart_covers"]) == 859
    assert len(demo["toilets"]) == 179
    assert len(demo["transfer_stations"]) == 90
    assert len(demo["heat_stations"]) == 328
    assert len(demo["waterlogging_points"]) == 11
    assert len(demo["districts"]) == 10
    assert 2000 <= len(demo["parking_bays"]) <= 9000
    assert len(demo["road_segments"]) > 200
    assert len(demo["unit_grids"]) > 1000


def test_about_300_km_of_heating_pipes(demo):
    from geoapi.demo.geo import geom_to_xy
    pipes = demo["pipes"]
    heat = pipes.geometries[pipes.column("pipe_class") == "热力"]
    km = shapely.length(geom_to_xy(heat)).sum() / 1000
    assert 270 <= km <= 330
    levels = set(pipes.column("network_level")[pipes.column("pipe_class") == "热力"])
    assert levels == {"一级网", "二级网"}
    drain = set(pipes.column("pipe_subclass")[pipes.column("pipe_class") == "排水"])
    assert drain == {"雨水", "污水"}


@pytest.mark.parametrize("layer_id", [
    "manholes", "smart_covers", "pipes", "heat_stations", "toilets", "transfer_stations",
    "parking_bays", "waterlogging_points", "districts", "road_segments", "unit_grids"])
def test_every_feature_is_valid_for_its_layer(demo, registry, layer_id):
    layer = registry[layer_id]
    problems = []
    for k, (props, geom) in enumerate(demo[layer_id]):
        _, p = validate_properties(layer, props)
        _, q = conform_geometry(layer, geom, BOUNDS)
        problems += [(k, x.field, x.message) for x in p + q]
    assert problems[:5] == []


def test_property_values_are_plain_python(demo):
    for layer, rows in demo.items():
        for props, _ in rows[:200]:
            bad = {k: type(v) for k, v in props.items() if not isinstance(v, PY_TYPES)}
            assert not bad, (layer, bad)


def test_everything_lies_inside_the_jiaozuo_districts(demo):
    city = shapely.union_all([d.geometry for d in load_districts()])
    shapely.prepare(city)
    for layer, rows in demo.items():
        outside = ~shapely.covered_by(rows.geometries, city.buffer(1e-9))
        assert not outside.any(), (layer, int(outside.sum()))


def test_admin_code_is_the_district_under_the_asset(demo):
    districts = {d.admin_code: d.geometry for d in load_districts()}
    for layer in ("manholes", "toilets", "heat_stations", "parking_bays"):
        rows = demo[layer]
        pts = shapely.point_on_surface(rows.geometries)
        codes = rows.column("admin_code")
        for code in set(codes):
            sel = codes == code
            assert shapely.covered_by(pts[sel], districts[code]).all(), (layer, code)


def test_manhole_codes_are_unique_well_formed_identifiers(demo, registry):
    layer = registry["manholes"]
    rows = demo["manholes"]
    codes = rows.column("obj_code").tolist()
    assert len(set(codes)) == len(codes)
    for props, _ in rows[:3000]:
        assert check_code(layer, props["obj_code"], props) is None
        assert props["obj_code"][:6] == props["admin_code"]


def test_smart_covers_have_luhn_imeis_and_point_at_real_manholes(demo):
    covers = demo["manholes"]
    code_to_row = {c: i for i, c in enumerate(covers.column("obj_code").tolist())}
    imeis = []
    for props, geom in demo["smart_covers"]:
        imei = props["imei"]
        assert re.fullmatch(r"86\d{13}", imei) and _luhn_ok(imei), imei
        assert props["platform"] in ("CTWing", "OneNET") and props["heartbeat_s"] == 86400
        row = code_to_row[props["manhole_code"]]
        assert covers.column("is_smart")[row] is True
        assert shapely.equals(covers.geometries[row], geom)
        imeis.append(imei)
    assert len(set(imeis)) == len(imeis)
    assert sum(covers.column("is_smart").tolist()) == len(imeis)


def test_damaged_covers_carry_defects_and_a_rectify_state(demo):
    rows = demo["manholes"]
    status = rows.column("status")
    assert {"完好", "破损", "丢失", "占用"} <= set(status)
    for props, _ in rows[:5000]:
        if props["status"] == "破损":
            assert props["defects"] and props["rectify_status"] in ("待整治", "整治中", "已整治待验收")
        if props["status"] == "丢失":
            assert "缺失" in props["defects"]


def test_road_segments_are_short_coded_and_have_chiefs(demo):
    seen = set()
    for props, _geom in demo["road_segments"]:
        assert re.fullmatch(rf"{props['road_code']}-\d{{2}}", props["segment_code"])
        assert props["length_m"] <= 500.5
        assert props["supervise_phone"] == "12319"
        levels = [c["level"] for c in props["chiefs"]]
        assert set(levels) <= {"市级", "区级", "街道级", "社区级"} and "区级" in levels
        seen.add(props["segment_code"])
    assert len(seen) == len(demo["road_segments"])
    crossings = [p["start_desc"] for p, _ in demo["road_segments"] if p["start_desc"].endswith("交叉口")]
    assert "人民路与民主路交叉口" in {p["end_desc"] for p, _ in demo["road_segments"]} | set(crossings)


def test_unit_grid_codes_follow_the_rule_and_run_west_to_east_north_to_south(demo):
    rows = demo["unit_grids"]
    codes = rows.column("grid_code").tolist()
    assert len(set(codes)) == len(codes)
    assert all(re.fullmatch(r"\d{15}", c) for c in codes)
    comm = rows.column("community_code")
    first = comm[0]
    sel = np.flatnonzero((comm == first) & (np.abs(rows.column("area_m2").astype(float) - 10000) < 50))
    c = shapely.centroid(rows.geometries[sel])
    x, y = shapely.get_x(c), shapely.get_y(c)
    seq = rows.column("seq")[sel].astype(int)
    order = np.argsort(seq)
    for a, b in zip(order, order[1:], strict=False):
        assert y[a] > y[b] + 1e-5 or (abs(y[a] - y[b]) < 1e-5 and x[a] < x[b])


@pytest.mark.slow
def test_scale_200000_generates(registry):
    out = generate(200_000, seed=3)
    rows = out["manholes"]
    assert len(rows) == 200_000
    codes = rows.column("obj_code")
    assert len(np.unique(codes.astype(str))) == 200_000
    assert set(out["smart_covers"].column("manhole_code").tolist()) <= set(codes.tolist())
    layer = registry["manholes"]
    for props, geom in rows[::5000]:
        assert not validate_properties(layer, props)[1]
        assert not conform_geometry(layer, geom, BOUNDS)[1]
