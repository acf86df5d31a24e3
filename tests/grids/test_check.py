"""The unit-grid check report: codes, self-intersections, overlaps, gaps."""

from __future__ import annotations

import shapely

from geoapi.grids.check import check_unit_grids
from tests.grids.conftest import deg


def square(x: float, y: float, size: float = 100.0):
    return deg(shapely.box(x, y, x + size, y + size))


def kinds(report) -> list[str]:
    return [p.kind for p in report.problems]


def test_clean_grids_pass_and_14_digit_legacy_codes_are_accepted() -> None:
    rows = [({"grid_code": "410802001001001"}, square(0, 0)), ({"grid_code": "41080200100102"}, square(100, 0))]
    report = check_unit_grids(rows)
    assert report.ok and report.problems == []


def test_a_malformed_code_is_an_error_naming_the_row_and_the_rule() -> None:
    rows = [({"grid_code": "41080200100"}, square(0, 0)), ({"grid_code": "41080200100100A"}, square(100, 0)),
            ({"grid_code": "410802001001003"}, square(200, 0))]
    report = check_unit_grids(rows)
    assert not report.ok
    assert kinds(report) == ["malformed_code", "malformed_code"]
    assert "row 0" in report.problems[0].message and "15 digits" in report.problems[0].message
    assert report.problems[1].grid_code == "41080200100100A"


def test_a_self_intersecting_grid_is_an_error_with_its_place() -> None:
    bowtie = deg(shapely.Polygon([(0, 0), (100, 100), (100, 0), (0, 100)]))
    report = check_unit_grids([({"grid_code": "410802001001001"}, bowtie)])
    assert kinds(report) == ["invalid_geometry"]
    p = report.problems[0]
    assert p.severity == "error" and "self-intersects" in p.message and p.grid_code == "410802001001001"
    lon, lat = p.location
    centre = deg(shapely.Point(50, 50))
    assert abs(lon - centre.x) < 1e-5 and abs(lat - centre.y) < 1e-5


def test_overlaps_and_duplicate_codes_are_errors_gaps_are_warnings() -> None:
    ring = [square(x, y) for x, y in [(0, 0), (100, 0), (200, 0), (0, 100), (200, 100), (0, 200), (100, 200),
                                      (200, 200)]]  # 3×3 with the middle missing: a gap
    rows = [({"grid_code": f"410802001001{i + 1:03d}"}, g) for i, g in enumerate(ring)]
    rows.append(({"grid_code": "410802001001001"}, square(50, 250)))  # duplicate code, overlaps two
    report = check_unit_grids(rows)
    assert sorted(kinds(report)) == ["duplicate_code", "gap", "overlap", "overlap"]
    gap = next(p for p in report.problems if p.kind == "gap")
    assert gap.severity == "warning" and "10000.0 m²" in gap.message.replace("9999.9", "10000.0")
    assert report.as_dict()["errors"] == 3
