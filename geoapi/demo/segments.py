"""路长制 road segments: each road cut at its crossings and at most every 500 m.

Codes are ``<road_code>-<nn>``; start/end descriptions name the crossing road
("人民路与民主路交叉口"), a road end ("人民路西端") or, for a length cut, the chainage
("人民路K2+500"). 路长 by level 市级/区级/街道级/社区级 (DOMAIN.md §4), names made up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cache

import numpy as np
import shapely
import shapely.ops
from shapely.geometry.base import BaseGeometry

from geoapi.demo.streets import Road, build_roads, crossing_label, intersections

MAX_SEGMENT_M = 500.0
MERGE_M = 30.0  # crossings closer than this (dual carriageway junctions) make one cut


@dataclass(frozen=True)
class Segment:
    code: str
    road: Road
    start_m: float
    end_m: float
    start_desc: str
    end_desc: str
    line_xy: BaseGeometry = field(repr=False)

    @property
    def span_label(self) -> str:
        """"民主路—焦东路段" style: the stretch between the two ends, for addresses and names."""
        return f"{_short(self.road.name, self.start_desc)}—{_short(self.road.name, self.end_desc)}段"

    @property
    def length_m(self) -> float:
        return self.end_m - self.start_m


def _short(road_name: str, desc: str) -> str:
    if desc.endswith("交叉口"):
        return desc.removeprefix(f"{road_name}与").removesuffix("交叉口")
    return desc.removeprefix(road_name)


def _chainage(name: str, pos: float) -> str:
    km, m = divmod(int(round(pos)), 1000)
    return f"{name}K{km}+{m:03d}"


def _road_segments(road: Road, crossings: dict[float, str]) -> list[Segment]:
    length = road.length_m
    cuts: dict[float, str] = {0.0: f"{road.name}{'西' if road.east_west else '南'}端",
                              length: f"{road.name}{'东' if road.east_west else '北'}端"}
    for pos, other in sorted(crossings.items()):
        near = [c for c in cuts if abs(c - pos) < MERGE_M]
        if near:  # a junction at the road's end names the end
            for c in near:
                if c in (0.0, length) and cuts[c].endswith("端"):
                    cuts[c] = crossing_label(road.name, other)
            continue
        cuts[pos] = crossing_label(road.name, other)
    stops = sorted(cuts)
    segs: list[tuple[float, float, str, str]] = []
    for a, b in zip(stops, stops[1:], strict=False):
        n = max(1, math.ceil((b - a) / MAX_SEGMENT_M - 1e-9))
        inner = [a + (b - a) * k / n for k in range(n + 1)]
        for k in range(n):
            s0, s1 = inner[k], inner[k + 1]
            d0 = cuts[a] if k == 0 else _chainage(road.name, s0)
            d1 = cuts[b] if k == n - 1 else _chainage(road.name, s1)
            segs.append((s0, s1, d0, d1))
    return [Segment(f"{road.code}-{i + 1:02d}", road, s0, s1, d0, d1,
                    shapely.ops.substring(road.line_xy, s0, s1))
            for i, (s0, s1, d0, d1) in enumerate(segs)]


@cache
def build_segments() -> tuple[Segment, ...]:
    roads = build_roads()
    per_road: dict[str, dict[float, str]] = {r.code: {} for r in roads}
    for c in intersections(roads):
        per_road[c.road_a][c.pos_a_m] = c.name_b
        per_road[c.road_b][c.pos_b_m] = c.name_a
    out: list[Segment] = []
    for r in roads:
        out.extend(_road_segments(r, per_road[r.code]))
    return tuple(out)


@cache
def _index() -> tuple[dict[str, int], list[np.ndarray], list[int]]:
    segs = build_segments()
    road_idx = {r.code: i for i, r in enumerate(build_roads())}
    starts: list[list[float]] = [[] for _ in road_idx]
    first: list[int] = [0] * len(road_idx)
    for k, s in enumerate(segs):
        i = road_idx[s.road.code]
        if not starts[i]:
            first[i] = k
        starts[i].append(s.start_m)
    return road_idx, [np.array(s) for s in starts], first


def segment_index(road: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Index into build_segments() of the segment at ``pos`` metres along road number ``road``."""
    _, starts, first = _index()
    out = np.empty(len(road), dtype=np.int64)
    for i in np.unique(road).tolist():
        sel = road == i
        k = np.searchsorted(starts[i], pos[sel], side="right") - 1
        out[sel] = first[i] + np.clip(k, 0, len(starts[i]) - 1)
    return out
