"""Column-wise checks agree with the API's row checks (layers.validate) and keep Z where wanted."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
import shapely
from shapely import LineString, Point, Polygon

from importers.checks import BatchProblems, check_properties, conform_geometries
from importers.crs import parse_crs_text
from importers.engine import DEFAULT_CITY_BOUNDS, Frame
from importers.transforms import make_mapper
from layers.validate import conform_geometry, validate_properties

ROWS = [
    {"well_use": "雨水", "cover_no": "A1", "well_depth_m": "2.5", "is_smart": "是", "install_date": "2021/05/01"},
    {"well_use": "下水道", "well_depth_m": 80.0},
    {"well_use": "", "height_diff_mm": 1.5, "defects": "破损、下沉"},
    {"well_use": "污水", "on_blind_path": 1.0, "install_date": dt.datetime(2020, 1, 2, 3, 4)},
]


def test_same_verdicts_and_values_as_validate_properties(manholes):
    columns = {name: [row.get(name) for row in ROWS] for name in {k for r in ROWS for k in r}}
    problems = BatchProblems()
    clean = check_properties(manholes, columns, len(ROWS), problems)
    for i, row in enumerate(ROWS):
        expected, expected_problems = validate_properties(manholes, row)
        assert {k: v[i] for k, v in clean.items()} == {f.name: expected.get(f.name) for f in manholes.all_fields}
        assert sorted(r.split(" ")[0] for r in problems.reasons.get(i, [])) == sorted(p.field for p in expected_problems)


@pytest.mark.parametrize(("spoiler", "refused"), [
    (None, False), (("cover_no", " "), False), (("cover_no", ""), False), (("cover_no", "X" * 41), True),
    (("well_use", " 雨水"), False), (("well_use", "下水道"), True), (("well_depth_m", float("nan")), False),
    (("well_depth_m", 51.0), True), (("well_depth_m", -1.0), True), (("well_depth_m", float("inf")), True)])
def test_columns_of_one_type_get_the_verdicts_of_validate_properties(manholes, spoiler, refused):
    """Columns of one type (as a file gives them) that need no coercion are taken whole
    (checks._already_clean); one value that would be changed or refused sends the column
    through coerce_value, so the verdicts are the API's either way."""
    rows = [{"cover_no": f"JZ{i}", "well_use": ["雨水", "污水"][i % 2], "well_depth_m": 0.5 + i} for i in range(5)]
    rows[3]["cover_no"] = None
    if spoiler:
        rows[2][spoiler[0]] = spoiler[1]
    columns = {name: [row[name] for row in rows] for name in rows[0]}
    problems = BatchProblems()
    clean = check_properties(manholes, columns, len(rows), problems)
    for i, row in enumerate(rows):
        expected, expected_problems = validate_properties(manholes, row)
        got = {k: v[i] for k, v in clean.items()}
        assert {k: v for k, v in got.items() if v == v} == \
            {f.name: expected.get(f.name) for f in manholes.all_fields if expected.get(f.name) == expected.get(f.name)}
        assert sorted(r.split(" ")[0] for r in problems.reasons.get(i, [])) == sorted(p.field for p in expected_problems)
    assert bool(problems.reasons) == refused


@pytest.mark.parametrize("geom", [
    Point(113.24, 35.22),
    Point(113.24, 35.22, 88.0),
    Point(10.0, 10.0),
    LineString([(113.24, 35.22), (113.25, 35.22)]),
    None,
])
def test_geometry_verdicts_match_conform_geometry(manholes, geom):
    problems = BatchProblems()
    out = conform_geometries(manholes, np.array([geom], dtype=object), DEFAULT_CITY_BOUNDS, problems)
    expected, expected_problems = conform_geometry(manholes, geom, DEFAULT_CITY_BOUNDS)
    assert bool(problems.reasons) == bool(expected_problems)
    if not expected_problems:
        assert out[0].equals(expected) and out[0].has_z == expected.has_z


def test_single_part_multilines_from_shapefiles_are_unwrapped(pipes):
    multi = shapely.MultiLineString([[(113.24, 35.22, 1.0), (113.25, 35.22, 2.0)]])
    problems = BatchProblems()
    out = conform_geometries(pipes, np.array([multi], dtype=object), DEFAULT_CITY_BOUNDS, problems)
    assert not problems.reasons and out[0].geom_type == "LineString" and out[0].has_z


def test_bow_tie_repair_depends_on_the_layer_type(registry):
    bow = Polygon([(113.24, 35.22), (113.241, 35.221), (113.241, 35.22), (113.24, 35.221), (113.24, 35.22)])
    p1 = BatchProblems()
    out = conform_geometries(registry["unit_grids"], np.array([bow], dtype=object), DEFAULT_CITY_BOUNDS, p1)
    assert not p1.reasons and p1.repaired == 1 and out[0].is_valid and out[0].geom_type == "MultiPolygon"
    p2 = BatchProblems()
    conform_geometries(registry["parking_bays"], np.array([bow], dtype=object), DEFAULT_CITY_BOUNDS, p2)
    assert "Self-intersection" in p2.reasons[0][0]


def test_frame_reprojects_xy_and_leaves_heights_alone():
    src = parse_crs_text("EPSG:4547", "given")
    frame = Frame(src, make_mapper(src, None), swapped=False, transform=None)
    line = LineString([(430806.0, 3899265.0, 101.25), (430900.0, 3899300.0, 100.75)])
    out = frame.apply(np.array([line, Point(430806.0, 3899265.0)], dtype=object))
    coords = shapely.get_coordinates(out[0], include_z=True)
    assert coords[:, 2].tolist() == [101.25, 100.75]
    assert coords[0, 0] == pytest.approx(113.24, abs=1e-5) and not out[1].has_z
