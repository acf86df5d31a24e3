"""A small synthetic street plan near 焦作 (built in metres, stored in EPSG:4490).

    民主路 (x=300, y -400…400)     焦东路 (x=900, y 0…500, a T-junction on 人民路)
    人民路 (y=0, x 0…1200): cut at 300 and 900, and the 600 m middle in two → 4 segments
"""

from __future__ import annotations

import pytest
import shapely
from shapely import LineString

from geoapi.grids.build import validated, write_corridors, write_segments, write_unit_grids
from geoapi.grids.metric import Frame
from geoapi.grids.segments import RoadLine
from geoapi.grids.unitgrids import Community
from geoapi.storage import FeatureQuery

FRAME = Frame(113.2)
X0, Y0 = FRAME.to_m(shapely.Point(113.2, 35.2)).coords[0]


def deg(geom):
    """Local metres around (113.2°E, 35.2°N) → EPSG:4490."""
    return FRAME.to_deg(shapely.affinity.translate(geom, X0, Y0))


def metres(geom):
    return shapely.affinity.translate(FRAME.to_m(geom), -X0, -Y0)


@pytest.fixture
def roads() -> list[RoadLine]:
    return [
        RoadLine("R01", "人民路", "主干路", deg(LineString([(0, 0), (600, 0), (1200, 0)]))),
        RoadLine("R02", "民主路", "次干路", deg(LineString([(300, 400), (300, -400)]))),  # digitised N→S
        RoadLine("R03", "焦东路", "支路", deg(LineString([(900, 0), (900, 500)]))),
    ]


@pytest.fixture
def communities() -> list[Community]:
    """Two 社区 of one 街道 side by side, split at x=600."""
    return [
        Community("410802001001", deg(shapely.box(0, -400, 600, 400)), "和平社区"),
        Community("410802001002", deg(shapely.box(600, -400, 1200, 400)), "胜利社区"),
    ]


@pytest.fixture
def district():
    return deg(shapely.box(-200, -600, 1400, 700))


@pytest.fixture
def plan(store, roads, communities, district):
    """District, segments (with 路长 and patrol rule on R01-01), corridors and unit grids stored."""
    store.bulk_write("districts", validated(store, "districts", [
        ({"admin_code": "410802", "name": "解放区", "level": "市辖区"}, district)]), actor="test")
    write_segments(store, roads, actor="test")
    seg = store.query("road_segments", FeatureQuery(filters={"segment_code": ["R01-01"]})).features[0]
    store.patch("road_segments", seg.id, {
        "chiefs": [{"level": "街道级", "name": "李娜", "title": "焦西街道办事处主任", "phone": "13800000002"},
                   {"level": "区级", "name": "王伟", "title": "解放区副区长", "phone": "13800000001"}],
        "patrol_rule": {"区级": "周", "街道级": "日"}}, actor="test")
    write_corridors(store, actor="test")
    write_unit_grids(store, "410802", actor="test", communities=communities)
    return store
