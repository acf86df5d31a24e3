"""A plausible street network of the 焦作 city centre, named with real Jiaozuo roads.

The arterials carry real names (东环路 is today's 山阳路, 西环路 today's 普济路, …) at
approximate positions; the grid is rotated a little and the roads curve gently. Local streets
(支路/街巷) fill the blocks with illustrative names. Geometry is schematic, not surveyed, and
does not depend on the demo seed, so road codes are stable across runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cache

import numpy as np
import shapely
import shapely.ops
from shapely import LineString, Point
from shapely.geometry.base import BaseGeometry

from geoapi.demo.geo import LAT0, LON0, geom_to_lonlat, to_xy, urban_area_xy

GRADES = ("主干路", "次干路", "支路", "街巷")
WIDTH_M = {"主干路": 40.0, "次干路": 28.0, "支路": 16.0, "街巷": 9.0}
ROTATION_DEG = 2.0  # the city grid runs a few degrees anticlockwise of true east–west

# (name, grade, latitude, lon from, lon to), north → south
EAST_WEST = (
    ("北环路", "主干路", 35.262, 113.180, 113.300),
    ("太行路", "主干路", 35.252, 113.172, 113.345),
    ("丰收路", "主干路", 35.242, 113.168, 113.350),
    ("建设路", "主干路", 35.231, 113.165, 113.360),
    ("人民路", "主干路", 35.221, 113.160, 113.370),
    ("和平街", "街巷", 35.2155, 113.222, 113.262),
    ("解放路", "主干路", 35.210, 113.165, 113.345),
    ("新园路", "次干路", 35.203, 113.188, 113.300),
    ("塔北路", "次干路", 35.197, 113.198, 113.292),
    ("塔南路", "主干路", 35.190, 113.175, 113.325),
    ("迎宾路", "次干路", 35.182, 113.205, 113.300),
)
# (name, grade, longitude, lat from, lat to), west → east
NORTH_SOUTH = (
    ("工业路", "次干路", 113.168, 35.186, 35.262),
    ("普济路", "主干路", 113.185, 35.180, 35.268),
    ("政二街", "街巷", 113.212, 35.205, 35.236),
    ("站前路", "次干路", 113.222, 35.180, 35.212),
    ("民主路", "主干路", 113.236, 35.176, 35.270),
    ("焦东路", "主干路", 113.256, 35.178, 35.266),
    ("群英路", "次干路", 113.270, 35.185, 35.256),
    ("中原路", "主干路", 113.284, 35.178, 35.262),
    ("山阳路", "主干路", 113.298, 35.180, 35.258),
    ("龙源路", "主干路", 113.316, 35.185, 35.256),
    ("待丰路", "次干路", 113.338, 35.200, 35.256),
)
# Illustrative names for the local streets between the arterials.
LOCAL_NAMES = (
    "新华街", "胜利路", "团结路", "自由路", "健康路", "幸福街", "文化路", "学生路", "公园路", "花园街",
    "友谊路", "映湖路", "园林路", "光明路", "建业街", "富民路", "春晓街", "民生路", "工农路", "红旗街",
    "前进路", "青年路", "朝阳路", "东方街", "育才路", "翠竹街", "康宁街", "兴业路", "百花街", "建华路",
    "解放街", "车站街", "焦南街", "焦北街", "七百间街", "新城街", "月季街", "桃园路", "杏林路", "槐荫街",
    "柳园街", "松林路", "梨园路", "东环街", "西环街", "平安路", "振兴路", "永安街", "福源路", "和顺街",
    "安居路", "长青街", "丹河路", "凤凰街", "雪莲路", "枫林路", "清风街", "明月路", "新民街", "益民路",
    "广场路", "体育路", "医院路", "矿区路", "煤城路", "山水路", "秀水街", "锦绣路", "华夏街", "天河路",
    "紫荆街", "牡丹路", "芙蓉街", "玉兰路", "海棠街", "石榴路", "银杏街", "竹林路", "兰亭街", "书院路",
)


@dataclass(frozen=True)
class Road:
    code: str
    name: str
    grade: str
    centreline: LineString  # EPSG:4490
    line_xy: LineString = field(repr=False, compare=False)  # local metres
    east_west: bool = True

    @property
    def width_m(self) -> float:
        return WIDTH_M[self.grade]

    @property
    def length_m(self) -> float:
        return float(self.line_xy.length)


@dataclass(frozen=True)
class Crossing:
    """Where two roads meet; positions are metres along each road from its start."""

    point: Point  # EPSG:4490
    road_a: str
    road_b: str
    name_a: str
    name_b: str
    pos_a_m: float
    pos_b_m: float


def _rotate(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    t = math.radians(ROTATION_DEG)
    return x * math.cos(t) - y * math.sin(t), x * math.sin(t) + y * math.cos(t)


def _curve(start: float, end: float, offset: float, *, amplitude: float, wavelength: float,
           phase: float, east_west: bool) -> LineString:
    """A gently curving road along one grid axis, in rotated local metres."""
    along = np.linspace(start, end, max(2, int(abs(end - start) / 50) + 1))
    across = offset + amplitude * np.sin(2 * math.pi * along / wavelength + phase)
    gx, gy = (along, across) if east_west else (across, along)
    x, y = _rotate(gx, gy)
    return LineString(np.column_stack([x, y]))


def _longest_part(geom: BaseGeometry) -> LineString | None:
    if geom.is_empty:
        return None
    if geom.geom_type == "LineString":
        return geom
    lines = [g for g in getattr(geom, "geoms", []) if g.geom_type == "LineString"]
    return max(lines, key=lambda g: g.length) if lines else None


def _arterial(name: str, grade: str, pos: float, a: float, b: float, ew: bool,
              rng: np.random.Generator) -> LineString:
    """An arterial at latitude (E–W) or longitude (N–S) ``pos`` from ``a`` to ``b``."""
    if ew:
        (start, end), _ = to_xy(np.array([a, b]), np.array([pos, pos]))
        offset = float(to_xy(np.array([LON0]), np.array([pos]))[1][0])
    else:
        _, (start, end) = to_xy(np.array([pos, pos]), np.array([a, b]))
        offset = float(to_xy(np.array([pos]), np.array([LAT0]))[0][0])
    amp = rng.uniform(15, 45) if grade == "主干路" else rng.uniform(8, 25)
    return _curve(float(start), float(end), offset, amplitude=amp, wavelength=rng.uniform(4000, 9000),
                  phase=rng.uniform(0, 2 * math.pi), east_west=ew)


def _trim_between(line: LineString, a: LineString, b: LineString) -> LineString | None:
    """Cut ``line`` so it runs from where it crosses ``a`` to where it crosses ``b`` (T-junctions)."""
    pa, pb = line.intersection(a), line.intersection(b)
    if pa.is_empty or pb.is_empty:
        return None
    da = min(line.project(p) for p in getattr(pa, "geoms", [pa]))
    db = max(line.project(p) for p in getattr(pb, "geoms", [pb]))
    lo, hi = sorted((da, db))
    if hi - lo < 150:
        return None
    return shapely.ops.substring(line, lo, hi)


def _locals(arterials_ew: list[tuple[float, LineString]], arterials_ns: list[tuple[float, LineString]],
            rng: np.random.Generator, *, east_west: bool) -> list[tuple[str, LineString]]:
    """Local streets in the gaps between parallel arterials, each spanning 1–4 cross blocks."""
    parallel, cross = (arterials_ew, arterials_ns) if east_west else (arterials_ns, arterials_ew)
    parallel = sorted(parallel, key=lambda t: t[0])
    cross = sorted(cross, key=lambda t: t[0])
    out: list[tuple[str, LineString]] = []
    for (o1, _), (o2, _) in zip(parallel, parallel[1:], strict=False):
        gap = o2 - o1
        k = int(round(gap / 260)) - 1
        for i in range(1, k + 1):
            offset = o1 + gap * i / (k + 1) + rng.uniform(-35, 35)
            first = int(rng.integers(0, len(cross) - 1))
            span = int(rng.integers(1, 5))
            last = min(first + span, len(cross) - 1)
            (ca, la), (cb, lb) = cross[first], cross[last]
            line = _curve(ca - 200, cb + 200, offset, amplitude=rng.uniform(3, 12),
                          wavelength=rng.uniform(1500, 4000), phase=rng.uniform(0, 2 * math.pi),
                          east_west=east_west)
            trimmed = _trim_between(line, la, lb)
            if trimmed is not None:
                out.append(("", trimmed))
    return out


@cache
def build_roads() -> tuple[Road, ...]:
    """Every road of the demo network, arterials first, codes JZ-001, JZ-002, …"""
    rng = np.random.default_rng(20190723)  # fixed: the network is the same for every demo seed
    area = urban_area_xy()
    raw: list[tuple[str, str, LineString, bool]] = []
    ew_lines, ns_lines = [], []
    for name, grade, lat, a, b in EAST_WEST:
        line = _arterial(name, grade, lat, a, b, True, rng)
        raw.append((name, grade, line, True))
        if grade != "街巷":
            ew_lines.append((float(to_xy(np.array([LON0]), np.array([lat]))[1][0]), line))
    for name, grade, lon, a, b in NORTH_SOUTH:
        line = _arterial(name, grade, lon, a, b, False, rng)
        raw.append((name, grade, line, False))
        if grade != "街巷":
            ns_lines.append((float(to_xy(np.array([lon]), np.array([LAT0]))[0][0]), line))
    names = iter(LOCAL_NAMES)
    for ew in (True, False):
        for _, line in _locals(ew_lines, ns_lines, rng, east_west=ew):
            grade = "支路" if line.length > 700 else "街巷"
            raw.append((next(names), grade, line, ew))
    roads = []
    for name, grade, line, ew in raw:
        clipped = _longest_part(line.intersection(area.buffer(-25)))
        if clipped is None or clipped.length < 200:
            continue
        clipped = shapely.set_precision(clipped, 0.01)
        code = f"JZ-{len(roads) + 1:03d}"
        roads.append(Road(code, name, grade, geom_to_lonlat(clipped), clipped, ew))
    return tuple(roads)


def intersections(roads: tuple[Road, ...] | None = None, tolerance_m: float = 1.0) -> list[Crossing]:
    """Every place two roads meet (crossings and T-junctions), in a stable order."""
    roads = build_roads() if roads is None else roads
    lines = np.array([r.line_xy for r in roads], dtype=object)
    tree = shapely.STRtree(lines)
    left, right = tree.query(lines, predicate="dwithin", distance=tolerance_m)
    out: list[Crossing] = []
    for i, j in zip(left.tolist(), right.tolist(), strict=True):
        if i >= j:
            continue
        a, b = roads[i], roads[j]
        meet = a.line_xy.intersection(b.line_xy)
        points = [p for p in getattr(meet, "geoms", [meet]) if p.geom_type == "Point" and not p.is_empty]
        if not points:  # a T-junction that stops a hair short of the other road
            points = [shapely.shortest_line(a.line_xy, b.line_xy).interpolate(0.5, normalized=True)]
        for p in points:
            out.append(Crossing(geom_to_lonlat(p), a.code, b.code, a.name, b.name,
                                float(a.line_xy.project(p)), float(b.line_xy.project(p))))
    return out


def road_by_name(name: str) -> Road:
    return next(r for r in build_roads() if r.name == name)
