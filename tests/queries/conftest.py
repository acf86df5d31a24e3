"""Small random data sets around 焦作 for the query tests, written through the Store."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from shapely.geometry import LineString, MultiLineString, Point, box, shape

import geoapi

CENTRE = (113.24, 35.22)
STATUSES = ["完好", "破损", "丢失", "占用"]
USES = ["雨水", "污水", "给水", "电力"]
DISTRICTS_FILE = Path(geoapi.__file__).parent / "demo" / "data" / "jiaozuo_districts.geojson"


def random_points(rng: np.random.Generator, n: int, spread: float = 0.05) -> np.ndarray:
    return np.column_stack([CENTRE[0] + rng.uniform(-spread, spread, n), CENTRE[1] + rng.uniform(-spread, spread, n)])


@pytest.fixture
def manholes(store) -> list[tuple[dict, Point]]:
    """300 covers scattered over ~9 × 11 km of the city centre."""
    rng = np.random.default_rng(7)
    rows = []
    for i, (x, y) in enumerate(random_points(rng, 300)):
        props = {"well_use": USES[i % 4], "status": STATUSES[(i // 4) % 4], "is_smart": bool(i % 3 == 0),
                 "cover_no": f"JG{i:04d}"}
        rows.append((props, Point(float(x), float(y))))
    store.bulk_write("manholes", rows, actor="test")
    return rows


@pytest.fixture
def districts(store) -> list[dict]:
    """The ten real county-level districts of 焦作 (committed demo data)."""
    doc = json.loads(DISTRICTS_FILE.read_text(encoding="utf-8"))
    rows = [({k: v for k, v in f["properties"].items()}, shape(f["geometry"])) for f in doc["features"]]
    store.bulk_write("districts", rows, actor="test")
    return doc["features"]


@pytest.fixture
def road_segments(store) -> list[tuple[dict, MultiLineString]]:
    rows = [
        ({"segment_code": "JFL-01", "road_name": "解放路", "frontage_m": 30.0},
         MultiLineString([[(113.20, 35.22), (113.22, 35.22), (113.24, 35.225)]])),
        ({"segment_code": "RMR-01", "road_name": "人民路", "frontage_m": 20.0},
         MultiLineString([[(113.25, 35.20), (113.25, 35.24)]])),
    ]
    store.bulk_write("road_segments", rows, actor="test")
    return rows


def unit_square(cx: float, cy: float, half: float):
    return box(cx - half, cy - half, cx + half, cy + half)


__all__ = ["CENTRE", "LineString", "random_points", "unit_square"]
