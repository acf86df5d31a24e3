"""GDAL's own OGC API - Features client against a real uvicorn server."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time

import httpx
import pyogrio
import pytest

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(shutil.which("ogrinfo") is None, reason="gdal-bin (ogrinfo/ogr2ogr) not installed")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(settings, store, manholes, tmp_path):
    """uvicorn in a subprocess on the test database (written by the fixtures above)."""
    port = _free_port()
    env = {**os.environ, "GEOAPI_DATABASE_URL": settings.resolved_database_url, "GEOAPI_DATA_DIR": str(tmp_path),
           "GEOAPI_MAX_LIMIT": "10000"}
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "geoapi.api.app:create_app", "--factory",
                             "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            raise RuntimeError(f"server did not start: {proc.stdout.read1().decode(errors='replace')}")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_ogrinfo_lists_the_collections(server):
    out = subprocess.run(["ogrinfo", "-ro", "-q", f"OAPIF:{server}/"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "manholes" in out.stdout and "toilets" in out.stdout


def test_ogr2ogr_pages_through_a_whole_layer(server, tmp_path, manholes):
    dst = tmp_path / "manholes.geojson"
    out = subprocess.run(["ogr2ogr", "-f", "GeoJSON", str(dst), f"OAPIF:{server}/", "manholes",
                          "-oo", "PAGE_SIZE=70"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert pyogrio.read_info(dst)["features"] == len(manholes)
    written = json.loads(dst.read_text(encoding="utf-8"))["features"]
    assert {f["properties"]["cover_no"] for f in written} == {p["cover_no"] for p, _ in manholes}


def test_ogrinfo_counts_with_an_attribute_filter(server, manholes):
    out = subprocess.run(["ogrinfo", "-ro", "-so", f"OAPIF:{server}/", "manholes", "-where", "status = '破损'"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    want = sum(1 for p, _ in manholes if p["status"] == "破损")
    assert f"Feature Count: {want}" in out.stdout

