"""Public toilets, transfer stations, heat exchange stations, parking bays and 积水点.

Counts are 焦作's published figures (179 公厕, 90 转运站, 328 换热站); 11 积水点 at the
underpasses and low roads that flood. Positions come from the street network; names and
figures are plausible, not surveyed.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

from geoapi.demo.people import CITY_BUREAU, mobile_phones, office_phones, person_names
from geoapi.demo.placement import road_frame
from geoapi.demo.segments import build_segments
from geoapi.demo.streets import build_roads, intersections

TOILETS, TRANSFER_STATIONS, HEAT_STATIONS = 179, 90, 328
ESTATE_WORDS = ("丰收", "建设", "和平", "锦祥", "翠园", "阳光", "幸福", "康乐", "东方", "花园", "怡馨", "春晖",
                "金源", "瑞丰", "世纪", "龙源", "山阳", "太行", "学府", "桂园", "映湖", "御景", "泰和", "兴华")
ESTATE_KINDS = ("小区", "花园", "家园", "苑", "新村", "嘉园")


def _dates(rng: np.random.Generator, n: int, start: str, end: str) -> np.ndarray:
    lo, hi = np.datetime64(start), np.datetime64(end)
    return (lo + rng.integers(0, int((hi - lo).astype(int)) + 1, n).astype("timedelta64[D]")).astype(object)


def roadside_sites(rng: np.random.Generator, n: int, extra_m: tuple[float, float]) -> tuple[np.ndarray, ...]:
    """(road, pos, left) for n sites set back ``extra_m`` beyond the road's edge."""
    roads = build_roads()
    frame = road_frame()
    road, pos = frame.sample(rng, n)
    pos = np.clip(pos, 30.0, np.maximum(frame.length[road] - 30.0, 30.0))
    half = np.array([r.width_m / 2 for r in roads])[road]
    left = np.where(rng.random(n) < 0.5, -1.0, 1.0) * (half + rng.uniform(*extra_m, n))
    return road, pos, left


def _unique_names(stems: list[str], suffix: str) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for s in stems:
        seen[s] = seen.get(s, 0) + 1
        out.append(f"{s}{suffix}" if seen[s] == 1 else f"{s}{seen[s]}号{suffix}")
    return out


def toilets(rng: np.random.Generator, road: np.ndarray) -> dict[str, np.ndarray]:
    n = len(road)
    names = [build_roads()[i].name for i in road.tolist()]
    kind = rng.choice(3, n, p=[0.7, 0.25, 0.05])
    ttype = np.array(["独立式", "附属式", "活动式"], dtype=object)[kind]
    grade = np.array(["一类", "二类", "三类"], dtype=object)[rng.choice(3, n, p=[0.25, 0.6, 0.15])]
    area = np.round(np.where(kind == 0, rng.uniform(60, 140, n), rng.uniform(20, 60, n)), 1)
    male = rng.integers(2, 8, n)
    allday = rng.random(n) < 0.3
    return {
        "name": np.array(_unique_names(names, "公厕"), dtype=object),
        "status": np.array(["完好", "破损", "停用"], dtype=object)[rng.choice(3, n, p=[0.94, 0.04, 0.02])],
        "toilet_type": ttype,
        "grade": grade,
        "land_use": np.array(["R", "B", "S", "G", "A"], dtype=object)[rng.choice(5, n, p=[0.35, 0.25, 0.2, 0.15, 0.05])],
        "building_area_m2": area.astype(object),
        "plot_area_m2": np.where(kind == 0, np.round(area * rng.uniform(1.4, 2.0, n), 1), None).astype(object),
        "stalls_male": male.astype(object),
        "urinals_male": (male + rng.integers(0, 4, n)).astype(object),
        "stalls_female": np.round(male * 1.5).astype(int).astype(object),
        "has_third_toilet": (grade == "一类").astype(object),
        "has_accessible": (rng.random(n) < 0.8).astype(object),
        "has_baby_room": ((grade == "一类") & (rng.random(n) < 0.7)).astype(object),
        "open_hours": np.where(allday, "全天开放", "06:00-22:00").astype(object),
        "is_24h": allday.astype(object),
        "is_free": np.full(n, True, dtype=object),
        "is_open_to_public": np.full(n, True, dtype=object),
        "cleaning_company": np.array(["焦作市城市环境卫生服务中心", "焦作市洁城环境服务有限公司"], dtype=object)[rng.integers(0, 2, n)],
        "phone": np.array(office_phones(rng, n), dtype=object),
        "service_radius_m": np.full(n, 300, dtype=object),
        "dept_name": np.full(n, CITY_BUREAU, dtype=object),
        "owner_name": np.full(n, CITY_BUREAU, dtype=object),
        "maintainer_name": np.full(n, "焦作市环境卫生管理处", dtype=object),
        "or_date": _dates(rng, n, "2015-01-01", "2024-06-30"),
        "data_source": np.full(n, "实测", dtype=object),
    }


def transfer_stations(rng: np.random.Generator, road: np.ndarray) -> dict[str, np.ndarray]:
    n = len(road)
    names = [build_roads()[i].name for i in road.tolist()]
    cls = rng.choice(4, n, p=[0.04, 0.36, 0.45, 0.15])
    scale = np.array(["中型III", "小型IV", "小型V", "收集站"], dtype=object)[cls]
    cap = np.round(np.choose(cls, [rng.uniform(150, 300, n), rng.uniform(50, 150, n),
                                   rng.uniform(30, 50, n), rng.uniform(8, 29, n)]), 0)
    mode = np.array(["中型机动车", "小型机动车", "小型机动车", "人力"], dtype=object)[cls]
    radius = np.array([5.0, 3.0, 3.0, 0.4])[cls]
    streams = [["其他垃圾", "厨余垃圾"] if s else ["其他垃圾"] for s in (rng.random(n) < 0.6).tolist()]
    return {
        "name": np.array(_unique_names(names, "垃圾转运站"), dtype=object),
        "status": np.array(["运行", "检修"], dtype=object)[rng.choice(2, n, p=[0.95, 0.05])],
        "scale_class": scale,
        "design_capacity_tpd": cap.astype(object),
        "actual_tpd": np.round(cap * rng.uniform(0.6, 0.95, n), 1).astype(object),
        "process": np.array(["水平压缩", "竖直压缩", "分体式", "地埋式"], dtype=object)[rng.choice(4, n, p=[0.5, 0.2, 0.2, 0.1])],
        "waste_streams": np.array(streams + [None], dtype=object)[:-1],
        "container_count": rng.integers(1, 5, n).astype(object),
        "collection_mode": mode,
        "service_radius_km": radius.astype(object),
        "plot_area_m2": np.round(np.array([4000.0, 1500.0, 600.0, 200.0])[cls] * rng.uniform(0.8, 1.3, n), 0).astype(object),
        "min_building_distance_m": np.array([15.0, 10.0, 8.0, 5.0])[cls].astype(object),
        "deodorize": np.full(n, True, dtype=object),
        "dust": (cls < 3).astype(object),
        "leachate": (cls < 3).astype(object),
        "operator": np.full(n, "焦作市环境卫生管理处", dtype=object),
        "phone": np.array(office_phones(rng, n), dtype=object),
        "hours": np.full(n, "05:00-21:00", dtype=object),
        "dept_name": np.full(n, CITY_BUREAU, dtype=object),
        "owner_name": np.full(n, CITY_BUREAU, dtype=object),
        "maintainer_name": np.full(n, "焦作市环境卫生管理处", dtype=object),
        "data_source": np.full(n, "实测", dtype=object),
    }


def heat_station_codes(n: int) -> list[str]:
    return [f"HRZ-{k + 1:04d}" for k in range(n)]


def heat_stations(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    stems = [ESTATE_WORDS[a] + ESTATE_KINDS[b] for a, b in
             zip(rng.integers(0, len(ESTATE_WORDS), n).tolist(), rng.integers(0, len(ESTATE_KINDS), n).tolist(), strict=True)]
    design = np.round(rng.uniform(50_000, 300_000, n), -2)
    connected = np.round(design * rng.uniform(0.7, 1.0, n), -2)
    actual = np.round(connected * rng.uniform(0.85, 1.0, n), -2)
    kind = rng.choice(3, n, p=[0.8, 0.15, 0.05])
    return {
        "name": np.array(_unique_names(stems, "换热站"), dtype=object),
        "status": np.array(["运行", "检修", "停运"], dtype=object)[rng.choice(3, n, p=[0.93, 0.04, 0.03])],
        "station_code": np.array(heat_station_codes(n), dtype=object),
        "operator": np.full(n, "焦作市热力有限公司", dtype=object),
        "heat_source": np.array(["华润电力焦作热源", "丹河电厂热源", "中站热源厂"], dtype=object)[rng.choice(3, n, p=[0.6, 0.3, 0.1])],
        "station_type": np.array(["小区换热站", "区域换热站", "楼宇(板换)机组"], dtype=object)[kind],
        "medium": np.full(n, "热水", dtype=object),
        "unit_count": rng.integers(1, 4, n).astype(object),
        "design_area_m2": design.astype(object),
        "connected_area_m2": connected.astype(object),
        "actual_area_m2": actual.astype(object),
        "design_load_kw": np.round(design * 0.045, 0).astype(object),  # ~45 W/m²
        "primary_supply_t": np.round(rng.uniform(95, 115, n), 1).astype(object),
        "primary_return_t": np.round(rng.uniform(45, 55, n), 1).astype(object),
        "secondary_supply_t": np.round(rng.uniform(45, 55, n), 1).astype(object),
        "secondary_return_t": np.round(rng.uniform(35, 42, n), 1).astype(object),
        "commission_year": rng.integers(1995, 2024, n).astype(object),
        "metering": (rng.random(n) < 0.6).astype(object),
        "heat_intensity_gj_m2": np.round(rng.uniform(0.25, 0.45, n), 3).astype(object),
        "phone": np.array(office_phones(rng, n), dtype=object),
        "dept_name": np.full(n, CITY_BUREAU, dtype=object),
        "owner_name": np.full(n, "焦作市热力有限公司", dtype=object),
        "maintainer_name": np.full(n, "焦作市热力有限公司", dtype=object),
        "data_source": np.full(n, "实测", dtype=object),
    }


# ---- parking bays -------------------------------------------------------------------------

BAY_LEN, BAY_W, BAY_PITCH = 6.0, 2.5, 6.5
BAY_BLOCK = 16           # bays per run of kerb
BAY_KEEP = 0.08          # share of candidate runs that are marked out


def bay_sites(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(road, pos, left) of parallel kerbside bays on 次干路/支路, clear of junctions (GA/T 850)."""
    roads = build_roads()
    crossings: dict[int, list[float]] = {i: [] for i in range(len(roads))}
    idx = {r.code: i for i, r in enumerate(roads)}
    for c in intersections(roads):
        crossings[idx[c.road_a]].append(c.pos_a_m)
        crossings[idx[c.road_b]].append(c.pos_b_m)
    out_r, out_p, out_l = [], [], []
    for i, r in enumerate(roads):
        if r.grade not in ("次干路", "支路"):
            continue
        slots = np.arange(40.0, r.length_m - 40.0, BAY_PITCH)
        if len(slots) == 0:
            continue
        cross = np.array(crossings[i] or [-1e9])
        clear = np.min(np.abs(slots[:, None] - cross[None, :]), axis=1) > 40.0
        for side in (1.0, -1.0):
            block = (np.arange(len(slots)) // BAY_BLOCK)
            kept_blocks = rng.random(block.max() + 1) < BAY_KEEP
            sel = clear & kept_blocks[block]
            out_r.append(np.full(sel.sum(), i))
            out_p.append(slots[sel])
            out_l.append(np.full(sel.sum(), side * (r.width_m / 2 - 4.0 - BAY_W / 2)))
    return np.concatenate(out_r), np.concatenate(out_p), np.concatenate(out_l)


def bay_polygons_xy(road: np.ndarray, pos: np.ndarray, left: np.ndarray) -> np.ndarray:
    """6 m × 2.5 m rectangles centred on the sites, long side along the kerb."""
    import shapely
    x, y, tx, ty = road_frame().place(road, pos, left)
    nx, ny = -ty, tx
    hl, hw = BAY_LEN / 2, BAY_W / 2
    corners = [(-hl, -hw), (hl, -hw), (hl, hw), (-hl, hw), (-hl, -hw)]
    ring = np.stack([np.column_stack([x + a * tx + b * nx, y + a * ty + b * ny]) for a, b in corners], axis=1)
    return shapely.polygons(ring)


def bays(rng: np.random.Generator, n: int, as_of: dt.datetime) -> dict[str, np.ndarray]:
    kind = rng.choice(3, n, p=[0.9, 0.07, 0.03])
    occ = np.array(["空闲", "占用", "禁用"], dtype=object)[rng.choice(3, n, p=[0.45, 0.53, 0.02])]
    minutes = rng.integers(1, 600, n)
    return {
        "name": np.full(n, "路内停车泊位", dtype=object),
        "status": np.array(["完好", "破损"], dtype=object)[rng.choice(2, n, p=[0.97, 0.03])],
        "bay_no": np.array([f"P{k + 1:05d}" for k in range(n)], dtype=object),
        "location_type": np.full(n, "路内", dtype=object),
        "layout": np.full(n, "平行式", dtype=object),
        "vehicle_class": np.array(["小型车", "新能源", "无障碍"], dtype=object)[kind],
        "length_m": np.full(n, BAY_LEN, dtype=object),
        "width_m": np.full(n, BAY_W, dtype=object),
        "charging": np.full(n, True, dtype=object),
        "time_rule": np.full(n, "07:00-21:00", dtype=object),
        "sensor_type": np.array(["地磁", "视频桩"], dtype=object)[rng.choice(2, n, p=[0.8, 0.2])],
        "sensor_id": np.array([f"DC{v:08d}" for v in rng.integers(0, 10**8, n).tolist()], dtype=object),
        "occupancy_state": occ,
        "occupancy_updated_at": np.array([as_of - dt.timedelta(minutes=int(m)) for m in minutes.tolist()], dtype=object),
        "operator": np.full(n, "焦作市城市停车管理有限公司", dtype=object),
        "approved_by": np.full(n, "焦作市公安局交通警察支队", dtype=object),
        "approved_date": _dates(rng, n, "2019-01-01", "2024-12-31"),
        "dept_name": np.full(n, CITY_BUREAU, dtype=object),
        "owner_name": np.full(n, CITY_BUREAU, dtype=object),
        "maintainer_name": np.full(n, "焦作市城市停车管理有限公司", dtype=object),
        "data_source": np.full(n, "实测", dtype=object),
    }


# ---- waterlogging points ------------------------------------------------------------------

# (name, road, crossing road or None, fraction along road, site type, risk, history max depth cm)
WATERLOGGING = (
    ("塔南路铁路桥下穿", "塔南路", None, 0.42, "下穿通道(下立交)", "高", 65),
    ("民主路铁路桥下穿", "民主路", None, 0.18, "下穿通道(下立交)", "高", 58),
    ("焦东路铁路桥下凹段", "焦东路", None, 0.20, "下凹桥", "高", 52),
    ("山阳路铁路涵洞", "山阳路", None, 0.25, "铁路涵洞", "中", 45),
    ("中原路铁路桥下穿", "中原路", None, 0.15, "下穿通道(下立交)", "中", 40),
    ("人民路普济路口低洼段", "人民路", "普济路", 0.0, "低洼路段", "中", 32),
    ("建设路中原路口低洼段", "建设路", "中原路", 0.0, "低洼路段", "中", 28),
    ("解放路站前路口", "解放路", "站前路", 0.0, "低洼路段", "低", 24),
    ("丰收路群英路口", "丰收路", "群英路", 0.0, "低洼路段", "低", 22),
    ("迎宾路民主路口", "迎宾路", "民主路", 0.0, "低洼路段", "中", 30),
    ("龙源路下穿通道", "龙源路", None, 0.55, "下穿通道(下立交)", "高", 55),
)


def waterlogging_sites() -> tuple[np.ndarray, np.ndarray]:
    roads = build_roads()
    idx = {r.name: i for i, r in enumerate(roads)}
    cross = {(c.name_a, c.name_b): (c.pos_a_m, c.pos_b_m) for c in intersections(roads)}
    road, pos = [], []
    for _, name, other, frac, *_ in WATERLOGGING:
        i = idx[name]
        if other is not None:
            p = cross.get((name, other), (None, None))[0]
            p = cross[(other, name)][1] if p is None else p
        else:
            p = frac * roads[i].length_m
        road.append(i)
        pos.append(p)
    return np.array(road), np.array(pos, dtype=float)


def waterlogging(rng: np.random.Generator, as_of: dt.datetime) -> dict[str, np.ndarray]:
    n = len(WATERLOGGING)
    rows = list(zip(*WATERLOGGING, strict=True))
    site_type = np.array(rows[4], dtype=object)
    hist = np.array(rows[6], dtype=float)
    underpass = np.isin(site_type, ["下穿通道(下立交)", "下凹桥", "铁路涵洞"])
    causes = [["地势低洼", "管网能力不足"] if u else ["地势低洼", "雨水口堵塞"] for u in underpass.tolist()]
    return {
        "name": np.array(rows[0], dtype=object),
        "status": np.full(n, "正常", dtype=object),
        "point_code": np.array([f"JSD-{k + 1:02d}" for k in range(n)], dtype=object),
        "site_type": site_type,
        "risk_level": np.array(rows[5], dtype=object),
        "hist_max_depth_cm": hist.astype(object),
        "hist_max_duration_min": np.round(hist * rng.uniform(2.0, 4.0, n)).astype(object),
        "hist_max_area_m2": np.round(rng.uniform(300, 3000, n), -1).astype(object),
        "cause": np.array(causes + [None], dtype=object)[:-1],
        "gauge_type": np.where(underpass, "雷达水位计", "电子水尺").astype(object),
        "device_id": np.array([f"SW-JZ-{k + 1:03d}" for k in range(n)], dtype=object),
        "warn_depth_cm": np.full(n, 15, dtype=object),
        "close_depth_cm": np.where(underpass, 27, 25).astype(object),
        "last_depth_cm": np.full(n, 0.0, dtype=object),
        "last_seen_at": np.full(n, as_of, dtype=object),
        "has_led_sign": underpass.astype(object),
        "has_barrier": underpass.astype(object),
        "has_broadcast": underpass.astype(object),
        "pump_station": np.where(underpass, np.char.add(np.array(rows[0], dtype=str), "排涝泵站"), None).astype(object),
        "emergency_plan": np.where(underpass, "移动泵车值守、超过封闭水深即封闭交通并通知交警",
                                   "汛期专人值守、疏通雨水口、必要时移动泵车抽排").astype(object),
        "responsible_unit": np.full(n, "焦作市城市管理局排水管理处", dtype=object),
        "on_duty_phone": np.array(office_phones(rng, n), dtype=object),
        "rectify_status": np.array(["未整治", "整治中", "已整治"], dtype=object)[rng.choice(3, n, p=[0.4, 0.4, 0.2])],
        "dept_name": np.full(n, CITY_BUREAU, dtype=object),
        "owner_name": np.full(n, CITY_BUREAU, dtype=object),
        "maintainer_name": np.full(n, "焦作市城市管理局排水管理处", dtype=object),
        "data_source": np.full(n, "调绘", dtype=object),
    }


# ---- road segments (路长制) ----------------------------------------------------------------

PATROL_RULE = {"市级路长": "每月", "区级路长": "每半月", "街道级路长": "每周", "社区级路长": "每日"}


def segment_chiefs(rng: np.random.Generator, district_names: dict[str, str], seg_admin: list[str | None],
                   seg_street: list[tuple[str | None, str | None]], seg_community: list[str | None]) -> list[list[dict]]:
    """路长 by level for each segment: one 市级 per 市管 road, one 区级 per road and district,
    one 街道级 per street, one 社区级 per community."""
    segs = build_segments()
    people: dict[tuple, dict] = {}

    def person(key: tuple, level: str, title: str, phone_kind: str) -> dict:
        if key not in people:
            name = person_names(rng, 1)[0]
            phone = (office_phones if phone_kind == "office" else mobile_phones)(rng, 1)[0]
            people[key] = {"level": level, "name": name, "title": title, "phone": phone}
        return people[key]

    city_titles = ("焦作市副市长", "焦作市人大常委会副主任", "焦作市政协副主席")
    out = []
    for k, s in enumerate(segs):
        chiefs = []
        if s.road.grade in ("主干路", "次干路"):
            t = city_titles[int(s.road.code[-3:]) % len(city_titles)]
            chiefs.append(person(("市", s.road.code), "市级", t, "office"))
        admin = seg_admin[k]
        if admin:
            chiefs.append(person(("区", s.road.code, admin), "区级", f"{district_names[admin]}副区长", "office"))
        street_code, street_name = seg_street[k]
        if street_code:
            chiefs.append(person(("街", street_code), "街道级", f"{street_name}办事处主任", "mobile"))
        if seg_community[k]:
            chiefs.append(person(("社", seg_community[k]), "社区级", f"{seg_community[k]}党支部书记", "mobile"))
        out.append([dict(c) for c in chiefs])
    return out
