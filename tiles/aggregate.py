"""Low-zoom aggregation: grid-cell counts instead of every point.

Below a layer's ``tiles.aggregate_below`` zoom a point layer's tile carries one point per
non-empty cell of a CELLS×CELLS grid, at the cell centre, with ``count`` and ``count_<status>``
for every status value, so nothing is dropped silently and a map can still colour by status.

Cells are global: at level L = z + CELL_BITS the world is a 2^L × 2^L grid and a point's cell
is ``floor(u · 2^L)``, ``floor(v · 2^L)`` of its normalised spherical-Mercator coordinate
(``global_cells``). Tile (z, x, y) holds the cells whose index >> CELL_BITS is (x, y).
PostGIS keeps the same cells in a maintained table (geoapi.storage.tilecells, whose SQL text
repeats this formula operation for operation), so both backends produce the same cells.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import shapely

from layers.spec import LayerSpec
from tiles.grid import EXTENT, MAX_LAT, TileId
from tiles.mvt import TileLayer

CELL_BITS = 6
CELLS = 1 << CELL_BITS
CELL_UNITS = EXTENT // CELLS


def is_aggregated(layer: LayerSpec, z: int) -> bool:
    below = layer.tiles.aggregate_below
    return layer.is_point and below is not None and z < below


def aggregated_zooms(layer: LayerSpec) -> range:
    """The zooms at which the layer's tiles are served aggregated (empty if none)."""
    if not layer.is_point or layer.tiles.aggregate_below is None:
        return range(0)
    return range(layer.tiles.minzoom, min(layer.tiles.aggregate_below, layer.tiles.maxzoom + 1))


def count_fields(layer: LayerSpec) -> dict[str, str]:
    """Property name → 中文 description of an aggregated tile's features."""
    fields = {"count": "要素数量"}
    label = layer.status.label
    fields.update({f"count_{v}": f"{label}为{v}的数量" for v in layer.status.values})
    return fields


def global_cells(lon: np.ndarray, lat: np.ndarray, level: int) -> tuple[np.ndarray, np.ndarray]:
    """Global cell x/y at ``level`` of EPSG:4490 lon/lat (y counted from the north edge).

    The same operations in the same order as geoapi.storage.tilecells.cell_sql; scaling by a
    power of two is exact, so the cell at level L - k is the cell at level L shifted right by k.
    """
    lat = np.clip(lat, -MAX_LAT, MAX_LAT)
    u = lon / 360.0 + 0.5
    v = 0.5 - np.log(np.tan(np.pi / 4 + lat * np.pi / 360.0)) / (2 * np.pi)
    top = (1 << level) - 1
    scale = float(1 << level)
    gx = np.clip(np.floor(u * scale), 0, top).astype(np.int64)
    gy = np.clip(np.floor(v * scale), 0, top).astype(np.int64)
    return gx, gy


def aggregate_points(tile: TileId, layer: LayerSpec, lon: np.ndarray, lat: np.ndarray,
                     status: Sequence[str | None]) -> TileLayer:
    """Count points (EPSG:4490 lon/lat) per cell of ``tile``; points outside the tile are ignored."""
    gx, gy = global_cells(np.asarray(lon, dtype=float), np.asarray(lat, dtype=float), tile.z + CELL_BITS)
    cx, cy = gx - tile.x * CELLS, gy - tile.y * CELLS
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
