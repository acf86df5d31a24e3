"""Segments, corridors and grids through the Store, and asset assignment — on both backends."""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from geoapi.grids.assign import assign_all, install
from geoapi.grids.build import (
    all_features,
    stored_roads,
    validated,
    write_corridors,
    write_segments,
    write_unit_grids,
)
from geoapi.storage import FeatureQuery
from tests.grids.conftest import deg, metres

ACTOR = "test"


@pytest.fixture
def plan(plan):
    """The conftest plan with the grid/segment enricher on."""
    install(plan)
    return plan


def codes(store, layer, key):
    return sorted(f.props[key] for f in all_features(store, layer))


def manholes(n: int, seed: int, box=(0, -60, 1200, 60)):
    rng = np.random.default_rng(seed)
    xs, ys = rng.uniform(box[0], box[2], n), rng.uniform(box[1], box[3], n)
    return [({"well_use": "雨水"}, deg(shapely.Point(x, y))) for x, y in zip(xs, ys, strict=True)]


def test_builds_are_idempotent_and_keep_what_people_entered(plan) -> None:
    before = (codes(plan, "road_segments", "segment_code"), codes(plan, "road_corridors", "segment_code"))
    assert before[0] == ["R01-01", "R01-02", "R01-03", "R01-04", "R02-01", "R02-02", "R03-01"]
    assert before[1] == before[0]
    again = write_segments(plan, stored_roads(plan), actor=ACTOR)  # re-cut from the registry
    assert again == {"inserted": 0, "updated": 7, "deleted": 0}
    corr = write_corridors(plan, actor=ACTOR)
    assert corr == {"inserted": 0, "updated": 7, "deleted": 0}
    seg = plan.query("road_segments", FeatureQuery(filters={"segment_code": ["R01-01"]})).features[0]
    assert [c["name"] for c in seg.props["chiefs"]] == ["李娜", "王伟"]  # kept through the re-cut
    cor = plan.query("road_corridors", FeatureQuery(filters={"segment_code": ["R01-01"]})).features[0]
    assert (cor.props["chief_name"], cor.props["road_name"]) == ("李娜", "人民路")  # the day-to-day 路长


def test_stored_corridors_do_not_overlap(plan) -> None:
    polys = [metres(f.geometry) for f in all_features(plan, "road_corridors")]
    union = shapely.union_all(polys).area
    assert abs(sum(p.area for p in polys) - union) / union < 0.001


def test_every_asset_in_a_corridor_gets_that_segment(plan) -> None:
    corridors = {f.props["segment_code"]: f.geometry for f in all_features(plan, "road_corridors")}
    plan.bulk_write("manholes", validated(plan, "manholes", manholes(200, 1)), actor=ACTOR)
    checked = 0
    for f in all_features(plan, "manholes"):
        inside = [c for c, g in corridors.items() if g.contains(f.geometry)]
        if inside:
            assert f.props["road_segment"] == inside[0]
            checked += 1
        else:
            assert f.props["road_segment"] is None
    assert 80 < checked < 200  # about half: the points spread ±60 m, corridors reach 30 m


def test_every_asset_gets_the_grid_it_lies_in(plan) -> None:
    grids = {f.props["grid_code"]: f.geometry for f in all_features(plan, "unit_grids")}
    created = plan.create("manholes", *manholes(1, 2)[0], actor=ACTOR)
    expected = next(c for c, g in grids.items() if g.covers(created.geometry))
    assert created.props["grid_code"] == expected
    moved = plan.patch("manholes", created.id, {}, deg(shapely.Point(1150, 350)), actor=ACTOR)
    assert moved.props["grid_code"] != expected
    assert grids[moved.props["grid_code"]].covers(moved.geometry)
    assert moved.props["road_segment"] is None  # 350 m from any centreline


def test_a_line_goes_to_the_grid_holding_most_of_it(plan) -> None:
    grids = {f.props["grid_code"]: metres(f.geometry) for f in all_features(plan, "unit_grids")}
    line = shapely.LineString([(580, 200), (700, 200)])  # 20 m in 社区 001, 100 m in 社区 002
    z = shapely.force_3d(deg(line), 85.0)  # pipes carry elevations (PolyLineZ)
    f = plan.create("pipes", {"pipe_class": "排水"}, z, actor=ACTOR)
    share = {c: g.intersection(line).length for c, g in grids.items()}
    assert f.props["grid_code"] == max(share, key=share.get)
    assert f.props["grid_code"].startswith("410802001002")


def test_bulk_assign_fills_rows_written_before_the_grids(store, roads, communities, district) -> None:
    store.bulk_write("manholes", validated(store, "manholes", manholes(50, 3, box=(0, -20, 1200, 20))),
                     actor=ACTOR)
    assert {f.props["road_segment"] for f in all_features(store, "manholes")} == {None}
    store.bulk_write("districts", validated(store, "districts", [
        ({"admin_code": "410802", "name": "解放区", "level": "市辖区"}, district)]), actor=ACTOR)
    write_segments(store, roads, actor=ACTOR)
    # before corridors exist: nearest centreline within frontage_m
    report = assign_all(store, ["manholes"])
    assert report["manholes"] == {"rows": 50, "grid": 0, "segment": 50}
    write_corridors(store, actor=ACTOR)
    write_unit_grids(store, "410802", actor=ACTOR, communities=communities)
    report = assign_all(store)
    assert report["manholes"] == {"rows": 50, "grid": 50, "segment": 50}
    corridors = {f.props["segment_code"]: f.geometry for f in all_features(store, "road_corridors")}
    for f in all_features(store, "manholes"):
        assert corridors[f.props["road_segment"]].covers(f.geometry)
