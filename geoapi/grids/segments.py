"""Cut road centrelines into 路长制 segments (DOMAIN.md §4, §9.10).

Rules:
- a road is every centreline sharing its road code (or, without codes, its name), merged;
- it is cut where another road meets it (crossings and T-junctions within ``SNAP_M``) and so
  that no piece is longer than ``max_length_m`` (equal parts between two junctions);
- junctions closer than ``MERGE_M`` (dual carriageways) make one cut;
- each road is oriented west→east (or south→north) before cutting, so codes
  ``<road_code>-<nn>`` run the same way whatever direction the survey digitised it: the same
  input always gives the same codes;
- 起点/终点 name the crossing road ("人民路与民主路交叉口"), a free end ("人民路西端") or,
  for a length cut, the chainage ("人民路K1+500").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
import shapely.ops
from shapely import LineString
from shapely.geometry.base import BaseGeometry

from geoapi.grids.metric import Frame, as_multi

MAX_SEGMENT_M = 500.0
MERGE_M = 30.0
SNAP_M = 1.0
GRADES = ("快速路", "主干路", "次干路", "支路", "街巷")


@dataclass(frozen=True)
class RoadLine:
    """One road's centreline(s) in EPSG:4490."""

    code: str
    name: str
    grade: str | None
    geometry: BaseGeometry


@dataclass(frozen=True)
class _Road:
    code: str
    name: str
    grade: str | None
    line: LineString  # metres, oriented
    east_west: bool


def crossing_label(name: str, other: str) -> str:
    return f"{name}与{other}交叉口"


def chainage_label(name: str, pos_m: float) -> str:
    km, m = divmod(int(round(pos_m)), 1000)
    return f"{name}K{km}+{m:03d}"


def _merge_parts(geom: BaseGeometry) -> list[LineString]:
    merged = shapely.line_merge(shapely.union_all(shapely.get_parts(geom)))
    return [g for g in shapely.get_parts(merged) if g.length > 0]


def _orient(line: LineString) -> tuple[LineString, bool]:
    (x0, y0), (x1, y1) = line.coords[0], line.coords[-1]
    east_west = abs(x1 - x0) >= abs(y1 - y0)
    backwards = x1 < x0 if east_west else y1 < y0
    return (line.reverse() if backwards else line), east_west


def _prepare(roads: list[RoadLine], frame: Frame) -> list[_Road]:
    """Group by code, merge pieces; a road in disjoint pieces becomes several, coded in order."""
    by_code: dict[str, list[RoadLine]] = {}
    for r in roads:
        by_code.setdefault(r.code, []).append(r)
    out: list[_Road] = []
    for code in sorted(by_code):
        group = by_code[code]
        merged = _merge_parts(frame.to_m(shapely.union_all([g.geometry for g in group])))
        oriented = [_orient(p) for p in merged]
        # disjoint pieces of one road: number them west→east / south→north too
        oriented.sort(key=lambda t: (t[0].coords[0][0], t[0].coords[0][1]) if t[1] else
                      (t[0].coords[0][1], t[0].coords[0][0]))
        for line, ew in oriented:
            out.append(_Road(code, group[0].name, group[0].grade, line, ew))
    return out


def _junctions(roads: list[_Road]) -> list[dict[float, str]]:
    """For each road: position along it (m) → name of the road meeting it there."""
    lines = np.array([r.line for r in roads], dtype=object)
    left, right = shapely.STRtree(lines).query(lines, predicate="dwithin", distance=SNAP_M)
    out: list[dict[float, str]] = [{} for _ in roads]
    for i, j in zip(left.tolist(), right.tolist(), strict=True):
        a, b = roads[i], roads[j]
        if i == j or a.code == b.code:
            continue
        meet = a.line.intersection(b.line)
        points = [p for p in shapely.get_parts(meet) if p.geom_type == "Point"]
        if not points:  # a T-junction stopping a hair short of the other road
            points = [shapely.shortest_line(a.line, b.line).interpolate(0.5, normalized=True)]
        for p in points:
            out[i][float(a.line.project(p))] = b.name
    return out


def cut_positions(name: str, length_m: float, east_west: bool, junctions: dict[float, str]) -> dict[float, str]:
    """Where a road is cut (metres along it) and what each cut is called: its two ends
    (西端/东端 or 南端/北端) and every junction (X与Y交叉口); a junction at an end names the end."""
    ends = ("西端", "东端") if east_west else ("南端", "北端")
    cuts: dict[float, str] = {0.0: name + ends[0], length_m: name + ends[1]}
    for pos, other in sorted(junctions.items()):
        near = [c for c in cuts if abs(c - pos) < MERGE_M]
        if near:
            for c in near:
                if c in (0.0, length_m) and cuts[c].endswith("端"):
                    cuts[c] = crossing_label(name, other)
            continue
        cuts[pos] = crossing_label(name, other)
    return cuts


def cut_pieces(name: str, cuts: dict[float, str], max_length_m: float) -> list[tuple[float, float, str, str]]:
    """(start_m, end_m, start_desc, end_desc) of each segment: between cuts, split evenly so
    none is longer than ``max_length_m``; inner split points are named by chainage (K0+600)."""
    stops = sorted(cuts)
    out = []
    for a, b in zip(stops, stops[1:], strict=False):
        n = max(1, math.ceil((b - a) / max_length_m - 1e-9))
        inner = [a + (b - a) * k / n for k in range(n + 1)]
        for k in range(n):
            s0, s1 = inner[k], inner[k + 1]
            d0 = cuts[a] if k == 0 else chainage_label(name, s0)
            d1 = cuts[b] if k == n - 1 else chainage_label(name, s1)
            out.append((s0, s1, d0, d1))
    return out


def split_roads(roads: list[RoadLine], *, max_length_m: float = MAX_SEGMENT_M) -> list[tuple[dict[str, Any], BaseGeometry]]:
    """Segment rows ``(props, MultiLineString in EPSG:4490)`` for the road_segments layer."""
    if max_length_m <= 0:
        raise ValueError(f"max_length_m must be positive, not {max_length_m}")
    if not roads:
        return []
    frame = Frame.around([r.geometry for r in roads])
    prepared = _prepare(roads, frame)
    junctions = _junctions(prepared)
    rows: list[tuple[dict[str, Any], BaseGeometry]] = []
    pieces_by_road = [(road, cut_pieces(road.name, cut_positions(road.name, road.line.length, road.east_west, j),
                                        max_length_m))
                      for road, j in zip(prepared, junctions, strict=True)]
    totals: dict[str, int] = {}
    for road, pieces in pieces_by_road:
        totals[road.code] = totals.get(road.code, 0) + len(pieces)
    width = {code: 3 if n > 99 else 2 for code, n in totals.items()}  # nn, or nnn past 99
    counter = dict.fromkeys(totals, 0)
    for road, pieces in pieces_by_road:
        for s0, s1, d0, d1 in pieces:
            counter[road.code] += 1
            geom = shapely.ops.substring(road.line, s0, s1)
            props = {"segment_code": f"{road.code}-{counter[road.code]:0{width[road.code]}d}",
                     "road_code": road.code, "road_name": road.name, "start_desc": d0, "end_desc": d1,
                     "length_m": round(s1 - s0, 1)}
            if road.grade in GRADES:
                props["road_grade"] = road.grade
            rows.append((props, as_multi(frame.to_deg(geom))))
    return rows
