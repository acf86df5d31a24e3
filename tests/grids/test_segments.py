"""Cutting centrelines into 路长制 segments."""

from __future__ import annotations

from geoapi.grids.segments import RoadLine, split_roads
from tests.grids.conftest import metres


def by_code(rows):
    return {p["segment_code"]: p for p, _ in rows}


def test_roads_are_cut_at_junctions_and_at_the_maximum_length(roads) -> None:
    segs = by_code(split_roads(roads, max_length_m=500))
    assert sorted(c for c in segs if c.startswith("R01")) == ["R01-01", "R01-02", "R01-03", "R01-04"]
    assert [round(segs[f"R01-0{i}"]["length_m"]) for i in range(1, 5)] == [300, 300, 300, 300]
    assert sorted(c for c in segs if c.startswith("R02")) == ["R02-01", "R02-02"]
    assert list(c for c in segs if c.startswith("R03")) == ["R03-01"]


def test_start_and_end_name_the_crossing_roads(roads) -> None:
    segs = by_code(split_roads(roads, max_length_m=500))
    assert (segs["R01-01"]["start_desc"], segs["R01-01"]["end_desc"]) == ("人民路西端", "人民路与民主路交叉口")
    assert segs["R01-02"]["end_desc"] == "人民路K0+600"  # the length cut between two junctions
    assert segs["R01-03"]["start_desc"] == "人民路K0+600"
    assert segs["R01-04"]["start_desc"] == "人民路与焦东路交叉口"
    # 民主路 was digitised north→south; segments still run south→north
    assert (segs["R02-01"]["start_desc"], segs["R02-01"]["end_desc"]) == ("民主路南端", "民主路与人民路交叉口")
    assert (segs["R03-01"]["start_desc"], segs["R03-01"]["end_desc"]) == ("焦东路与人民路交叉口", "焦东路北端")


def test_the_maximum_length_is_configurable(roads) -> None:
    segs = split_roads(roads, max_length_m=200)
    assert all(p["length_m"] <= 200.01 for p, _ in segs)
    assert len([p for p, _ in segs if p["road_code"] == "R01"]) == 7  # spans 300, 600, 300 m → 2 + 3 + 2


def test_segmenting_is_idempotent_and_ignores_digitising_direction(roads) -> None:
    first = split_roads(roads)
    again = split_roads(list(reversed(roads)))
    flipped = [RoadLine(r.code, r.name, r.grade, r.geometry.reverse()) for r in roads]
    assert [p for p, _ in first] == [p for p, _ in again] == [p for p, _ in split_roads(flipped)]
    assert all(g.equals_exact(h, 1e-9) for (_, g), (_, h) in zip(first, split_roads(flipped), strict=True))


def test_segments_are_multilines_that_rebuild_the_road(roads) -> None:
    rows = split_roads(roads)
    assert {g.geom_type for _, g in rows} == {"MultiLineString"}
    total = sum(metres(g).length for p, g in rows if p["road_code"] == "R01")
    assert abs(total - 1200) < 0.5
