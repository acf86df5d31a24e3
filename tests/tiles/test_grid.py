"""Which tiles a geometry touches (the invalidation set), and grid checks."""

from __future__ import annotations

import numpy as np
import pytest
from shapely import LineString, Point

from tests.tiles.conftest import tile_at
from tiles.grid import TileId, TileRangeError, check_tile, mercator_bounds, mercator_to_lonlat, tiles_touching


def test_a_point_in_the_middle_touches_one_tile_per_zoom():
    tiles, whole = tiles_touching(np.array([Point(113.2400, 35.2100)]), range(10, 23))
    assert not whole
    assert {t.z for t in tiles} == set(range(10, 23))
    assert tile_at(113.2400, 35.2100, 16) in tiles


def test_a_point_within_the_buffer_of_an_edge_touches_the_neighbour():
    t = tile_at(113.2400, 35.2100, 16)
    minx, miny, maxx, maxy = mercator_bounds(t)
    inside_buffer = mercator_to_lonlat(maxx - (maxx - minx) * 10 / 4096, (miny + maxy) / 2)
    tiles, _ = tiles_touching(np.array([Point(*inside_buffer)]), range(16, 17))
    assert tiles == {t, TileId(16, t.x + 1, t.y)}


def test_a_diagonal_line_skips_the_corners_of_its_box():
    a, b = tile_at(113.20, 35.20, 14), tile_at(113.26, 35.25, 14)
    line = LineString([(113.20, 35.20), (113.26, 35.25)])
    tiles, _ = tiles_touching(np.array([line]), range(14, 15))
    box = (abs(a.x - b.x) + 1) * (abs(a.y - b.y) + 1)
    assert a in tiles and b in tiles and len(tiles) < box


def test_a_huge_change_falls_back_to_the_whole_zoom():
    line = LineString([(112.6, 34.8), (113.7, 35.5)])
    tiles, whole = tiles_touching(np.array([line]), range(10, 23), max_per_zoom=500)
    assert 22 in whole and 10 not in whole
    assert all(t.z not in whole for t in tiles if t.z == 10)


@pytest.mark.parametrize(("z", "x", "y"), [(23, 0, 0), (-1, 0, 0), (2, 4, 0), (2, 0, -1)])
def test_check_tile_refuses_addresses_off_the_grid(z, x, y):
    with pytest.raises(TileRangeError):
        check_tile(z, x, y)
