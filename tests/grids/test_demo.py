"""The demo's 路长制 layers: corridors and 公示牌 built from its segments, every asset assigned."""

from __future__ import annotations

import pytest
import shapely

from geoapi.grids.assign import assignable
from geoapi.grids.build import all_features
from geoapi.grids.metric import Frame

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from geoapi.demo.load import load_demo
    from geoapi.settings import Settings
    from geoapi.storage import Store

    d = tmp_path_factory.mktemp("demo")
    store = Store.open(Settings(database_url=f"sqlite:///{d / 'demo.sqlite'}", data_dir=d))
    store.upgrade()
    load_demo(store, scale=500, seed=7, echo=lambda _: None)
    yield store
    store.close()


def test_every_demo_asset_within_a_corridor_gets_that_segment(demo) -> None:
    corridors = all_features(demo, "road_corridors")
    codes = [f.props["segment_code"] for f in corridors]
    tree = shapely.STRtree([f.geometry for f in corridors])
    checked = 0
    for layer in demo.registry:
        if not assignable(layer) or not layer.is_point:
            continue
        for f in all_features(demo, layer.id):
            hits = tree.query(f.geometry, predicate="within")
            assert f.props["road_segment"] == (codes[hits[0]] if len(hits) else None), (layer.id, f.id)
            checked += len(hits) > 0
    assert checked > 500


def test_demo_corridors_cover_every_segment_without_overlap(demo) -> None:
    segments = {f.props["segment_code"] for f in all_features(demo, "road_segments")}
    corridors = all_features(demo, "road_corridors")
    assert {f.props["segment_code"] for f in corridors} == segments
    frame = Frame.around([f.geometry for f in corridors])
    polys = [frame.to_m(f.geometry) for f in corridors]
    union = shapely.union_all(polys).area
    assert abs(sum(p.area for p in polys) - union) / union < 0.001


def test_each_demo_segment_has_a_signboard_showing_its_chiefs(demo) -> None:
    segments = {f.props["segment_code"]: f.props for f in all_features(demo, "road_segments")}
    signs = all_features(demo, "signboards")
    assert {s.props["segment_code"] for s in signs} == set(segments)
    s = signs[0].props
    chiefs = segments[s["segment_code"]]["chiefs"]
    assert all(c["name"] in s["chief_names"] for c in chiefs) and s["supervise_phone"] == "12319"
