"""The tiles a change touches, kept in bounded memory however many geometries it had.

A :class:`TileFootprint` folds geometries in as they come (an import adds one chunk at a time)
and keeps, per zoom, the sorted tile keys they touch (the same rule as
:func:`tiles.grid.tiles_touching`: tiles grown by the 64/4096 buffer; lines and polygons tested
against each tile). Once a zoom holds more than ``max_tiles`` tiles it is kept as "the whole
zoom" instead: a purge of it clears every tile of that layer and zoom, which is what a change
that large needs anyway. So the footprint is exact tile by tile up to that size, never misses
a tile, and its size depends on the zooms, not on the number of geometries.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import shapely

from tiles.grid import BUFFER, EXTENT, WORLD, TileId, lonlat_to_mercator, tiles_touching

MAX_TILES_PER_ZOOM = 4096
_EMPTY = np.empty(0, dtype=np.int64)


class TileFootprint:
    def __init__(self, zooms: range, *, max_tiles: int = MAX_TILES_PER_ZOOM):
        self.zooms = zooms
        self.max_tiles = max_tiles
        self.keys: dict[int, np.ndarray] = {z: _EMPTY for z in zooms}   # x << 32 | y, sorted, unique
        self.whole: set[int] = set()
        self.bounds: tuple[float, float, float, float] | None = None   # lon/lat of everything added
        self.count = 0   # geometries added

    def __bool__(self) -> bool:
        return self.count > 0

    def add(self, geoms: Sequence[Any] | np.ndarray) -> None:
        """Fold in EPSG:4490 geometries (None and empty ones are skipped)."""
        arr = np.asarray(geoms, dtype=object)
        if len(arr) == 0:
            return
        arr = arr[~(shapely.is_missing(arr) | shapely.is_empty(arr))]
        if len(arr) == 0:
            return
        self.count += len(arr)
        self._extend_bounds(shapely.total_bounds(arr))
        open_zooms = [z for z in self.zooms if z not in self.whole]
        if not open_zooms:
            return
        points = shapely.get_type_id(arr) == 0
        if points.any():
            lonlat = shapely.get_coordinates(arr[points])   # points: no geometries built on the way
            mx, my = lonlat_to_mercator(lonlat[:, 0], lonlat[:, 1])
            for z in open_zooms:
                self._put(z, _point_keys(mx, my, z))
        if not points.all():
            zooms = [z for z in open_zooms if z not in self.whole]
            if zooms:
                tiles, whole = tiles_touching(arr[~points], range(zooms[0], zooms[-1] + 1), max_per_zoom=self.max_tiles)
                for z in zooms:
                    if z in whole:
                        self._drop(z)
                    else:
                        self._put(z, np.array([(t.x << 32) | t.y for t in tiles if t.z == z], dtype=np.int64))

    def merge(self, other: TileFootprint) -> None:
        self.count += other.count
        if other.bounds is not None:
            self._extend_bounds(other.bounds)
        for z in self.zooms:
            if z in other.whole or (z not in other.zooms and other.count):
                self._drop(z)   # a zoom the other did not track: it may touch any tile there
            elif z in other.keys:
                self._put(z, other.keys[z])

    def tiles(self) -> Iterator[TileId]:
        """Every tile listed (zooms kept whole are in ``whole``, not here)."""
        for z, keys in self.keys.items():
            for k in keys.tolist():
                yield TileId(z, k >> 32, k & 0xFFFFFFFF)

    def _put(self, z: int, keys: np.ndarray) -> None:
        if z in self.whole or len(keys) == 0:
            return
        merged = np.union1d(self.keys[z], keys)
        if len(merged) > self.max_tiles:
            self._drop(z)
        else:
            self.keys[z] = merged

    def _drop(self, z: int) -> None:
        self.whole.add(z)
        self.keys.pop(z, None)

    def _extend_bounds(self, b) -> None:
        b = tuple(float(v) for v in b)
        if self.bounds is None:
            self.bounds = b  # type: ignore[assignment]
        else:
            o = self.bounds
            self.bounds = (min(o[0], b[0]), min(o[1], b[1]), max(o[2], b[2]), max(o[3], b[3]))


def _point_keys(mx: np.ndarray, my: np.ndarray, z: int) -> np.ndarray:
    """Tile keys of points (Web Mercator metres) at ``z``, each point's tile grown by the buffer:
    tiles_touching's box rule, vectorised (a point reaches at most one neighbour per axis)."""
    size = 2 * WORLD / (1 << z)
    pad = size * BUFFER / EXTENT
    n = (1 << z) - 1
    x0 = np.clip(np.floor((mx - pad + WORLD) / size), 0, n).astype(np.int64)
    x1 = np.clip(np.floor((mx + pad + WORLD) / size), 0, n).astype(np.int64)
    y0 = np.clip(np.floor((WORLD - (my + pad)) / size), 0, n).astype(np.int64)
    y1 = np.clip(np.floor((WORLD - (my - pad)) / size), 0, n).astype(np.int64)
    keys = [(x0 << 32) | y0]
    ex, ey = x1 != x0, y1 != y0
    if ex.any():
        keys.append((x1[ex] << 32) | y0[ex])
    if ey.any():
        keys.append((x0[ey] << 32) | y1[ey])
    both = ex & ey
    if both.any():
        keys.append((x1[both] << 32) | y1[both])
    return np.unique(np.concatenate(keys))
