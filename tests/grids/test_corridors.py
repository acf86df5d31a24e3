"""路段责任区: nearest-centreline corridors without overlaps or gaps."""

from __future__ import annotations

import shapely

from geoapi.grids.corridors import SegmentLine, build_corridors
from geoapi.grids.segments import split_roads
from tests.grids.conftest import deg, metres


def corridors(roads, district=None, frontage=30.0):
    segs = split_roads(roads)
    lines = [SegmentLine(p["segment_code"], g, frontage, district, {"road_name": p["road_name"]}) for p, g in segs]
    return segs, {p["segment_code"]: metres(g) for p, g in build_corridors(lines)}


def test_adjacent_corridors_share_boundaries_without_overlap(roads) -> None:
    _, cors = corridors(roads)
    polys = list(cors.values())
    union = shapely.union_all(polys).area
    total = sum(p.area for p in polys)
    assert abs(total - union) / union < 0.001
    # consecutive segments of 人民路 meet along an edge (no gap along the road)
    shared = shapely.intersection(cors["R01-02"], cors["R01-03"])
    assert shared.length > 50 and shared.area < 1.0


def test_the_centreline_is_covered_end_to_end(roads) -> None:
    segs, cors = corridors(roads)
    union = shapely.union_all(list(cors.values())).buffer(0.01)
    for p, g in segs:
        assert union.covers(metres(g)), p["segment_code"]


def test_a_corridor_reaches_frontage_m_and_no_further(roads) -> None:
    segs, cors = corridors(roads, frontage=30.0)
    c = cors["R01-01"]
    assert c.contains(shapely.Point(150, 29)) and c.contains(shapely.Point(150, -29))
    assert not c.contains(shapely.Point(150, 31))
    # near the junction a point belongs to the nearer centreline
    assert cors["R02-02"].contains(shapely.Point(305, 25))   # 5 m from 民主路, 25 m from 人民路
    assert cors["R01-01"].contains(shapely.Point(280, 5))    # 5 m from 人民路, 20 m from 民主路


def test_corridors_are_clipped_to_the_district(roads) -> None:
    district = deg(shapely.box(-200, -10, 1400, 700))  # cuts 人民路's south side at y = -10
    _, cors = corridors(roads, district)
    assert min(c.bounds[1] for c in cors.values()) > -10.5
    assert "R02-01" in cors  # the part of 民主路 south of the line keeps what lies inside
