"""Street network, crossings and the district extract."""

from __future__ import annotations

import json

from geoapi.demo.extract_districts import DISTRICTS, OUT_FILE, extract
from geoapi.demo.streets import GRADES, build_roads, intersections
from geoapi.grids.segments import crossing_label


def test_roads_have_codes_names_grades_and_lie_in_the_centre():
    roads = build_roads()
    assert len({r.code for r in roads}) == len(roads)
    assert {"人民路", "解放路", "塔南路", "民主路", "焦东路", "山阳路"} <= {r.name for r in roads}
    for r in roads:
        assert r.grade in GRADES
        x0, y0, x1, y1 = r.centreline.bounds
        assert 113.14 <= x0 and x1 <= 113.41 and 35.16 <= y0 and y1 <= 35.30, r.name


def test_crossings_name_both_roads():
    pairs = {(c.name_a, c.name_b) for c in intersections()} | {(c.name_b, c.name_a) for c in intersections()}
    assert ("人民路", "民主路") in pairs
    assert crossing_label("人民路", "民主路") == "人民路与民主路交叉口"


def test_extract_keeps_the_ten_districts_with_our_properties():
    src = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": f"d{c}", "gb": f"156{c}"},
         "geometry": {"type": "Polygon", "coordinates": [[[113.1234567, 35.1], [113.2, 35.1], [113.2, 35.2], [113.1234567, 35.1]]]}}
        for c in [*DISTRICTS, "410100"]]}
    out = extract(src)
    assert [f["properties"]["admin_code"] for f in out["features"]] == sorted(DISTRICTS)
    assert out["features"][0]["geometry"]["coordinates"][0][0] == [113.123457, 35.1]
    assert out["features"][0]["properties"]["parent_code"] == "410800"


def test_committed_district_file_is_complete():
    data = json.loads(OUT_FILE.read_text(encoding="utf-8"))
    props = {f["properties"]["admin_code"]: f["properties"] for f in data["features"]}
    assert set(props) == set(DISTRICTS)
    assert props["410802"]["name"] == "解放区" and props["410882"]["level"] == "县级市"
