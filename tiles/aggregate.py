"""Low-zoom aggregation: grid-cell counts instead of every point.

Below a layer's ``tiles.aggregate_below`` zoom a point layer's tile carries one point per
non-empty cell of a CELLS×CELLS grid, at the cell centre, with ``count`` and ``count_<status>``
for every status value, so nothing is dropped silently and a map can still colour by status.
PostGIS computes the same cells in SQL (geoapi.storage.tilesql); both use the spherical
Mercator formula below, so cells agree exactly.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import shapely

from layers.spec import LayerSpec
from tiles.grid import EXTENT, TileId, lonlat_to_mercator, mercator_bounds
from tiles.mvt import TileLayer

CELLS = 64
CELL_UNITS = EXTENT // CELLS


def is_aggregated(layer: LayerSpec, z: int) -> bool:
    below = layer.tiles.aggregate_below
    return layer.is_point and below is not None and z < below


def count_fields(layer: LayerSpec) -> dict[str, str]:
    """Property name → 中文 description of an aggregated tile's features."""
    fields = {"count": "要素数量"}
    label = layer.status.label
    fields.update({f"count_{v}": f"{label}为{v}的数量" for v in layer.status.values})
    return fields


def aggregate_points(tile: TileId, layer: LayerSpec, lon: np.ndarray, lat: np.ndarray,
                     status: Sequence[str | None]) -> TileLayer:
    """Count points (EPSG:4490 lon/lat) per cell of ``tile``; points outside the tile are ignored."""
    minx, miny, maxx, maxy = mercator_bounds(tile)
    x, y = lonlat_to_mercator(np.asarray(lon, dtype=float), np.asarray(lat, dtype=float))
    size = (maxx - minx) / CELLS
    cx = np.floor((x - minx) / size).astype(np.int64)
    cy = np.floor((maxy - y) / size).astype(np.int64)
    inside = (cx >= 0) & (cx < CELLS) & (cy >= 0) & (cy < CELLS)
    cell = (cy * CELLS + cx)[inside]
    status_arr = np.asarray(status, dtype=object)[inside]
    cells, inverse, counts = np.unique(cell, return_inverse=True, return_counts=True)
    by_status = {v: np.bincount(inverse, weights=(status_arr == v), minlength=len(cells)).astype(np.int64)
                 for v in layer.status.values}
    col, row = cells % CELLS, cells // CELLS
    # y up, as the encoder expects (it flips to the MVT's y-down)
    geoms = shapely.points((col + 0.5) * CELL_UNITS, EXTENT - (row + 0.5) * CELL_UNITS)
    props = [{"count": int(counts[i]), **{f"count_{v}": int(by_status[v][i]) for v in layer.status.values}}
             for i in range(len(cells))]
    return TileLayer(layer.id, geoms, cells + 1, props)
