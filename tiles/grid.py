"""The tile grid (WebMercatorQuad via morecantile) and which tiles a geometry touches."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import morecantile
import numpy as np
import shapely
from pyproj import Transformer

MIN_ZOOM, MAX_ZOOM = 0, 22
EXTENT = 4096
BUFFER = 64  # tile units; ST_AsMVTGeom's default, and the same on the in-process path
TMS = morecantile.tms.get("WebMercatorQuad")
STORAGE_SRID = 4490
# Half the Web Mercator world width; tile (z, x, y) spans ORIGIN_SPAN * 2 / 2**z metres.
WORLD = 20037508.342789244
MAX_LAT = 85.0511287798066


class TileRangeError(ValueError):
    """z, x or y is outside the grid; the message says which and the allowed range."""


@dataclass(frozen=True, order=True)
class TileId:
    z: int
    x: int
    y: int

    def __str__(self) -> str:
        return f"{self.z}/{self.x}/{self.y}"


def check_tile(z: int, x: int, y: int) -> TileId:
    if not MIN_ZOOM <= z <= MAX_ZOOM:
        raise TileRangeError(f"zoom {z} is outside {MIN_ZOOM}–{MAX_ZOOM}")
    n = 1 << z
    if not 0 <= x < n:
        raise TileRangeError(f"x {x} is outside 0–{n - 1} at zoom {z}")
    if not 0 <= y < n:
        raise TileRangeError(f"y {y} is outside 0–{n - 1} at zoom {z}")
    return TileId(z, x, y)


def mercator_bounds(tile: TileId) -> tuple[float, float, float, float]:
    b = TMS.xy_bounds(tile.x, tile.y, tile.z)
    return (b.left, b.bottom, b.right, b.top)


def lonlat_bounds(tile: TileId, buffer: int = 0) -> tuple[float, float, float, float]:
    """The tile (grown by ``buffer`` tile units) in lon/lat: the index search frame in EPSG:4490."""
    minx, miny, maxx, maxy = grow(mercator_bounds(tile), buffer)
    lon0, lat0 = mercator_to_lonlat(minx, miny)
    lon1, lat1 = mercator_to_lonlat(maxx, maxy)
    return (lon0, lat0, lon1, lat1)


def grow(bounds: tuple[float, float, float, float], buffer: int) -> tuple[float, float, float, float]:
    minx, miny, maxx, maxy = bounds
    pad = (maxx - minx) * buffer / EXTENT
    return (minx - pad, miny - pad, maxx + pad, maxy + pad)


def mercator_to_lonlat(x: float, y: float) -> tuple[float, float]:
    """One point (scalars: ``math``, a tenth of numpy's per-call cost; every tile request calls it)."""
    lon = math.degrees(x / 6378137.0)
    lat = math.degrees(2 * math.atan(math.exp(y / 6378137.0)) - math.pi / 2)
    return lon, lat


def lonlat_to_mercator(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Spherical Mercator by formula: the same numbers PROJ gives for EPSG:3857, without a call."""
    lat = np.clip(lat, -MAX_LAT, MAX_LAT)
    x = np.radians(lon) * 6378137.0
    y = np.log(np.tan(np.pi / 4 + np.radians(lat) / 2)) * 6378137.0
    return x, y


@lru_cache(maxsize=4)
def transformer(src: int = STORAGE_SRID, dst: int = 3857) -> Transformer:
    return Transformer.from_crs(src, dst, always_xy=True)


def to_mercator(geoms: np.ndarray) -> np.ndarray:
    """EPSG:4490 shapely array → EPSG:3857, vectorised, 2D."""
    t = transformer()
    return shapely.transform(geoms, lambda c: np.column_stack(t.transform(c[:, 0], c[:, 1])))


def tiles_touching(geoms: np.ndarray, zooms: range, *, max_per_zoom: int = 4096) -> tuple[set[TileId], set[int]]:
    """Tiles whose buffered extent meets any of ``geoms`` (EPSG:4490), at each zoom.

    A feature within BUFFER tile units of an edge is drawn in the neighbour tile too, so tiles
    are grown by the buffer before the test. Lines and polygons are tested against each tile,
    not just their bounding box. Returns (tiles, zooms_too_many): a zoom where one geometry
    would touch more than ``max_per_zoom`` tiles is returned whole instead of tile by tile.
    """
    geoms = np.asarray([g for g in geoms if g is not None and not g.is_empty], dtype=object)
    out: set[TileId] = set()
    whole: set[int] = set()
    if len(geoms) == 0:
        return out, whole
    merc = to_mercator(geoms)
    bounds = shapely.bounds(merc)
    for z in zooms:
        size = 2 * WORLD / (1 << z)
        pad = size * BUFFER / EXTENT
        x0 = np.floor((bounds[:, 0] - pad + WORLD) / size).astype(np.int64)
        x1 = np.floor((bounds[:, 2] + pad + WORLD) / size).astype(np.int64)
        y0 = np.floor((WORLD - (bounds[:, 3] + pad)) / size).astype(np.int64)
        y1 = np.floor((WORLD - (bounds[:, 1] - pad)) / size).astype(np.int64)
        n = (1 << z) - 1
        x0, x1, y0, y1 = (np.clip(a, 0, n) for a in (x0, x1, y0, y1))
        for i in range(len(merc)):
            count = (x1[i] - x0[i] + 1) * (y1[i] - y0[i] + 1)
            if count > max_per_zoom:
                whole.add(z)
                break
            if count == 1 or shapely.get_type_id(merc[i]) in (0, 4):  # points: the box is exact
                out.update(TileId(z, x, y) for x in range(x0[i], x1[i] + 1) for y in range(y0[i], y1[i] + 1))
                continue
            xs, ys = np.meshgrid(np.arange(x0[i], x1[i] + 1), np.arange(y0[i], y1[i] + 1))
            xs, ys = xs.ravel(), ys.ravel()
            boxes = shapely.box(xs * size - WORLD - pad, WORLD - (ys + 1) * size - pad,
                                (xs + 1) * size - WORLD + pad, WORLD - ys * size + pad)
            hit = shapely.intersects(boxes, merc[i])
            out.update(TileId(z, int(x), int(y)) for x, y in zip(xs[hit], ys[hit], strict=True))
    return out, whole
