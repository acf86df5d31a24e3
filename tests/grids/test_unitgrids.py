"""单元网格 generation: sizes, boundaries and DB11/T 2157 codes."""

from __future__ import annotations

import re

import numpy as np
import pytest
import shapely

from geoapi.grids.check import check_unit_grids
from geoapi.grids.unitgrids import Community, GridGenerationError, generate_unit_grids
from tests.grids.conftest import metres


@pytest.fixture
def grids(roads, communities, district):
    return generate_unit_grids(communities, [r.geometry for r in roads], district=district)


def test_codes_are_community_code_plus_a_three_digit_sequence(grids, communities) -> None:
    for comm in communities:
        codes = [p["grid_code"] for p, _ in grids if p["community_code"] == comm.code]
        assert codes == [f"{comm.code}{i:03d}" for i in range(1, len(codes) + 1)]
        assert all(re.fullmatch(r"\d{15}", c) for c in codes)
    p = grids[0][0]
    assert (p["admin_code"], p["street_code"]) == ("410802", "410802001")


def test_sequence_runs_west_to_east_then_north_to_south(grids, communities) -> None:
    """Of two grids, the lower 顺序码 is clearly further north, or in the same row and further west."""
    for comm in communities:
        pts = [metres(g).representative_point() for p, g in grids if p["community_code"] == comm.code]
        for a, b in zip(pts, pts[1:], strict=False):
            assert a.y > b.y + 50 or (abs(a.y - b.y) <= 50 and a.x < b.x)


def test_cells_are_about_ten_thousand_square_metres(grids) -> None:
    areas = np.array([metres(g).area for _, g in grids])
    assert 0.3 * 10_000 <= areas.min() and areas.max() <= 2.5 * 10_000
    assert 7_000 < np.median(areas) < 14_000
    assert all(abs(p["area_m2"] - a) < 1 for (p, _), a in zip(grids, areas, strict=True))


def test_cells_never_cross_a_community_or_a_road(grids, roads, communities) -> None:
    comm = {c.code: metres(c.geometry).buffer(0.01) for c in communities}
    assert all(comm[p["community_code"]].covers(metres(g)) for p, g in grids)
    lines = shapely.union_all([metres(r.geometry) for r in roads])
    crossing = [p["grid_code"] for p, g in grids if shapely.intersection(metres(g).buffer(-0.05), lines).length > 0.01]
    assert crossing == []


def test_generated_grids_tile_the_communities_cleanly(grids, communities) -> None:
    assert check_unit_grids(grids).problems == []
    covered = sum(metres(g).area for _, g in grids)
    assert abs(covered - sum(metres(c.geometry).area for c in communities)) < 1.0


def test_a_community_code_that_is_not_12_digits_is_refused(roads) -> None:
    with pytest.raises(GridGenerationError, match="12 digits"):
        generate_unit_grids([Community("4108020011", shapely.box(113.2, 35.2, 113.21, 35.21))], [])
