"""Bulk writes store a chunk's rows in Z-order (Morton order) of their geometry.

A survey delivery, a rig or an old registry export lists its assets in any order — by code,
by survey date, at random — and rows go to the table's pages in the order they are written.
Read back by place (a tile, a bounding box, a nearest search), rows in random order cost one
page each: a dense z16 tile of 1,400 manholes read 1,400 pages. Written in Z-order within each
chunk of ``writer.CHUNK`` rows, the same tile reads a few pages per chunk
(bench/README.md "Tiles"). ``geoapi db optimize`` (storage.maintenance) orders a whole table.
"""

from __future__ import annotations

import numpy as np
import shapely

_BITS = 16  # per axis: 65,536 steps across the chunk's extent (~2 m over a city)


def _spread(v: np.ndarray) -> np.ndarray:
    """The bits of 16-bit ``v`` moved to the even positions of a 32-bit word."""
    v = v.astype(np.uint64) & 0xFFFF
    v = (v | (v << 8)) & 0x00FF00FF
    v = (v | (v << 4)) & 0x0F0F0F0F
    v = (v | (v << 2)) & 0x33333333
    return (v | (v << 1)) & 0x55555555


def morton_keys(geoms: np.ndarray) -> np.ndarray:
    """Z-order key of each geometry's bounding-box centre, on a grid over their joint extent.
    Missing or empty geometries get the largest key (they sort last)."""
    b = shapely.bounds(geoms)
    x, y = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
    ok = np.isfinite(x) & np.isfinite(y)
    keys = np.full(len(geoms), np.iinfo(np.uint64).max, dtype=np.uint64)
    if not ok.any():
        return keys
    top = (1 << _BITS) - 1
    cells = []
    for v in (x[ok], y[ok]):
        lo, span = v.min(), v.max() - v.min()
        cells.append(np.zeros(v.size) if span == 0 else np.minimum((v - lo) / span * top, top))
    keys[ok] = _spread(cells[0]) | (_spread(cells[1]) << np.uint64(1))
    return keys


def order(geoms: np.ndarray) -> list[int] | None:
    """The positions of ``geoms`` sorted by ``morton_keys`` (equal keys keep their order);
    None for fewer than two."""
    if len(geoms) < 2:
        return None
    return np.argsort(morton_keys(geoms), kind="stable").tolist()
