"""路长制 road segments: each road cut at its crossings and at most every 500 m.

Codes are ``<road_code>-<nn>``; start/end descriptions name the crossing road
("人民路与民主路交叉口"), a road end ("人民路西端") or, for a length cut, the chainage
("人民路K2+500"). 路长 by level 市级/区级/街道级/社区级 (DOMAIN.md §4), names made up.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

import numpy as np
import shapely
import shapely.ops
from shapely.geometry.base import BaseGeometry

from geoapi.demo.streets import Road, build_roads, intersections
from geoapi.grids.segments import MAX_SEGMENT_M, cut_pieces, cut_positions


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


def _road_segments(road: Road, crossings: dict[float, str]) -> list[Segment]:
    # The product's own rule (geoapi.grids.segments), so the demo's segments are what
    # `geoapi grids segments` would cut from the same roads.
    cuts = cut_positions(road.name, road.length_m, road.east_west, crossings)
    return [Segment(f"{road.code}-{i + 1:02d}", road, s0, s1, d0, d1,
                    shapely.ops.substring(road.line_xy, s0, s1))
            for i, (s0, s1, d0, d1) in enumerate(cut_pieces(road.name, cuts, MAX_SEGMENT_M))]


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
