"""Manhole covers (窨井/井盖) and the smart-cover devices on some of them, column by column.

Every attribute is drawn for all rows at once with numpy, so 1,000,000 covers take seconds.
部件标识码 are formed here (admin 6 + 小类 4 from the layer's subclass_map + serial 6 per
prefix) so smart covers can point at their cover by ``manhole_code``.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

from geoapi.demo.networks import NetPoints
from geoapi.demo.people import MANHOLE_UNITS, TELECOM_OWNERS
from geoapi.demo.placement import road_frame
from geoapi.demo.streets import build_roads

# well_use of the covers that are not on a drainage or heating network, with their share,
# their survey-point prefix and how far from the centreline they sit (fraction of half width).
OTHER_USES: tuple[tuple[str, float, str, float], ...] = (
    ("雨水箅子", 0.22, "YB", 0.80), ("给水", 0.15, "JS", 0.55), ("电力", 0.15, "DL", 1.10),
    ("通信", 0.14, "TX", 1.15), ("燃气", 0.08, "RQ", 0.45), ("路灯", 0.06, "LD", 1.05),
    ("有线电视", 0.04, "DS", 1.20), ("网络", 0.04, "WL", 1.20), ("交通信号", 0.03, "XH", 0.95),
    ("消防", 0.03, "XF", 0.60), ("中水", 0.02, "ZS", 0.35), ("公安", 0.02, "GA", 1.25),
    ("无主", 0.02, "QT", 0.70),
)
COVER_NAMES = {"给水": "上水井盖", "雨水箅子": "雨水箅子"}
STATUS_P = (("完好", 0.925), ("破损", 0.045), ("丢失", 0.01), ("占用", 0.02))
DAMAGE_DEFECTS = ("破损", "破裂", "松动", "下沉", "凸起", "错台", "异响", "井框破损", "锁具缺损")
SMART_COUNT = 859


def _dates(rng: np.random.Generator, n: int, start: str, end: str) -> np.ndarray:
    lo, hi = np.datetime64(start), np.datetime64(end)
    days = rng.integers(0, int((hi - lo).astype(int)) + 1, n)
    return (lo + days.astype("timedelta64[D]")).astype(object)  # datetime.date objects


def filler(n: int, rng: np.random.Generator) -> NetPoints:
    """Covers of the other utilities, spread along every street at their usual distance out."""
    roads = build_roads()
    frame = road_frame()
    if n <= 0:
        e = np.array([])
        return NetPoints(e, e, e.astype(int), e, e, e.astype(object), e.astype(object), e)
    share = np.array([u[1] for u in OTHER_USES])
    kind = rng.choice(len(OTHER_USES), size=n, p=share / share.sum())
    road, pos = frame.sample(rng, n)
    half = np.array([r.width_m / 2 for r in roads])[road]
    frac = np.array([u[3] for u in OTHER_USES])[kind] + rng.normal(0, 0.04, n)
    left = np.where(rng.random(n) < 0.5, -1.0, 1.0) * half * frac
    x, y, _, _ = frame.place(road, pos, left)
    uses = np.array([u[0] for u in OTHER_USES], dtype=object)[kind]
    prefixes = np.array([u[2] for u in OTHER_USES], dtype=object)[kind]
    # survey numbers run per prefix in generation order
    serial = np.empty(n, dtype=np.int64)
    for k in range(len(OTHER_USES)):
        sel = kind == k
        serial[sel] = np.arange(1, sel.sum() + 1)
    nums = np.array([f"{p}{s:07d}" for p, s in zip(prefixes.tolist(), serial.tolist(), strict=True)], dtype=object)
    depth = np.round(np.where(uses == "雨水箅子", rng.uniform(0.6, 1.2, n), rng.uniform(1.0, 2.8, n)), 2)
    return NetPoints(x, y, road, pos, left, uses, nums, depth)


def obj_codes(admin: np.ndarray, subclass: np.ndarray) -> np.ndarray:
    """16-digit 部件标识码: serials count up per admin+小类 prefix in row order."""
    prefix = np.char.add(admin.astype(str), subclass.astype(str))
    _, inv = np.unique(prefix, return_inverse=True)
    order = np.argsort(inv, kind="stable")
    sorted_inv = inv[order]
    starts = np.flatnonzero(np.r_[True, sorted_inv[1:] != sorted_inv[:-1]])
    counts = np.diff(np.r_[starts, len(order)])
    rank = np.arange(len(order)) - np.repeat(starts, counts)
    serial = np.empty(len(order), dtype=np.int64)
    serial[order] = rank + 1
    if len(serial) and serial.max() > 999_999:
        raise ValueError("more than 999,999 covers share one 部件标识码 prefix")
    return np.char.add(prefix, np.char.zfill(serial.astype(str), 6)).astype(object)


def manhole_columns(p: NetPoints, admin: np.ndarray, subclass_map: dict[str, str],
                    rng: np.random.Generator) -> dict[str, np.ndarray]:
    """All layer fields of the covers except the location columns (assets.py adds those)."""
    n = len(p.x)
    roads = build_roads()
    grade = np.array([r.grade for r in roads], dtype=object)[p.road] if n else np.array([], dtype=object)
    half = np.array([r.width_m / 2 for r in roads])[p.road] if n else np.array([])
    out_frac = np.abs(p.left) / np.maximum(half, 1)
    use = p.use
    subclass = np.array([subclass_map[u] for u in use.tolist()], dtype=object) if n else use
    codes = obj_codes(admin, subclass)

    status_names = np.array([s for s, _ in STATUS_P], dtype=object)
    status = status_names[rng.choice(len(STATUS_P), size=n, p=[q for _, q in STATUS_P])]
    defects = np.full(n, None, dtype=object)
    dmg = np.flatnonzero(status == "破损")
    picks = rng.integers(0, len(DAMAGE_DEFECTS), (len(dmg), 2))
    defects[dmg] = [sorted({DAMAGE_DEFECTS[a], DAMAGE_DEFECTS[b]}) for a, b in picks.tolist()]
    lost = np.flatnonzero(status == "丢失")
    defects[lost] = [["缺失", "防坠网缺失"] if k else ["缺失"] for k in (rng.random(len(lost)) < 0.4).tolist()]
    faded = np.flatnonzero((status == "完好") & (rng.random(n) < 0.02))
    defects[faded] = [["标识不清"]] * len(faded)

    bad = status != "完好"
    rect_bad = np.array(["待整治", "整治中", "已整治待验收"], dtype=object)[rng.choice(3, n, p=[0.6, 0.25, 0.15])]
    rect_ok = np.array(["正常", "已验收", "已录入省系统"], dtype=object)[rng.choice(3, n, p=[0.7, 0.18, 0.12])]
    rectify = np.where(bad, rect_bad, rect_ok)
    year = np.where(rectify == "正常", None,
                    np.where(bad, 2025, rng.choice([2021, 2022, 2023], n, p=[0.4, 0.4, 0.2]))).astype(object)

    height = np.round(rng.normal(0, 4, n)).astype(int)
    sunk = np.array([d is not None and "下沉" in d for d in defects.tolist()], dtype=bool)
    raised = np.array([d is not None and "凸起" in d for d in defects.tolist()], dtype=bool)
    height = np.where(sunk, -rng.integers(20, 60, n), np.where(raised, rng.integers(20, 50, n), height))

    in_road = out_frac < 0.75
    location = np.where(in_road, "机动车道", np.where(out_frac < 0.9, "路缘石0.5m内", "人行道")).astype(object)
    location = np.where((use == "雨水箅子"), "路缘石0.5m内", location)
    load = np.where(location == "机动车道", np.where(grade == "主干路", "E600", "D400"),
                    np.where(location == "人行道", "B125", "C250")).astype(object)
    grate = use == "雨水箅子"
    square = np.isin(use, ["电力", "通信", "网络", "有线电视", "公安", "交通信号"])
    shape = np.where(grate, "矩形", np.where(square, "方形", "圆形")).astype(object)
    size = np.where(grate, "750×450", np.where(square, "800×800", "Φ700")).astype(object)
    material = np.array(["球墨铸铁", "复合材料", "钢纤维混凝土", "灰口铸铁"], dtype=object)[
        rng.choice(4, n, p=[0.72, 0.15, 0.08, 0.05])]
    net = np.array(["有", "无"], dtype=object)[rng.choice(2, n, p=[0.8, 0.2])]
    net = np.where(np.array([d is not None and "防坠网缺失" in d for d in defects.tolist()], dtype=bool), "缺失", net)
    net = np.where(grate, None, net)
    units = np.array([MANHOLE_UNITS[u] for u in use.tolist()], dtype=object).reshape(n, 3) if n else np.empty((0, 3), object)
    owner = units[:, 1].copy()
    tel = np.flatnonzero(use == "通信")
    owner[tel] = np.array(TELECOM_OWNERS, dtype=object)[rng.integers(0, 3, len(tel))]
    cover_names = np.array([COVER_NAMES.get(u, f"{u}井盖") for u in use.tolist()], dtype=object)
    return {
        "obj_code": codes,
        "name": cover_names,
        "status": status,
        "cover_no": np.char.add(np.char.add(admin.astype(str), "-"), p.point_no.astype(str)).astype(object),
        "survey_point_no": p.point_no,
        "well_no": p.point_no,
        "well_use": use,
        "cover_material": np.where(grate, "球墨铸铁", material),
        "load_class": load,
        "cover_shape": shape,
        "cover_size_mm": size,
        "set_location": location,
        "area_type": np.full(n, "公共区域", dtype=object),
        "on_blind_path": np.where(location == "人行道", rng.random(n) < 0.04, False).astype(object),
        "well_depth_m": np.round(p.depth, 2).astype(object),
        "well_material": np.array(["砖砌", "混凝土"], dtype=object)[rng.choice(2, n, p=[0.45, 0.55])],
        "anti_fall_net": net,
        "has_lock": (rng.random(n) < 0.35).astype(object),
        "install_date": _dates(rng, n, "2003-01-01", "2024-12-31"),
        "is_smart": np.full(n, False, dtype=object),
        "defects": defects,
        "height_diff_mm": height.astype(object),
        "rectify_status": rectify,
        "rectify_year": year,
        "last_inspect_date": _dates(rng, n, "2025-01-01", "2025-06-28"),
        "dept_name": units[:, 0],
        "owner_name": owner,
        "maintainer_name": units[:, 2],
        "currency": np.full(n, "在用", dtype=object),
        "data_source": np.array(["实测", "竣工图"], dtype=object)[rng.choice(2, n, p=[0.85, 0.15])],
        "or_date": _dates(rng, n, "2021-06-01", "2022-12-31"),
        "ch_date": _dates(rng, n, "2023-01-01", "2025-06-28"),
    }


# ---- smart covers -------------------------------------------------------------------------

SMART_USES = ("雨水", "污水", "燃气", "热力", "电力", "通信", "给水")
VENDORS = (("中原智联科技有限公司", "ZY-JG200"), ("太行物联网科技有限公司", "TH-SC3"),
           ("河南智盖科技有限公司", "ZG-NB10"))


def luhn_check_digit(body: np.ndarray) -> np.ndarray:
    """Luhn check digit for each row of digits (the body without its check digit)."""
    digits = body.astype(np.int64)
    from_right = np.arange(digits.shape[1])[::-1]
    doubled = np.where(from_right % 2 == 0, digits * 2, digits)  # rightmost body digit doubles
    doubled = np.where(doubled > 9, doubled - 9, doubled)
    return (10 - doubled.sum(axis=1) % 10) % 10


def imeis(rng: np.random.Generator, n: int) -> list[str]:
    """15-digit IMEIs: TAC 86xxxxxx (a Chinese reporting body), 6-digit serial, Luhn digit."""
    tac = np.array([[8, 6, 5, 3, 5, 7, 0, 4], [8, 6, 2, 1, 7, 7, 0, 5], [8, 6, 9, 9, 7, 5, 0, 3]])
    body = np.concatenate([tac[rng.integers(0, len(tac), n)], rng.integers(0, 10, (n, 6))], axis=1)
    check = luhn_check_digit(body)
    full = np.concatenate([body, check[:, None]], axis=1)
    out = ["".join(map(str, row)) for row in full.tolist()]
    if len(set(out)) != len(out):  # vanishingly rare; re-draw deterministically
        return imeis(rng, n)
    return out


def pick_smart(use: np.ndarray, grade: np.ndarray, rng: np.random.Generator, n: int = SMART_COUNT) -> np.ndarray:
    """Indices of the covers that carry a device: drainage and gas first, arterials favoured."""
    weight = np.where(np.isin(use, SMART_USES), 1.0, 0.0)
    weight *= np.where(np.isin(use, ["雨水", "污水", "燃气"]), 3.0, 1.0)
    weight *= np.where(grade == "主干路", 2.0, 1.0)
    n = min(n, int((weight > 0).sum()))
    return np.sort(rng.choice(len(use), size=n, replace=False, p=weight / weight.sum()))


def smart_columns(covers: dict[str, np.ndarray], idx: np.ndarray, rng: np.random.Generator,
                  as_of: dt.datetime) -> dict[str, np.ndarray]:
    n = len(idx)
    use = covers["well_use"][idx]
    platform = np.where(rng.random(n) < 0.7, "CTWing", "OneNET").astype(object)
    imei = np.array(imeis(rng, n), dtype=object)
    ct = platform == "CTWing"
    product = np.where(ct, "15038476", "592104").astype(object)
    onenet_ids = np.array([str(v) for v in rng.integers(1_000_000_000, 1_999_999_999, n)], dtype=object)
    device_id = np.where(ct, np.char.add(product.astype(str), imei.astype(str)).astype(object), onenet_ids)
    imsi = np.array([f"{'46011' if c else '46004'}{v:010d}" for c, v in
                     zip(ct.tolist(), rng.integers(0, 10**10, n).tolist(), strict=True)], dtype=object)
    iccid = np.array([f"{'898611' if c else '898604'}{v:014d}" for c, v in
                      zip(ct.tolist(), rng.integers(0, 10**14, n).tolist(), strict=True)], dtype=object)
    vendor_k = rng.integers(0, len(VENDORS), n)
    sensors = []
    for u, extra in zip(use.tolist(), (rng.random(n) < 0.5).tolist(), strict=True):
        s = ["倾角", "开盖(磁)"]
        if u in ("雨水", "污水"):
            s.append("水位(液位计)" if extra else "水位(浮球)")
        if u in ("燃气", "污水"):
            s.append("可燃气体")
        if u == "电力":
            s.append("温度")
        sensors.append(s)
    state = rng.choice(3, n, p=[0.93, 0.05, 0.02])  # 正常, 离线, 报警
    online = np.where(state == 1, "离线", "在线").astype(object)
    status = np.array(["正常", "离线", "报警"], dtype=object)[state]
    minutes = np.where(state == 1, rng.integers(3 * 1440, 20 * 1440, n), rng.integers(1, 1440, n))
    last_seen = np.array([as_of - dt.timedelta(minutes=int(m)) for m in minutes.tolist()], dtype=object)
    tilt = np.where(state == 2, rng.uniform(32, 85, n), rng.normal(0, 1.2, n))
    depth = covers["well_depth_m"][idx].astype(float)
    has_water = np.array(["水位(液位计)" in s or "水位(浮球)" in s for s in sensors])
    level = np.where(has_water, np.round(rng.uniform(0.05, 0.35, n) * depth, 2), None)
    has_gas = np.array(["可燃气体" in s for s in sensors])
    install = _dates(rng, n, "2022-03-01", "2024-10-31")
    return {
        "name": np.full(n, "智能井盖监测终端", dtype=object),
        "status": status,
        "manhole_code": covers["obj_code"][idx],
        "device_sn": np.array([f"JZSC{k + 1:06d}" for k in range(n)], dtype=object),
        "imei": imei, "imsi": imsi, "iccid": iccid,
        "platform": platform,
        "platform_device_id": device_id,
        "platform_product_id": product,
        "vendor": np.array([v[0] for v in VENDORS], dtype=object)[vendor_k],
        "model": np.array([v[1] for v in VENDORS], dtype=object)[vendor_k],
        "firmware": np.array(["V1.2.3", "V1.3.0", "V2.0.1"], dtype=object)[rng.integers(0, 3, n)],
        "network": np.full(n, "NB-IoT", dtype=object),
        "sensors": np.array(sensors + [None], dtype=object)[:-1],
        "install_date": install,
        "battery_type": np.full(n, "锂亚硫酰氯电池 ER34615", dtype=object),
        "battery_install_date": install,
        "heartbeat_s": np.full(n, 86400, dtype=object),
        "tilt_threshold_deg": np.full(n, 15.0, dtype=object),
        "baseline_tilt_deg": np.round(rng.normal(0, 1.0, n), 1).astype(object),
        "fortify_state": np.full(n, "设防", dtype=object),
        "online_state": online,
        "device_state": np.full(n, "正常", dtype=object),
        "last_seen_at": last_seen,
        "last_tilt_deg": np.round(tilt, 1).astype(object),
        "last_cover_state": np.where(state == 2, "打开", "正常").astype(object),
        "last_water_state": np.where(has_water, "正常", None).astype(object),
        "last_water_level_m": level.astype(object),
        "last_gas_lel_pct": np.where(has_gas, np.round(rng.uniform(0, 3, n), 1), None).astype(object),
        "last_battery_pct": np.round(rng.uniform(35, 100, n), 0).astype(object),
        "last_rsrp_dbm": np.round(rng.uniform(-118, -72, n), 0).astype(object),
        "alarm_state": np.where(state == 2, "报警", "正常").astype(object),
        "dept_name": np.full(n, "焦作市城市管理局", dtype=object),
        "owner_name": covers["owner_name"][idx],
        "maintainer_name": np.full(n, "焦作市城市管理局数字化城市管理中心", dtype=object),
        "currency": np.full(n, "在用", dtype=object),
        "data_source": np.full(n, "实测", dtype=object),
        "or_date": install,
    }
