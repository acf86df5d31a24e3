"""Generate 单元网格 for a district (DOMAIN.md §1.5, DB11/T 2157-2023).

Rules:
- a grid lies in exactly one 社区 (so never crosses a street or district boundary);
- each 社区 is first cut into blocks by the road centrelines ("bounded by roads where
  possible"); a block bigger than the target (~10,000 m², 万米单元网格) is cut into a regular
  grid aligned with the block's minimum rotated rectangle; pieces under ``MIN_SHARE`` of the
  target join the same-社区 neighbour they share most edge with;
- codes are 15 digits: 6 区划 + 3 街道 + 3 社区 (the 社区's 12-digit code) + 3 顺序码;
  the 顺序码 runs west→east within rows of one cell height, rows north→south.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
import shapely.affinity
from shapely.geometry.base import BaseGeometry

from geoapi.grids.metric import Frame, as_multi

TARGET_M2 = 10_000.0
MIN_SHARE = 0.3
COMMUNITY_CODE = re.compile(r"^\d{12}$")


@dataclass(frozen=True)
class Community:
    code: str  # 12 digits: 6 区划 + 3 街道 + 3 社区
    geometry: BaseGeometry  # EPSG:4490
    name: str | None = None


class GridGenerationError(ValueError):
    """The input cannot give valid grid codes (the message says which 社区 and why)."""


def _blocks(poly: BaseGeometry, roads_m: BaseGeometry | None) -> list[BaseGeometry]:
    """The 社区 cut by the road centrelines crossing it."""
    if roads_m is None or roads_m.is_empty or not poly.intersects(roads_m):
        return list(shapely.get_parts(poly))
    noded = shapely.union_all([poly.boundary, shapely.intersection(roads_m, poly)])
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
    keep = shapely.contains(poly, shapely.point_on_surface(faces)) & (shapely.area(faces) > 0.01)
    return list(faces[keep])


def _subdivide(block: BaseGeometry, target: float) -> list[BaseGeometry]:
    """A block over 1.5× the target as a grid of ~target cells aligned with the block."""
    if block.area <= 1.5 * target:
        return [block]
    rect = np.asarray(block.minimum_rotated_rectangle.exterior.coords)
    dx, dy = rect[1] - rect[0]
    angle = math.degrees(math.atan2(dy, dx))
    origin = block.centroid
    turned = shapely.affinity.rotate(block, -angle, origin=origin)
    x0, y0, x1, y1 = turned.bounds
    side = math.sqrt(target)
    nx, ny = max(1, round((x1 - x0) / side)), max(1, round((y1 - y0) / side))
    xs, ys = np.linspace(x0, x1, nx + 1), np.linspace(y0, y1, ny + 1)
    gx, gy = np.meshgrid(xs[:-1], ys[:-1])
    gx2, gy2 = np.meshgrid(xs[1:], ys[1:])
    cells = shapely.intersection(shapely.box(gx.ravel(), gy.ravel(), gx2.ravel(), gy2.ravel()), turned)
    cells = [shapely.affinity.rotate(c, angle, origin=origin) for c in cells if c.area > 0.01]
    return [_polygonal(c) for c in cells]


def _polygonal(g: BaseGeometry) -> BaseGeometry:
    parts = [p for p in shapely.get_parts(g) if p.geom_type == "Polygon" and p.area > 0.001]
    return shapely.union_all(parts) if parts else shapely.Polygon()


def _merge_small(cells: list[BaseGeometry], min_area: float) -> list[BaseGeometry]:
    cells = [c for c in cells if not c.is_empty]
    changed = True
    while changed:
        changed = False
        order = sorted(range(len(cells)), key=lambda i: cells[i].area)
        for i in order:
            if cells[i].area >= min_area or len(cells) == 1:
                break
            shared = [(shapely.length(shapely.intersection(cells[i].boundary, c.boundary)), j)
                      for j, c in enumerate(cells) if j != i]
            best, j = max(shared)
            if best <= 0:
                continue
            cells[j] = _polygonal(shapely.union(cells[j], cells[i]))
            del cells[i]
            changed = True
            break
    return cells


def reading_order(cells: list[BaseGeometry], row_height: float) -> list[int]:
    """Indices west→east within rows, rows north→south (by a point inside each cell).

    A row starts at the northernmost remaining cell and takes every cell within half a
    ``row_height`` below it, so a regular grid reads exactly row by row.
    """
    pts = shapely.point_on_surface(np.array(cells, dtype=object))
    x, y = shapely.get_x(pts), shapely.get_y(pts)
    row = np.empty(len(cells), dtype=np.int64)
    k, top = -1, math.inf
    for i in np.argsort(-y, kind="stable").tolist():
        if y[i] < top - row_height / 2:
            k, top = k + 1, y[i]
        row[i] = k
    return np.lexsort((x, row)).tolist()


def generate_unit_grids(communities: list[Community], roads: list[BaseGeometry], *,
                        district: BaseGeometry | None = None,
                        target_m2: float = TARGET_M2) -> list[tuple[dict[str, Any], BaseGeometry]]:
    """Grid rows ``(props, MultiPolygon in EPSG:4490)`` for the unit_grids layer."""
    if target_m2 < 100:
        raise GridGenerationError(f"target_m2 must be at least 100 m², not {target_m2}")
    bad = [c.code for c in communities if not COMMUNITY_CODE.match(c.code or "")]
    if bad:
        raise GridGenerationError(f"社区 codes must be 12 digits (6 区划 + 3 街道 + 3 社区): {bad[:5]}")
    if not communities:
        return []
    frame = Frame.around([c.geometry for c in communities])
    roads_m = shapely.union_all([frame.to_m(r) for r in roads]) if roads else None
    district_m = frame.to_m(district) if district is not None else None
    rows: list[tuple[dict[str, Any], BaseGeometry]] = []
    for comm in sorted(communities, key=lambda c: c.code):
        poly = shapely.make_valid(frame.to_m(comm.geometry))
        if district_m is not None:
            poly = _polygonal(shapely.intersection(poly, district_m))
        if poly.is_empty:
            continue
        cells = [c for b in _blocks(poly, roads_m) for c in _subdivide(b, target_m2)]
        cells = _merge_small(cells, MIN_SHARE * target_m2)
        if len(cells) > 999:
            raise GridGenerationError(f"社区 {comm.code} would get {len(cells)} grids, more than the 3-digit "
                                      f"顺序码 allows: raise target_m2 (now {target_m2:g})")
        for seq, k in enumerate(reading_order(cells, math.sqrt(target_m2)), start=1):
            cell = cells[k]
            code = f"{comm.code}{seq:03d}"
            props = {"grid_code": code, "admin_code": code[:6], "street_code": code[:9],
                     "community_code": comm.code, "seq": f"{seq:03d}", "area_m2": round(cell.area, 1),
                     "name": f"{comm.name}{seq:03d}网格" if comm.name else None}
            rows.append(({k2: v for k2, v in props.items() if v is not None},
                         as_multi(shapely.make_valid(frame.to_deg(cell)))))
    return rows
