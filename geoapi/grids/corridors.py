"""路段责任区: the corridor each segment answers for (DOMAIN.md §4).

The rule: a point belongs to the segment whose centreline is nearest to it, if that distance
is at most the segment's ``frontage_m`` (measured from the centreline, so it covers the
carriageway and the frontage beyond it), and if it lies in the segment's district.

How: every centreline is densified (``step_m``), the Voronoi cells of those points are dissolved
per segment — a discrete nearest-centreline partition — and each segment's cells are cut by its
own frontage buffer and its district. Cells partition the plane, so corridors never overlap;
consecutive segments of a road share the cell edge at their common end point, so there is no
gap along the road. Boundaries are exact where two corridors meet (the same Voronoi edge in
both) and within ``step_m``/2 of the true bisector elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from geoapi.grids.metric import Frame, as_multi

DEFAULT_FRONTAGE_M = 30.0
STEP_M = 5.0


@dataclass(frozen=True)
class SegmentLine:
    """What a corridor needs from a road segment (geometry in EPSG:4490)."""

    code: str
    geometry: BaseGeometry
    frontage_m: float | None = None
    district: BaseGeometry | None = None  # clip to this (EPSG:4490); None = no clip
    props: dict[str, Any] = field(default_factory=dict)  # road_name, road_grade, chief_* …


def _cells_by_segment(lines_m: np.ndarray, step_m: float, reach: float) -> list[BaseGeometry]:
    """Dissolved Voronoi cells of each line's densified vertices (one shared point: first line wins)."""
    dense = shapely.segmentize(lines_m, step_m)
    coords, owner = shapely.get_coordinates(dense, return_index=True)
    _, first = np.unique(np.round(coords, 3), axis=0, return_index=True)
    first.sort()
    coords, owner = coords[first], owner[first]
    x0, y0, x1, y1 = shapely.total_bounds(lines_m)
    frame = shapely.box(x0, y0, x1, y1).buffer(reach * 2 + 10)
    if len(coords) < 3:  # GEOS needs a few points; one short line owns everything near it
        return [frame] * len(lines_m)
    cells = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(coords), extend_to=frame,
                                                       ordered=True))
    out = []
    for k in range(len(lines_m)):
        mine = cells[owner == k]
        out.append(shapely.union_all(mine) if len(mine) else shapely.Polygon())
    return out


def build_corridors(segments: list[SegmentLine], *, default_frontage_m: float = DEFAULT_FRONTAGE_M,
                    step_m: float = STEP_M) -> list[tuple[dict[str, Any], BaseGeometry]]:
    """Corridor rows ``(props, MultiPolygon in EPSG:4490)`` for the road_corridors layer."""
    if step_m <= 0:
        raise ValueError(f"step_m must be positive, not {step_m}")
    segments = [s for s in segments if s.geometry is not None and not s.geometry.is_empty]
    if not segments:
        return []
    frame = Frame.around([s.geometry for s in segments])
    lines_m = np.array([frame.to_m(s.geometry) for s in segments], dtype=object)
    frontage = np.array([s.frontage_m if s.frontage_m else default_frontage_m for s in segments])
    cells = _cells_by_segment(lines_m, step_m, float(frontage.max()))
    buffers = shapely.buffer(lines_m, frontage, quad_segs=8)
    corridors = shapely.intersection(np.array(cells, dtype=object), buffers)
    rows = []
    for s, geom, reach in zip(segments, corridors, frontage, strict=True):
        if s.district is not None:
            geom = shapely.intersection(geom, frame.to_m(s.district))
        geom = shapely.make_valid(geom)
        if geom.is_empty or geom.area < 1.0:
            continue
        props = {**s.props, "segment_code": s.code, "frontage_m": float(reach), "area_m2": round(geom.area, 1)}
        rows.append((props, as_multi(shapely.make_valid(frame.to_deg(geom)))))
    return rows
