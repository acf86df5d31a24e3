"""SpatiaLite and the geo wheels must coexist in one process, in any import order (see
geoapi.storage.engine.preload_native_wheels). Each case runs in a fresh interpreter because the
failure is a crash, not an exception."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
from geoapi.storage.engine import make_engine
engine, _ = make_engine("sqlite:///:memory:")
with engine.connect() as conn:
    conn.exec_driver_sql("SELECT InitSpatialMetaData(0)")
    assert conn.exec_driver_sql("SELECT ST_X(Transform(MakePoint(113, 35, 4490), 3857))").scalar() > 1.2e7
from pyproj import Transformer
import shapely, pyogrio, rasterio
from rasterio.crs import CRS
assert Transformer.from_crs(4490, 3857, always_xy=True).transform(113, 35)[0] > 1.2e7
assert shapely.buffer(shapely.Point(0, 0), 1).area > 3
assert CRS.from_epsg(4547).to_epsg() == 4547
print("ok")
"""


def test_spatialite_then_wheels_does_not_crash():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "ok"
