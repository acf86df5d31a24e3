"""conform_geometry: type, Multi promotion, validity, Z and the city bounds."""

from __future__ import annotations

import shapely
from shapely.geometry import LineString, MultiPolygon, Point, Polygon

from layers import LayerRegistry
from layers.validate import conform_geometry

Bounds = tuple[float, float, float, float]
SQUARE = Polygon([(113.20, 35.20), (113.21, 35.20), (113.21, 35.21), (113.20, 35.21)])
BOWTIE = Polygon([(113.20, 35.20), (113.21, 35.21), (113.21, 35.20), (113.20, 35.21)])


def test_good_point_passes_unchanged(registry: LayerRegistry, jiaozuo_bounds: Bounds) -> None:
    geom, problems = conform_geometry(registry["manholes"], Point(113.24, 35.22), jiaozuo_bounds)
    assert problems == [] and geom.equals(Point(113.24, 35.22))


def test_wrong_type_is_rejected(registry: LayerRegistry, jiaozuo_bounds: Bounds) -> None:
    geom, problems = conform_geometry(registry["manholes"], LineString([(113.2, 35.2), (113.3, 35.3)]),
                                      jiaozuo_bounds)
    assert geom is None
    assert "takes Point, got LineString" in problems[0].message


def test_polygon_is_promoted_to_multipolygon(registry: LayerRegistry, jiaozuo_bounds: Bounds) -> None:
    geom, problems = conform_geometry(registry["unit_grids"], SQUARE, jiaozuo_bounds)
    assert problems == []
    assert isinstance(geom, MultiPolygon) and geom.geoms[0].equals(SQUARE)


def test_linestring_is_promoted_for_road_segments(registry: LayerRegistry, jiaozuo_bounds: Bounds) -> None:
    geom, problems = conform_geometry(registry["road_segments"], LineString([(113.2, 35.2), (113.3, 35.2)]),
                                      jiaozuo_bounds)
    assert problems == [] and geom.geom_type == "MultiLineString"


def test_multipolygon_is_not_demoted(registry: LayerRegistry, jiaozuo_bounds: Bounds) -> None:
    geom, problems = conform_geometry(registry["parking_bays"], MultiPolygon([SQUARE]), jiaozuo_bounds)
    assert geom is None and "takes Polygon" in problems[0].message


def test_swapped_lon_lat_is_rejected_with_a_hint(registry: LayerRegistry, jiaozuo_bounds: Bounds) -> None:
    _, problems = conform_geometry(registry["toilets"], Point(35.22, 113.24), jiaozuo_bounds)
    assert len(problems) == 1
    assert "outside the city bounds" in problems[0].message and "swapped" in problems[0].message


def test_far_away_point_has_no_swap_hint(registry: LayerRegistry, jiaozuo_bounds: Bounds) -> None:
    _, problems = conform_geometry(registry["toilets"], Point(116.4, 39.9), jiaozuo_bounds)
    assert "outside the city bounds" in problems[0].message and "swapped" not in problems[0].message


def test_invalid_polygon_is_repaired_when_the_repair_fits(registry: LayerRegistry, jiaozuo_bounds: Bounds) -> None:
    geom, problems = conform_geometry(registry["unit_grids"], BOWTIE, jiaozuo_bounds)
    assert problems == []
    assert geom.is_valid and geom.geom_type == "MultiPolygon" and len(geom.geoms) == 2


def test_invalid_polygon_is_rejected_when_the_repair_changes_type(registry: LayerRegistry,
                                                                  jiaozuo_bounds: Bounds) -> None:
    _, problems = conform_geometry(registry["parking_bays"], BOWTIE, jiaozuo_bounds)
    assert len(problems) == 1 and "invalid geometry" in problems[0].message


def test_empty_geometry_is_rejected(registry: LayerRegistry, jiaozuo_bounds: Bounds) -> None:
    geom, problems = conform_geometry(registry["toilets"], Point(), jiaozuo_bounds)
    assert geom is None and problems[0].field == "geometry"


def test_z_is_kept_for_pipes_and_dropped_elsewhere(registry: LayerRegistry, jiaozuo_bounds: Bounds) -> None:
    pipe = LineString([(113.2, 35.2, 98.5), (113.201, 35.2, 98.1)])
    geom, problems = conform_geometry(registry["pipes"], pipe, jiaozuo_bounds)
    assert problems == [] and geom.has_z
    geom, _ = conform_geometry(registry["manholes"], Point(113.2, 35.2, 99.0), jiaozuo_bounds)
    assert not geom.has_z
    assert shapely.equals(geom, Point(113.2, 35.2))
