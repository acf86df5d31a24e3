"""Health and readiness (issue 2 §8), including a database that goes away and comes back."""

from __future__ import annotations

import os

from fastapi.testclient import TestClient

from geoapi.api.app import create_app
from geoapi.settings import Settings
from geoapi.storage import Store


def test_healthz_and_readyz(client):
    assert client.get("/healthz").json()["status"] == "ok"
    assert client.get("/readyz").json()["status"] == "ready"


def test_readyz_503_when_database_unreachable_then_recovers(tmp_path):
    path = tmp_path / "sub" / "geoapi.sqlite"
    settings = Settings(database_url=f"sqlite:///{path}", data_dir=tmp_path)
    store = Store.open(settings)
    store.upgrade()
    with TestClient(create_app(settings, store)) as c:
        assert c.get("/readyz").status_code == 200
        store.engine.dispose()
        os.chmod(tmp_path / "sub", 0o000)
        os.rename(tmp_path / "sub", tmp_path / "gone")
        try:
            r = c.get("/readyz")
            assert r.status_code == 503 and r.json()["status"] == "unavailable"
            items = c.get("/collections/manholes/items")
            assert items.status_code == 503 and items.json()["code"] == "database_unavailable"
        finally:
            os.chmod(tmp_path / "gone", 0o755)
            os.rename(tmp_path / "gone", tmp_path / "sub")
        assert c.get("/readyz").status_code == 200


def test_landing_and_conformance(client):
    links = {link["rel"] for link in client.get("/").json()["links"]}
    assert {"conformance", "data", "service-desc"} <= links
    assert any("ogcapi-features-1" in c for c in client.get("/conformance").json()["conformsTo"])


def test_postgis_unreachable_is_503_not_500(tmp_path):
    settings = Settings(database_url="postgresql://postgres@127.0.0.1:1/nowhere", data_dir=tmp_path)
    store = Store.open(settings)
    c = TestClient(create_app(settings, store))
    r = c.get("/readyz")
    assert r.status_code == 503 and r.json()["database"] == "postgis"
    items = c.get("/collections/manholes/items")
    assert items.status_code == 503 and items.json()["code"] == "database_unavailable"
    # a z16 feature tile is read on the event loop (Store.read_async), a z12 one in a thread
    for z, x, y in ((16, 53349, 25900), (12, 3337, 1620)):
        tile = c.get(f"/tiles/manholes/{z}/{x}/{y}.mvt")
        assert tile.status_code == 503 and tile.json()["code"] == "database_unavailable"
    store.close()
