"""The geoapi command, run as a user runs it (a subprocess), on a SpatiaLite file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

GEOAPI = [sys.executable, "-m", "geoapi"]


def run(args, tmp_path: Path, env=None, timeout=300):
    e = {**os.environ, "GEOAPI_DATA_DIR": str(tmp_path / "data"), **(env or {})}
    e.pop("GEOAPI_DATABASE_URL", None)
    return subprocess.run([*GEOAPI, *args], capture_output=True, text=True, timeout=timeout, env=e)


def test_db_upgrade_then_up_to_date(tmp_path):
    first = run(["db", "upgrade"], tmp_path)
    assert first.returncode == 0 and "created table manholes" in first.stdout
    second = run(["db", "upgrade"], tmp_path)
    assert second.returncode == 0 and "up to date" in second.stdout


def test_db_optimize_reports_each_layer_and_refuses_an_unknown_one(tmp_path):
    out = run(["db", "optimize", "--layer", "manholes", "--layer", "toilets"], tmp_path)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert [line.split()[0] for line in lines[-2:]] == ["manholes", "toilets"] and "statistics" in lines[-1]
    bad = run(["db", "optimize", "--layer", "nope"], tmp_path)
    assert bad.returncode == 2 and "nope" in bad.stderr


def test_keys_create_prints_key_once_and_lists_it(tmp_path):
    out = run(["keys", "create", "--role", "editor", "--name", "张三"], tmp_path)
    assert out.returncode == 0
    key = out.stdout.strip().splitlines()[-1]
    assert key.startswith("gk_") and len(key) > 40
    listing = run(["keys", "list"], tmp_path).stdout
    assert key.split("_")[1] in listing and "editor" in listing and key not in listing
    bad = run(["keys", "create", "--role", "boss"], tmp_path)
    assert bad.returncode == 2 and "role must be one of" in bad.stderr


def test_bad_layer_file_stops_startup_naming_file_and_field(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "bins.toml").write_text('id = "bins"\ntitle = "果皮箱"\ntitle_en = "Bins"\ngeometry = "Point"\n'
                                    '[[fields]]\nname = "size"\nlabel = "尺寸"\ntype = "colour"\n')
    out = run(["serve", "--port", "1"], tmp_path, env={"GEOAPI_LAYERS_DIR": str(site)})
    assert out.returncode == 2
    assert "bins.toml" in out.stderr and "fields[0] (size).type" in out.stderr


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["spatialite", pytest.param("postgis", marks=pytest.mark.postgis)])
def test_demo_loads_idempotently(tmp_path, backend, db_factories):
    if backend not in db_factories:
        pytest.skip("PostgreSQL with PostGIS is not reachable")
    db = [] if backend == "spatialite" else ["--db", db_factories["postgis"].new_url()]
    first = run(["demo", "--scale", "500", "--no-serve", *db], tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "公厕" in first.stdout and "demo editor key" in first.stdout
    second = run(["demo", "--scale", "500", "--no-serve", *db], tmp_path)
    assert second.returncode == 0 and "already loaded" in second.stdout
    key_line = next(line for line in second.stdout.splitlines() if "demo editor key" in line)
    assert key_line.split()[-1] in first.stdout  # the same key is reused


def test_export_tiles_for_a_district(tmp_path):
    from pmtiles.reader import MmapSource, Reader

    env = {"GEOAPI_DATABASE_URL": f"sqlite:///{tmp_path / 'data' / 'geoapi.sqlite'}"}
    (tmp_path / "data").mkdir()
    from shapely.geometry import Point, box

    from geoapi.settings import Settings
    from geoapi.storage import Store

    store = Store.open(Settings(database_url=env["GEOAPI_DATABASE_URL"], data_dir=tmp_path / "data"))
    store.upgrade()
    store.bulk_write("districts", [({"admin_code": "410802", "name": "解放区"}, box(113.2, 35.2, 113.26, 35.24))], actor="t")
    store.bulk_write("manholes", [({"well_use": "雨水"}, Point(113.2405, 35.2151))], actor="t")
    store.close()
    out = tmp_path / "jf.pmtiles"
    r = subprocess.run([*GEOAPI, "export-tiles", str(out), "--district", "410802", "--layers", "manholes",
                        "--minzoom", "14", "--maxzoom", "15"], capture_output=True, text=True, env={**os.environ, **env})
    assert r.returncode == 0, r.stderr
    with out.open("rb") as f:
        reader = Reader(MmapSource(f))
        assert reader.header()["min_zoom"] == 14 and reader.header()["max_zoom"] == 15
        assert reader.get(14, 13345, 6477) and reader.get(15, 26691, 12955)  # the tiles holding the manhole
        assert reader.get(15, 26692, 12955) is None
    missing = subprocess.run([*GEOAPI, "export-tiles", str(out), "--district", "999999"], capture_output=True,
                             text=True, env={**os.environ, **env})
    assert missing.returncode == 2 and "999999" in missing.stderr
