"""In-process MVT encoding (Mapbox Vector Tile 2.1) for backends that cannot make tiles in SQL.

Geometries arrive as shapely arrays in EPSG:3857; clipping and quantising to the 4096 grid are
vectorised, then mapbox-vector-tile writes the protobuf. The result matches PostGIS's
``ST_AsMVTGeom(geom, ST_TileEnvelope(z, x, y), 4096, 64)`` to within one tile unit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import mapbox_vector_tile
import numpy as np
import shapely
from mapbox_vector_tile.encoder import on_invalid_geometry_make_valid

from tiles.grid import BUFFER, EXTENT, TileId, grow, mercator_bounds


@dataclass
class TileLayer:
    """One MVT layer: quantised geometries (tile units, y up), ids and properties."""

    name: str
    geoms: np.ndarray
    ids: np.ndarray
    properties: list[dict[str, Any]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.geoms)


def quantize(tile: TileId, geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Clip EPSG:3857 geometries to the buffered tile and snap them to the tile grid.

    Returns the kept geometries (tile units, y up, as the encoder expects) and a boolean mask of
    which input rows they came from: features that fall outside, or collapse to nothing on the
    grid, are dropped, as ST_AsMVTGeom drops them.
    """
    if len(geoms) == 0:
        return geoms, np.zeros(0, dtype=bool)
    minx, miny, maxx, maxy = mercator_bounds(tile)
    clipped = shapely.clip_by_rect(geoms, *grow((minx, miny, maxx, maxy), BUFFER))
    scale = np.array([EXTENT / (maxx - minx), EXTENT / (maxy - miny)])
    origin = np.array([minx, miny])
    snapped = shapely.transform(clipped, lambda c: np.rint((c - origin) * scale))
    snapped = shapely.remove_repeated_points(snapped)
    keep = ~shapely.is_empty(snapped)
    kind = shapely.get_type_id(snapped)
    lines = (kind == 1) | (kind == 5)
    polys = (kind == 3) | (kind == 6)
    keep &= ~(lines & (shapely.length(snapped) == 0))
    keep &= ~(polys & (shapely.area(snapped) == 0))
    return snapped[keep], keep


def encode(layers: Sequence[TileLayer]) -> bytes:
    """The tile bytes; b"" when no layer has a feature (the caller answers 204)."""
    payload = []
    for layer in layers:
        if not len(layer):
            continue
        props = layer.properties or [{}] * len(layer)
        features = [
            {"geometry": g, "id": int(i), "properties": {k: v for k, v in p.items() if v is not None}}
            for g, i, p in zip(layer.geoms, layer.ids, props, strict=True)
        ]
        payload.append({"name": layer.name, "features": features})
    if not payload:
        return b""
    return mapbox_vector_tile.encode(
        payload,
        default_options={"extents": EXTENT, "quantize_bounds": None,
                         "on_invalid_geometry": on_invalid_geometry_make_valid},
    )
