"""Small, deterministic test data for the web-map tests: real 焦作 districts, a few unit grids
and road segments around 解放区, manholes, smart covers and toilets. Written through
``Store.bulk_write`` like an import would be."""

from __future__ import annotations

import json
import random
from pathlib import Path

from shapely.geometry import LineString, MultiLineString, MultiPolygon, Point, box, shape

from geoapi.storage import Store

DISTRICTS_FILE = Path(__file__).resolve().parents[2] / "geoapi" / "demo" / "data" / "jiaozuo_districts.geojson"
CENTER = (113.2420, 35.2160)  # 解放区, the city centre
ACTOR = "webmap-test"
MANHOLES = 160
STATUSES = ["完好"] * 6 + ["破损", "丢失", "占用"]
USES = ["雨水", "污水", "给水", "电力", "通信", "燃气"]


def _districts() -> list[tuple[dict, MultiPolygon]]:
    doc = json.loads(DISTRICTS_FILE.read_text(encoding="utf-8"))
    out = []
    for f in doc["features"]:
        geom = shape(f["geometry"])
        if geom.geom_type == "Polygon":
            geom = MultiPolygon([geom])
        out.append((dict(f["properties"]), geom))
    return out


def _grids() -> list[tuple[dict, MultiPolygon]]:
    x0, y0 = CENTER[0] - 0.006, CENTER[1] - 0.004
    out = []
    for i in range(3):
        for j in range(2):
            cell = box(x0 + i * 0.004, y0 + j * 0.004, x0 + (i + 1) * 0.004, y0 + (j + 1) * 0.004)
            out.append(({"grid_code": f"410802001001{(j * 3 + i + 1):03d}", "name": f"测试网格{j * 3 + i + 1}",
                         "grid_leader": "王伟", "phone": "13800000000"}, MultiPolygon([cell])))
    return out


def _segments() -> list[tuple[dict, MultiLineString]]:
    x, y = CENTER
    chiefs = [[{"level": "一级路长", "name": "李强", "title": "区城管局局长", "phone": "13900000001"},
               {"level": "二级路长", "name": "张敏", "title": "街道办主任", "phone": "13900000002"}],
              [{"level": "一级路长", "name": "赵磊", "title": "区住建局局长", "phone": "13900000003"}]]
    rows = [
        ({"segment_code": "R001-01", "road_name": "解放中路", "road_grade": "主干路", "start_desc": "人民路口",
          "end_desc": "建设路口", "chiefs": chiefs[0], "length_m": 900.0},
         LineString([(x - 0.008, y), (x + 0.002, y)])),
        ({"segment_code": "R002-01", "road_name": "民主路", "road_grade": "次干路", "start_desc": "塔南路口",
          "end_desc": "解放路口", "chiefs": chiefs[1], "length_m": 700.0},
         LineString([(x, y - 0.006), (x, y + 0.002)])),
    ]
    return [(p, MultiLineString([g])) for p, g in rows]


def _points(n: int, spread: float, seed: int) -> list[Point]:
    rnd = random.Random(seed)
    return [Point(CENTER[0] + rnd.uniform(-spread, spread), CENTER[1] + rnd.uniform(-spread * 0.8, spread * 0.8))
            for _ in range(n)]


def seed(store: Store) -> dict[str, int]:
    """Write the test data; returns rows per layer."""
    rnd = random.Random(8)
    manholes = []
    for i, pt in enumerate(_points(MANHOLES, 0.01, 1)):
        status = rnd.choice(STATUSES)
        props = {"cover_no": f"JG{i + 1:05d}", "well_use": rnd.choice(USES), "status": status,
                 "cover_material": "球墨铸铁", "load_class": "D400", "road_name": "解放中路",
                 "rectify_status": "待整治" if status != "完好" else "正常"}
        if status == "破损":
            props["defects"] = ["破损", "下沉"]
        manholes.append((props, pt))
    covers = [({"device_sn": f"SC{i + 1:04d}", "platform": "CTWing",
                "status": "报警" if i % 7 == 0 else ("离线" if i % 5 == 0 else "正常")}, pt)
              for i, pt in enumerate(_points(20, 0.008, 2))]
    toilets = [({"name": f"测试公厕{i + 1}"}, pt) for i, pt in enumerate(_points(12, 0.03, 3))]
    data = {"districts": _districts(), "unit_grids": _grids(), "road_segments": _segments(),
            "manholes": manholes, "smart_covers": covers, "toilets": toilets}
    counts = {}
    for layer, rows in data.items():
        store.bulk_write(layer, rows, actor=ACTOR)
        counts[layer] = len(rows)
    return counts
