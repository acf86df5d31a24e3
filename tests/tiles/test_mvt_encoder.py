"""The vectorised MVT encoder (tiles.mvt.encode) against mapbox-vector-tile (encode_with_mapbox).

Decoded tiles must be equal; where properties come in one key order the bytes are equal too.
"""

from __future__ import annotations

import math

import mapbox_vector_tile
import numpy as np
import pytest
import shapely
from mapbox_vector_tile.Mapbox import vector_tile_pb2
from shapely import LineString, MultiLineString, MultiPoint, MultiPolygon, Point, Polygon

from tiles import pbf
from tiles.grid import TileId, mercator_bounds
from tiles.mvt import TileLayer, encode, encode_with_mapbox, quantize

SQUARE_WITH_HOLE = Polygon([(0, 0), (100, 0), (100, 100), (0, 100)], [[(10, 10), (10, 20), (20, 20), (20, 10)]])
GEOMETRIES = [
    Point(1, 2),
    Point(4095, 0),
    Point(-30, 4150),  # in the buffer, beyond the edge
    MultiPoint([(1, 1), (1, 1), (5, 9)]),
    LineString([(0, 0), (10, 10), (10, 10), (20, 5)]),
    MultiLineString([[(0, 0), (1, 1)], [(3, 3), (3, 3)], [(5, 5), (9, 1)]]),  # middle part collapses
    SQUARE_WITH_HOLE,
    Polygon([(0, 0), (0, 50), (50, 50), (50, 0)]),  # counter-clockwise in y-up: gets reoriented
    MultiPolygon([SQUARE_WITH_HOLE, Polygon([(200, 200), (300, 200), (300, 300)])]),
    Polygon([(0, 0), (10, 10), (10, 0), (0, 10)]),  # a bow-tie: invalid, repaired the same way
    Polygon([(0, 0), (0.4, 0), (0.4, 0.4)]),  # nothing left on the grid: dropped by both
    LineString([(5, 5), (5.2, 5.1)]),  # collapses to a point: dropped by both
]
PROPERTIES = [
    {"status": "完好", "well_use": "雨水", "depth": 1.5, "is_smart": True, "n": 3, "note": None},
    {"status": "破损", "well_use": "污水", "depth": None, "is_smart": False, "n": -5, "note": "井盖破损,下沉"},
    {"status": "丢失", "well_use": None, "depth": -0.0, "is_smart": None, "n": 2**40, "note": ""},
    {"status": "完好", "well_use": "雨水", "depth": 2.25, "is_smart": True, "n": 6, "note": None},
    {"status": "占用", "well_use": "给水", "depth": None, "is_smart": None, "n": -(2**62), "note": "🚧 施工"},
    {"status": "完好", "well_use": "雨水", "depth": 3.75, "is_smart": False, "n": 3, "note": None},
    {"status": "破损", "well_use": None, "depth": 1e-9, "is_smart": True, "n": None, "note": "x"},
    {"status": None, "well_use": None, "depth": None, "is_smart": None, "n": None, "note": None},
    {"status": "完好", "well_use": "中水", "depth": 7.5, "is_smart": False, "n": 12, "note": "雨水"},
    {"status": "丢失", "well_use": "雨水", "depth": None, "is_smart": True, "n": 1, "note": None},
    {"status": "完好", "well_use": "雨水", "depth": None, "is_smart": None, "n": 4, "note": None},
    {"status": "完好", "well_use": "路灯", "depth": 0.5, "is_smart": None, "n": 5, "note": None},
]


def _layer(name: str = "manholes", geoms=GEOMETRIES, props=PROPERTIES) -> TileLayer:
    return TileLayer(name, np.array(geoms, dtype=object), np.arange(len(geoms), dtype=np.int64) * 7, list(props))


def _decoded(data: bytes) -> dict:
    """Decoded, with each property value paired with its type (so 1 and 1.0 differ)."""
    out = mapbox_vector_tile.decode(data)
    for layer in out.values():
        for f in layer["features"]:
            f["properties"] = {k: (type(v).__name__, v) for k, v in f["properties"].items()}
    return out


def test_mixed_geometries_and_properties_encode_to_the_same_bytes():
    layers = [_layer(), _layer("pipes", GEOMETRIES[::-1], PROPERTIES[::-1])]
    new, old = encode(layers), encode_with_mapbox(layers)
    assert _decoded(new) == _decoded(old)
    assert new == old


def test_features_that_vanish_on_the_grid_are_dropped_like_the_reference():
    names = {f["id"] for f in _decoded(encode([_layer()]))["manholes"]["features"]}
    assert names == {i * 7 for i in range(len(GEOMETRIES) - 2)}


def test_chinese_strings_none_and_every_value_type_survive():
    tile = mapbox_vector_tile.decode(encode([_layer()]))
    feats = {f["id"]: f["properties"] for f in tile["manholes"]["features"]}
    assert feats[0] == {"status": "完好", "well_use": "雨水", "depth": 1.5, "is_smart": True, "n": 3}
    assert feats[7] == {"status": "破损", "well_use": "污水", "is_smart": False, "n": -5, "note": "井盖破损,下沉"}
    assert feats[14] == {"status": "丢失", "depth": -0.0, "n": 2**40, "note": ""}
    assert math.copysign(1, feats[14]["depth"]) == -1
    assert feats[28]["note"] == "🚧 施工" and feats[28]["n"] == -(2**62)
    assert feats[49] == {}


def test_column_properties_equal_per_feature_dicts():
    by_rows = _layer()
    names = list(PROPERTIES[0])
    columns = {n: [p[n] for p in PROPERTIES] for n in names}
    columns["n"] = np.array([-1 if p["n"] is None else p["n"] for p in PROPERTIES], dtype=np.int64)
    by_cols = TileLayer("manholes", by_rows.geoms, by_rows.ids, columns=columns)
    rows_fixed = [p | {"n": -1 if p["n"] is None else p["n"]} for p in PROPERTIES]
    assert encode([by_cols]) == encode_with_mapbox([_layer(props=rows_fixed)])


def test_key_order_differing_between_features_still_decodes_the_same():
    props = [dict(reversed(list(p.items()))) if i % 2 else p for i, p in enumerate(PROPERTIES)]
    layer = _layer(props=props)
    assert _decoded(encode([layer])) == _decoded(encode_with_mapbox([layer]))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_quantized_features_match(seed):
    """Real inputs: random points, lines and polygons (with holes) through quantize()."""
    rng = np.random.default_rng(seed)
    tile = TileId(16, 53_389, 26_064)
    minx, miny, maxx, maxy = mercator_bounds(tile)
    size = maxx - minx
    n = 300
    cx, cy = rng.uniform(minx - size * 0.1, maxx + size * 0.1, n), rng.uniform(miny - size * 0.1, maxy + size * 0.1, n)
    r = rng.uniform(0.5, size / 4, n)
    points = shapely.points(cx, cy)
    lines = [LineString(np.column_stack([x + rng.normal(0, s, 6).cumsum(), y + rng.normal(0, s, 6).cumsum()]))
             for x, y, s in zip(cx, cy, r, strict=True)]
    polys = [shapely.Point(x, y).buffer(s, quad_segs=3).difference(shapely.Point(x, y).buffer(s / 3, quad_segs=2))
             for x, y, s in zip(cx, cy, r, strict=True)]
    geoms, keep = quantize(tile, np.concatenate([points, np.array(lines, dtype=object), np.array(polys, dtype=object)]))
    kinds = np.array(["雨水", "污水", "给水", None], dtype=object)
    props = [{"status": kinds[i % 4], "n": int(i), "w": i / 3 + 0.1} for i in np.flatnonzero(keep)]
    layer = TileLayer("mixed", geoms, np.flatnonzero(keep), props)
    new, old = encode([layer]), encode_with_mapbox([layer])
    assert len(layer) > 300
    assert _decoded(new) == _decoded(old)
    assert new == old


def test_values_of_different_types_are_kept_apart():
    """The one deliberate difference: mapbox-vector-tile files 1.0 under an earlier int 1."""
    layer = _layer(geoms=[Point(1, 1), Point(2, 2), Point(3, 3)], props=[{"v": 1}, {"v": 1.0}, {"v": True}])
    got = [f["properties"]["v"] for f in _decoded(encode([layer]))["manholes"]["features"]]
    assert got == [("int", 1), ("float", 1.0), ("bool", True)]


def test_empty_input_gives_no_bytes_and_bad_names_are_refused():
    assert encode([TileLayer("m", np.empty(0, dtype=object), np.empty(0, dtype=np.int64))]) == b""
    with pytest.raises(ValueError, match="repeated"):
        encode([_layer(), _layer()])


def test_geometry_collections_are_refused_like_the_reference():
    gc = shapely.GeometryCollection([Point(1, 1), LineString([(0, 0), (5, 5)])])
    with pytest.raises(ValueError):
        encode_with_mapbox([_layer(geoms=[gc], props=[{}])])
    with pytest.raises(ValueError, match="cannot encode"):
        encode([_layer(geoms=[gc], props=[{}])])


@pytest.mark.parametrize("value", [0, 1, 127, 128, 300, 2**32, 2**63 - 1, -1, -(2**63)])
def test_varints_match_protobuf(value):
    msg = vector_tile_pb2.tile.value(int_value=value)
    expected = msg.SerializeToString()[1:]  # drop the field key
    assert pbf.write_varints(np.array([value], dtype=np.int64).view(np.uint64)) == expected
    assert pbf.varint(value) == expected


def test_ranges_skip_empty_segments():
    got = pbf.ranges(np.array([5, 0, 10, 2]), np.array([3, 0, 2, 1]))
    assert got.tolist() == [5, 6, 7, 10, 11, 2]
