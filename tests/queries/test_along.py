"""GET /along: every feature within a metric corridor of a road segment or a drawn line."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from pyproj import CRS, Transformer

from geoapi.storage import FeatureQuery

LOCAL = CRS.from_proj4("+proj=aeqd +lat_0=35.22 +lon_0=113.23 +ellps=GRS80 +units=m")
TO_LOCAL = Transformer.from_crs(4490, LOCAL, always_xy=True)


def metric(geom):
    return shapely.transform(geom, lambda c: np.column_stack(TO_LOCAL.transform(c[:, 0], c[:, 1])))


def brute_force(rows, line, buffer_m):
    local_line = metric(shapely.segmentize(line, 0.0005))
    return {p["cover_no"] for p, g in rows if local_line.distance(metric(g)) <= buffer_m}


def test_segment_corridor_matches_brute_force(client, manholes, road_segments):
    r = client.get("/along", params={"layer": "manholes", "segment": "JFL-01", "buffer_m": 300})
    assert r.status_code == 200, r.text
    got = {f["properties"]["cover_no"] for f in r.json()["features"]}
    want = brute_force(manholes, road_segments[0][1], 300)
    # the corridor's arcs are polygons of 64 sides: allow a sliver at the very edge
    assert len(want ^ got) <= 1 and len(want) > 3
    chain = [f["properties"]["chainage_m"] for f in r.json()["features"]]
    assert chain == sorted(chain)
    assert all(f["properties"]["offset_m"] <= 300.5 for f in r.json()["features"])
    assert r.json()["route"]["segment_code"] == "JFL-01"


def test_drawn_line_as_pairs_or_wkt(client, manholes):
    pairs = "113.22,35.20;113.26,35.24"
    a = client.get("/along", params={"layer": "manholes", "line": pairs, "buffer_m": 200}).json()
    b = client.get("/along", params={"layer": "manholes", "line": "LINESTRING(113.22 35.20, 113.26 35.24)",
                                     "buffer_m": 200}).json()
    assert [f["id"] for f in a["features"]] == [f["id"] for f in b["features"]]
    want = brute_force(manholes, shapely.LineString([(113.22, 35.20), (113.26, 35.24)]), 200)
    assert len(want ^ {f["properties"]["cover_no"] for f in a["features"]}) <= 1


def test_segment_by_id(client, store, manholes, road_segments):
    sid = store.query("road_segments", FeatureQuery(filters={"segment_code": ["RMR-01"]})).features[0].id
    r = client.get("/along", params={"layer": "manholes", "segment": str(sid), "buffer_m": 100})
    assert r.status_code == 200 and r.json()["route"]["segment_code"] == "RMR-01"


@pytest.mark.parametrize(("params", "status"), [
    ({"segment": "NOPE"}, 404),
    ({"line": "113.2,35.2"}, 400),
    ({"line": "POINT(1 2)"}, 400),
    ({"segment": "JFL-01", "line": "113.2,35.2;113.3,35.3"}, 400),
    ({"segment": "JFL-01", "buffer_m": -1}, 400),
    ({"segment": "'; DROP TABLE manholes; --"}, 404),
    ({"line": "'; DROP TABLE manholes; --"}, 400),
])
def test_bad_along_requests(client, store, road_segments, params, status):
    r = client.get("/along", params={"layer": "manholes", **params})
    assert r.status_code == status, r.text
    assert store.count("road_segments") == 2
