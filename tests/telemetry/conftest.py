"""Telemetry fixtures: a few smart covers and a 积水点 gauge, an app whose telemetry clock ticks
fast, thresholds that make "offline" happen within seconds, and the simulated fleet."""

from __future__ import annotations

import importlib.util
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from shapely.geometry import Point

from geoapi.api.app import create_app

ROOT = Path(__file__).resolve().parents[2]
IMEIS = ("861234500000001", "861234500000002", "861234500000003")
GAUGE = "WL-GAUGE-01"


def _load_fleet():
    spec = importlib.util.spec_from_file_location("bench_fleet", ROOT / "bench" / "fleet.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["bench_fleet"] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


fleet_module = _load_fleet()


def wait_for(check: Callable[[], object], timeout: float = 8.0, every: float = 0.1):
    """Poll until ``check()`` is truthy; return its value or fail with the last one."""
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"condition not met within {timeout}s (last value {value!r})")


@pytest.fixture
def devices(store) -> dict[str, int]:
    """Three smart covers (heartbeat 60 s) and one waterlogging point with a gauge."""
    rows = [({"device_sn": f"SC-{i}", "imei": imei, "platform_device_id": f"ctw-{i}", "heartbeat_s": 60,
              "fortify_state": "设防"}, Point(113.24 + i * 0.001, 35.21)) for i, imei in enumerate(IMEIS)]
    store.bulk_write("smart_covers", rows, actor="test")
    store.bulk_write("waterlogging_points", [({"name": "塔南路下穿", "device_id": GAUGE, "warn_depth_cm": 15,
                                               "close_depth_cm": 25}, Point(113.25, 35.22))], actor="test")
    t = store.table("smart_covers")
    with store.read() as conn:
        ids = {r.imei: r.id for r in conn.execute(t.select().with_only_columns(t.c.id, t.c.imei))}
    return ids


@pytest.fixture
def thresholds_file(tmp_path) -> Path:
    # 0.05 × 60 s heartbeat = 3 s of silence means offline; everything else keeps its default.
    p = tmp_path / "thresholds.toml"
    p.write_text("[smart_covers]\noffline_factor = 0.05\n", encoding="utf-8")
    return p


@pytest.fixture
def tel_settings(settings, thresholds_file):
    return settings.model_copy(update={"telemetry_tick_s": 0.2, "telemetry_thresholds": thresholds_file,
                                       "telemetry_push_token": "push-secret", "ctwing_push_token": "ctw-secret",
                                       "onenet_token": "onenet-secret"})


@pytest.fixture
def tel_client(tel_settings, store, devices) -> Iterator[TestClient]:
    with TestClient(create_app(tel_settings, store)) as c:
        yield c


@pytest.fixture
def push() -> dict[str, str]:
    return {"X-Push-Token": "push-secret"}
