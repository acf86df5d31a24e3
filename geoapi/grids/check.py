"""Check unit grids (imported or generated): codes, geometry, overlaps, gaps.

DB11/T 2157-2023 wants closed polygons with clean topology between grids; the code is 15 digits
(14 accepted: the older 2-digit 顺序码, DOMAIN.md §1.5). Each problem names the grid, the row
and, where it has one, the place — so a person can find and fix it.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from geoapi.grids.metric import Frame

GRID_CODE = re.compile(r"^\d{14}\d?$")
OVERLAP_TOLERANCE_M2 = 1.0
GAP_TOLERANCE_M2 = 1.0


@dataclass(frozen=True)
class GridProblem:
    kind: str  # malformed_code | duplicate_code | invalid_geometry | empty_geometry | overlap | gap | code_mismatch
    severity: str  # error | warning
    message: str
    row: int | None = None
    grid_code: str | None = None
    location: tuple[float, float] | None = None  # lon, lat (EPSG:4490)


@dataclass
class GridReport:
    checked: int
    problems: list[GridProblem] = field(default_factory=list)

    @property
    def errors(self) -> list[GridProblem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def as_dict(self) -> dict[str, Any]:
        return {"checked": self.checked, "ok": self.ok, "errors": len(self.errors),
                "warnings": len(self.problems) - len(self.errors),
                "problems": [asdict(p) for p in self.problems]}


def _where(g: BaseGeometry) -> tuple[float, float]:
    p = g.representative_point() if not g.is_empty else g
    return round(p.x, 6), round(p.y, 6)


def _check_codes(rows: list[tuple[dict, BaseGeometry]], out: list[GridProblem]) -> None:
    seen: dict[str, int] = {}
    for i, (props, _) in enumerate(rows):
        code = props.get("grid_code")
        code = str(code).strip() if code is not None else ""
        if not GRID_CODE.match(code):
            out.append(GridProblem("malformed_code", "error",
                                   f"row {i}: grid_code {code!r} is malformed: it must be 15 digits "
                                   "(6 区划 + 3 街道 + 3 社区 + 3 顺序码) or 14 (legacy 2-digit 顺序码)",
                                   i, code or None))
            continue
        if code in seen:
            out.append(GridProblem("duplicate_code", "error",
                                   f"row {i}: grid_code {code} is also used by row {seen[code]}", i, code))
        seen.setdefault(code, i)
        community = props.get("community_code")
        if community and not code.startswith(str(community)):
            out.append(GridProblem("code_mismatch", "warning",
                                   f"row {i}: grid_code {code} does not start with its community_code {community}",
                                   i, code))


def _check_geometry(rows: list[tuple[dict, BaseGeometry]], out: list[GridProblem]) -> list[BaseGeometry | None]:
    fixed: list[BaseGeometry | None] = []
    for i, (props, g) in enumerate(rows):
        code = props.get("grid_code")
        if g is None or g.is_empty or g.geom_type not in ("Polygon", "MultiPolygon"):
            out.append(GridProblem("empty_geometry", "error",
                                   f"row {i} (grid {code}): needs a polygon, got {g.geom_type if g is not None else 'nothing'}",
                                   i, code))
            fixed.append(None)
            continue
        if not g.is_valid:
            reason = shapely.is_valid_reason(g)
            kind = reason.split("[", 1)[0]
            at = reason[reason.find("[") + 1:reason.find("]")].split() if "[" in reason else []
            loc = (round(float(at[0]), 6), round(float(at[1]), 6)) if len(at) >= 2 else _where(g)
            label = "self-intersects" if kind.lower().startswith(("self-intersection", "ring self-intersection")) \
                else f"is not a valid polygon ({kind})"
            out.append(GridProblem("invalid_geometry", "error",
                                   f"row {i} (grid {code}): the boundary {label} at {loc[0]}, {loc[1]}; redraw it",
                                   i, code, loc))
            g = shapely.make_valid(g)
        fixed.append(g)
    return fixed


def _check_topology(rows: list[tuple[dict, BaseGeometry]], geoms: list[BaseGeometry | None],
                    out: list[GridProblem], overlap_m2: float, gap_m2: float) -> None:
    idx = [i for i, g in enumerate(geoms) if g is not None]
    if len(idx) < 1:
        return
    frame = Frame.around([geoms[i] for i in idx])
    metric = np.array([frame.to_m(geoms[i]) for i in idx], dtype=object)
    a, b = shapely.STRtree(metric).query(metric, predicate="intersects")
    pairs = a < b
    a, b = a[pairs], b[pairs]
    if len(a):
        inter = shapely.intersection(metric[a], metric[b])
        for k in np.flatnonzero(shapely.area(inter) > overlap_m2).tolist():
            i, j = idx[a[k]], idx[b[k]]
            ci, cj = rows[i][0].get("grid_code"), rows[j][0].get("grid_code")
            out.append(GridProblem("overlap", "error",
                                   f"grids {ci} (row {i}) and {cj} (row {j}) overlap by {inter[k].area:.1f} m²",
                                   i, ci, _where(frame.to_deg(inter[k]))))
    union = shapely.union_all(metric)
    for poly in shapely.get_parts(union):
        for ring in poly.interiors:
            hole = shapely.Polygon(ring)
            if hole.area > gap_m2:
                out.append(GridProblem("gap", "warning",
                                       f"a gap of {hole.area:.1f} m² between grids (no grid covers it)",
                                       location=_where(frame.to_deg(hole))))


def check_unit_grids(rows: list[tuple[dict[str, Any], BaseGeometry]], *, overlap_m2: float = OVERLAP_TOLERANCE_M2,
                     gap_m2: float = GAP_TOLERANCE_M2) -> GridReport:
    """Problems of a set of unit grids ``(props with grid_code, geometry in EPSG:4490)``."""
    problems: list[GridProblem] = []
    _check_codes(rows, problems)
    geoms = _check_geometry(rows, problems)
    _check_topology(rows, geoms, problems, overlap_m2, gap_m2)
    return GridReport(checked=len(rows), problems=problems)
