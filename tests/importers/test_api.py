"""POST /imports and friends over real HTTP (TestClient) on SpatiaLite and PostGIS."""

from __future__ import annotations

import csv
import io
import time
import zipfile
from pathlib import Path

import pytest
import shapely
from fastapi.testclient import TestClient

from geoapi.api.app import create_app
from geoapi.storage import FeatureQuery

from .conftest import TO_4547, lonlat_points, projected, write_shapefile

USES = ["雨水", "污水", "给水"]


def delivery_zip(tmp_path: Path, n: int = 3, *, prj: bool = True, uses: list[str] | None = None,
                 name: str = "井盖普查") -> Path:
    """A GBK shapefile without .cpg, zipped the way survey companies deliver it."""
    uses = uses or [USES[i % 3] for i in range(n)]
    shp = write_shapefile(tmp_path / name / f"{name}.shp", shapely.points(projected(lonlat_points(n), TO_4547)),
                          {"JCJBH": [f"JZ-{i:03d}" for i in range(n)], "YT": uses, "JGCZ": ["球墨铸铁"] * n,
                           "测量员": ["李四"] * n}, encoding="GBK", cpg=False, prj=prj)
    out = tmp_path / f"{name}.zip"
    with zipfile.ZipFile(out, "w") as z:
        for part in shp.parent.iterdir():
            z.write(part, part.name)
    return out


def upload(client: TestClient, headers: dict, path: Path, **fields: str):
    with open(path, "rb") as f:
        return client.post("/imports", headers=headers, files={"file": (path.name, f, "application/zip")},
                           data={"layer": "manholes", **fields})


def wait_for(client: TestClient, batch_id: str, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(f"/imports/{batch_id}").json()
        if body["state"] not in ("queued", "running"):
            return body
        time.sleep(0.05)
    raise AssertionError(f"import {batch_id} still {body['state']} after {timeout}s")


def test_upload_runs_in_the_background_and_keeps_unmapped_columns(client, keys, store, tmp_path):
    r = upload(client, keys["editor"], delivery_zip(tmp_path, 3))
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["state"] in ("queued", "running", "done") and body["links"][0]["href"].endswith(body["id"])
    done = wait_for(client, body["id"])
    assert done["state"] == "done" and done["percent"] == 100.0
    assert done["report"]["imported"] == 3 and done["report"]["unmapped_columns"] == ["测量员"]
    assert done["file_name"] == "井盖普查.zip" and len(done["file_sha256"]) == 64
    assert done["actor"].startswith("test-editor") and done["options"]["mode"] == "append"
    feats = sorted(store.query("manholes", FeatureQuery()).features, key=lambda f: f.props["cover_no"])
    assert [f.props["well_use"] for f in feats] == USES
    assert feats[0].props["cover_material"] == "球墨铸铁"
    assert feats[0].meta["extra"] == {"测量员": "李四"} and feats[0].meta["batch_id"] == body["id"]
    assert [b["id"] for b in client.get("/imports").json()["imports"]] == [body["id"]]


def test_uploads_are_removed_after_the_import(client, keys, tmp_path, settings):
    done = wait_for(client, upload(client, keys["editor"], delivery_zip(tmp_path)).json()["id"])
    assert done["state"] == "done"
    assert not any(p.is_file() for p in (settings.data_dir / "uploads").rglob("*"))


def test_dry_run_writes_nothing(client, keys, store, tmp_path):
    r = upload(client, keys["editor"], delivery_zip(tmp_path, 4), dry_run="true")
    done = wait_for(client, r.json()["id"])
    assert done["state"] == "dry_run" and done["report"]["rows_read"] == 4
    assert store.count("manholes") == 0


def test_refused_delivery_fails_with_the_reason(client, keys, store, tmp_path):
    done = wait_for(client, upload(client, keys["editor"], delivery_zip(tmp_path, prj=False)).json()["id"])
    assert done["state"] == "failed"
    assert done["report"]["code"] == "import_refused" and "no coordinate system" in done["report"]["message"]
    assert store.count("manholes") == 0


def test_rejected_rows_download_as_csv_with_bom(client, keys, tmp_path):
    z = delivery_zip(tmp_path, 3, uses=["雨水", "下水道", "污水"])
    done = wait_for(client, upload(client, keys["editor"], z, on_error="skip").json()["id"])
    assert done["state"] == "done" and done["report"]["imported"] == 2
    r = client.get(f"/imports/{done['id']}/report.csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert rows[1][:2] == ["2", ""] and "下水道" in rows[1][2]


def test_upload_needs_the_editor_role(client, keys, tmp_path):
    z = delivery_zip(tmp_path)
    assert upload(client, {}, z).status_code == 401
    assert upload(client, keys["viewer"], z).status_code == 403


@pytest.mark.parametrize(("fields", "status", "says"), [
    ({"layer": "nope"}, 404, "unknown layer"),
    ({"mode": "merge"}, 400, "mode must be one of"),
    ({"on_error": "ignore"}, 400, "on_error must be one of"),
    ({"dry_run": "perhaps"}, 400, "dry_run"),
    ({"mapping": "{not json"}, 400, "mapping is not valid JSON"),
    ({"mapping": '{"JCJBH": "no_such_field"}'}, 400, "no_such_field"),
    ({"crs": "EPSG:999999"}, 422, "coordinate system"),
    ({"transform": "+towgs84=1,2"}, 422, "7 comma-separated"),
])
def test_bad_options_are_refused_before_anything_runs(client, keys, tmp_path, fields, status, says):
    r = upload(client, keys["editor"], delivery_zip(tmp_path), **fields)
    assert r.status_code == status, r.text
    assert says in r.json()["detail"]
    assert client.get("/imports").json()["imports"] == []


def test_missing_file_part_is_a_400(client, keys):
    r = client.post("/imports", headers=keys["editor"], data={"layer": "manholes"}, files={"x": ("a", b"1")})
    assert r.status_code == 400 and "file" in r.json()["detail"]


def test_zip_with_parent_paths_is_refused(client, keys, tmp_path):
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as z:
        z.writestr("../evil.shp", b"x")
    r = upload(client, keys["editor"], evil)
    assert r.status_code == 400 and r.json()["code"] == "unsafe_archive"
    assert not (tmp_path / "evil.shp").exists()


def test_upload_over_the_size_limit_is_413(settings, store, keys, tmp_path):
    small = settings.model_copy(update={"upload_max_bytes": 2000})
    with TestClient(create_app(small, store)) as c:
        r = upload(c, keys["editor"], delivery_zip(tmp_path, 40))
        assert r.status_code == 413 and "GEOAPI_UPLOAD_MAX_BYTES" in r.json()["detail"]
        assert c.get("/imports").json()["imports"] == []
    assert not any(p.is_file() for p in (settings.data_dir / "uploads").rglob("*"))


def test_unknown_batch_is_404(client, keys):
    assert client.get("/imports/imp-nope").status_code == 404
    assert client.post("/imports/imp-nope/rollback", headers=keys["editor"]).status_code == 404


def test_rollback_over_http(client, keys, store, tmp_path):
    batch_id = wait_for(client, upload(client, keys["editor"], delivery_zip(tmp_path)).json()["id"])["id"]
    assert client.post(f"/imports/{batch_id}/rollback", headers=keys["viewer"]).status_code == 403
    r = client.post(f"/imports/{batch_id}/rollback", headers=keys["editor"])
    assert r.status_code == 200 and r.json()["deleted"] == 3
    assert store.count("manholes") == 0
    assert client.get(f"/imports/{batch_id}").json()["state"] == "rolled_back"
    again = client.post(f"/imports/{batch_id}/rollback", headers=keys["editor"])
    assert again.status_code == 409 and "already rolled back" in again.json()["detail"]
