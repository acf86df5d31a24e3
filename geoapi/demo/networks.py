"""Drainage and heating networks under the demo streets, with the manholes they need.

Drainage (雨水 and 污水, one pipe each under a street): a manhole every 40–60 m, straight
pipes between them, inverts falling with the flow (CJJ 61 管内底 elevations, Z = invert).
Heating (热力): 一级网 along the 主干路 with a valve chamber about every 150 m, and from each
heat exchange station a 二级网 spur to the street plus branches along it; together about
300 km. Everything here is in local metres; assets.py converts to EPSG:4490.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely

from geoapi.demo.placement import ground_elevation, road_frame
from geoapi.demo.streets import build_roads

GRADE_ORDER = {"主干路": 0, "次干路": 1, "支路": 2, "街巷": 3}
RAIN_DIAMETERS = {"主干路": (1000, 1200, 1500), "次干路": (800, 1000), "支路": (500, 600, 800), "街巷": (400, 500)}
SEWER_DIAMETERS = {"主干路": (500, 600, 800), "次干路": (400, 500), "支路": (300, 400), "街巷": (300,)}
HEAT_TOTAL_M = 300_000.0
HEAT_CHAMBER_M = 150.0
POINT_PREFIX = {"雨水": "YS", "污水": "WS", "热力": "RL"}


@dataclass
class NetPoints:
    """Manholes of a network: position, road placement and survey data."""

    x: np.ndarray
    y: np.ndarray
    road: np.ndarray
    pos: np.ndarray
    left: np.ndarray
    use: np.ndarray         # well_use
    point_no: np.ndarray    # 物探点号
    depth: np.ndarray       # well depth, m


@dataclass
class NetPipes:
    columns: dict[str, list]
    geoms_xy: list          # LineString Z in local metres
    road: np.ndarray
    pos: np.ndarray


def concat_points(parts: list[NetPoints]) -> NetPoints:
    if not parts:
        e = np.array([])
        return NetPoints(e, e, e.astype(int), e, e, e.astype(object), e.astype(object), e)
    return NetPoints(*(np.concatenate([getattr(p, f) for p in parts]) for f in NetPoints.__dataclass_fields__))


def drainage_roads(scale: int) -> list[int]:
    """Roads that get drainage pipes: by grade, while their manholes stay within ~55 % of ``scale``."""
    roads = build_roads()
    order = sorted(range(len(roads)), key=lambda i: (GRADE_ORDER[roads[i].grade], roads[i].code))
    chosen, est = [], 0.0
    for i in order:
        est += 2 * roads[i].length_m / 50.0
        if est > 0.55 * scale:
            break
        chosen.append(i)
    return chosen


def drainage(scale: int, rng: np.random.Generator) -> tuple[NetPoints, NetPipes]:
    roads = build_roads()
    frame = road_frame()
    points: list[NetPoints] = []
    cols: dict[str, list] = {k: [] for k in (
        "segment_no", "pipe_class", "pipe_subclass", "feature_code", "start_point_no", "end_point_no",
        "start_depth_m", "end_depth_m", "start_elev_m", "end_elev_m", "elev_type", "diameter_mm",
        "material", "burial_type", "flow_direction", "build_year", "length_3d_m")}
    geoms: list = []
    pipe_road, pipe_pos = [], []
    serial = {"雨水": 0, "污水": 0}
    for i in drainage_roads(scale):
        road = roads[i]
        for use, side in (("雨水", 1.0), ("污水", -1.0)):
            spacing = rng.uniform(40, 60)
            n = max(1, int(round(road.length_m / spacing)))
            pos = np.linspace(0.0, road.length_m, n + 1)
            left = side * road.width_m / 6
            x, y, _, _ = frame.place(np.full(n + 1, i), pos, left)
            ground = ground_elevation(x, y)
            downhill = ground[0] >= ground[-1]
            flow = np.arange(n + 1) if downhill else np.arange(n, -1, -1)  # manholes in flow order
            # deeper downstream (gravity flow), 1.6 m at the head, at most ~5 m
            depth_flow = np.minimum(1.6 + 0.004 * np.abs(pos[flow] - pos[flow[0]]), 4.8) + rng.uniform(0, 0.2, n + 1)
            depth = np.empty(n + 1)
            depth[flow] = depth_flow
            invert = ground - depth
            nums = np.array([f"{POINT_PREFIX[use]}{serial[use] + k + 1:06d}" for k in range(n + 1)], dtype=object)
            serial[use] += n + 1
            points.append(NetPoints(x, y, np.full(n + 1, i), pos, np.full(n + 1, left),
                                    np.full(n + 1, use, dtype=object), nums, np.round(depth + 0.3, 2)))
            diam = int(rng.choice((RAIN_DIAMETERS if use == "雨水" else SEWER_DIAMETERS)[road.grade]))
            material = "混凝土" if diam >= 600 else str(rng.choice(["PVC", "PE"]))
            year = int(rng.integers(1985, 2023))
            a, b = flow[:-1], flow[1:]
            xyz = np.stack([np.column_stack([x[a], y[a], invert[a]]), np.column_stack([x[b], y[b], invert[b]])], axis=1)
            geoms.extend(shapely.linestrings(xyz).tolist())
            length3d = np.linalg.norm(xyz[:, 1] - xyz[:, 0], axis=1)
            cols["segment_no"].extend(f"{p}-{q}" for p, q in zip(nums[a], nums[b], strict=True))
            cols["pipe_class"].extend(["排水"] * n)
            cols["pipe_subclass"].extend([use] * n)
            cols["feature_code"].extend(["52011000" if use == "雨水" else None] * n)
            cols["start_point_no"].extend(nums[a].tolist())
            cols["end_point_no"].extend(nums[b].tolist())
            cols["start_depth_m"].extend(np.round(depth[a], 2).tolist())
            cols["end_depth_m"].extend(np.round(depth[b], 2).tolist())
            cols["start_elev_m"].extend(np.round(invert[a], 3).tolist())
            cols["end_elev_m"].extend(np.round(invert[b], 3).tolist())
            cols["elev_type"].extend(["管内底"] * n)
            cols["diameter_mm"].extend([diam] * n)
            cols["material"].extend([material] * n)
            cols["burial_type"].extend(["直埋"] * n)
            cols["flow_direction"].extend(["顺"] * n)
            cols["build_year"].extend([year] * n)
            cols["length_3d_m"].extend(np.round(length3d, 2).tolist())
            pipe_road.append(np.full(n, i))
            pipe_pos.append((pos[a] + pos[b]) / 2)
    return concat_points(points), NetPipes(cols, geoms, _cat(pipe_road), _cat(pipe_pos))


def _cat(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts) if parts else np.array([])


def heat_station_sites(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(road, pos, left) of the heat exchange stations: inside blocks beside 次干路/支路/街巷."""
    roads = build_roads()
    frame = road_frame()
    weights = np.array([0.3 if r.grade == "主干路" else 1.0 for r in roads])
    road, pos = frame.sample(rng, n, weights)
    pos = np.clip(pos, 40.0, np.maximum(frame.length[road] - 40.0, 40.0))
    side = np.where(rng.random(n) < 0.5, -1.0, 1.0)
    widths = np.array([r.width_m for r in roads])
    left = side * (widths[road] / 2 + rng.uniform(25, 60, n))
    return road, pos, left


def _line_z(coords_xy: np.ndarray, depth: float) -> shapely.LineString:
    z = ground_elevation(coords_xy[:, 0], coords_xy[:, 1]) - depth
    return shapely.LineString(np.column_stack([coords_xy, np.round(z, 3)]))


def _along(road_idx: int, start: float, end: float, left: float, step: float = 25.0) -> np.ndarray:
    """Coordinates following the road from ``start`` to ``end`` metres at ``left`` metres offset."""
    frame = road_frame()
    n = max(2, int(abs(end - start) / step) + 1)
    pos = np.linspace(start, end, n)
    x, y, _, _ = frame.place(np.full(n, road_idx), pos, left)
    return np.column_stack([x, y])


def heating(station_sites: tuple[np.ndarray, np.ndarray, np.ndarray], station_codes: list[str],
            rng: np.random.Generator) -> tuple[NetPoints, NetPipes]:
    """一级网 under the 主干路 and a 二级网 from every station; valve chambers are 热力 manholes."""
    roads = build_roads()
    frame = road_frame()
    cols: dict[str, list] = {k: [] for k in (
        "segment_no", "pipe_class", "pipe_subclass", "start_point_no", "end_point_no", "start_depth_m",
        "end_depth_m", "elev_type", "diameter_mm", "material", "burial_type", "network_level",
        "pressure_mpa", "build_year", "length_3d_m", "name")}
    geoms: list = []
    p_road, p_pos = [], []
    pts: list[NetPoints] = []
    serial = 0

    def chamber(i: int, pos: np.ndarray, left: float) -> np.ndarray:
        nonlocal serial
        x, y, _, _ = frame.place(np.full(len(pos), i), pos, left)
        nums = np.array([f"RL{serial + k + 1:06d}" for k in range(len(pos))], dtype=object)
        serial += len(pos)
        pts.append(NetPoints(x, y, np.full(len(pos), i), pos, np.full(len(pos), left),
                             np.full(len(pos), "热力", dtype=object), nums, np.round(rng.uniform(1.8, 2.6, len(pos)), 2)))
        return nums

    def add(geom: shapely.LineString, start: str, end: str, level: str, diam: int, i: int, pos: float,
            name: str, depth: float) -> None:
        c = shapely.get_coordinates(geom, include_z=True)
        geoms.append(geom)
        cols["segment_no"].append(f"{start}-{end}")
        cols["pipe_class"].append("热力")
        cols["pipe_subclass"].append("热水")
        cols["start_point_no"].append(start)
        cols["end_point_no"].append(end)
        cols["start_depth_m"].append(depth)
        cols["end_depth_m"].append(depth)
        cols["elev_type"].append("管顶")
        cols["diameter_mm"].append(diam)
        cols["material"].append("钢")
        cols["burial_type"].append("直埋")
        cols["network_level"].append(level)
        cols["pressure_mpa"].append(1.6 if level == "一级网" else 0.6)
        cols["build_year"].append(int(rng.integers(1998, 2024)))
        cols["length_3d_m"].append(round(float(np.linalg.norm(np.diff(c, axis=0), axis=1).sum()), 2))
        cols["name"].append(name)
        p_road.append(i)
        p_pos.append(pos)

    primary_len = 0.0
    for i, road in enumerate(roads):
        if road.grade != "主干路":
            continue
        left = road.width_m / 2 - 5  # under the green belt / sidewalk
        n = max(1, int(round(road.length_m / HEAT_CHAMBER_M)))
        pos = np.linspace(0.0, road.length_m, n + 1)
        nums = chamber(i, pos, left)
        diam = int(rng.choice((500, 600, 700, 800)))
        for k in range(n):
            g = _line_z(_along(i, pos[k], pos[k + 1], left), 1.5)
            add(g, nums[k], nums[k + 1], "一级网", diam, i, (pos[k] + pos[k + 1]) / 2, f"{road.name}一级网", 1.5)
        primary_len += road.length_m
    s_road, s_pos, s_left = station_sites
    widths = np.array([r.width_m for r in roads])
    foot_left = np.sign(s_left) * (widths[s_road] / 2 - 3)
    spur = np.abs(s_left - foot_left)
    branch = float(np.clip((HEAT_TOTAL_M - primary_len - spur.sum()) / (2 * len(s_road)), 60.0, 600.0))
    sx, sy, _, _ = frame.place(s_road, s_pos, s_left)
    for k in range(len(s_road)):
        i, p0, fl = int(s_road[k]), float(s_pos[k]), float(foot_left[k])
        (junction,) = chamber(i, np.array([p0]), fl)
        lo, hi = max(0.0, p0 - branch), min(frame.length[i], p0 + branch)
        ends = chamber(i, np.array([lo, hi]), fl)
        fx, fy, _, _ = frame.place(np.array([i]), np.array([p0]), fl)
        code = station_codes[k]
        diam = int(rng.choice((150, 200, 250)))
        spur_line = _line_z(np.array([[sx[k], sy[k]], [fx[0], fy[0]]]), 1.2)
        add(spur_line, code, junction, "二级网", diam + 50, i, p0, f"{code}二级网出站管", 1.2)
        for end, a, b in ((ends[0], p0, lo), (ends[1], p0, hi)):
            if abs(b - a) < 1.0:
                continue
            add(_line_z(_along(i, a, b, fl), 1.2), junction, end, "二级网", diam, i, (a + b) / 2,
                f"{code}二级网", 1.2)
    return concat_points(pts), NetPipes(cols, geoms, np.array(p_road), np.array(p_pos))
