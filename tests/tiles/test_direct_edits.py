"""PostGIS: edits made outside geoapi (psql, QGIS) reach the tile cache through NOTIFY."""

from __future__ import annotations

import time

import pytest

from geoapi.storage.tilesql import install_change_triggers
from tests.tiles.conftest import ids_in, tile_at

OLD = (113.2400, 35.2100)
NEW = (113.2600, 35.2300)


def tile_url(lon: float, lat: float, z: int = 16) -> str:
    t = tile_at(lon, lat, z)
    return f"/tiles/manholes/{t.z}/{t.x}/{t.y}.mvt"


def wait_for(check, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.postgis
def test_direct_sql_update_purges_old_and_new_tiles(backend, store, seeded, client):
    if backend != "postgis":
        pytest.skip("triggers are PostGIS only")
    with store.engine.begin() as conn:
        install_change_triggers(conn, store)
    fid = seeded["manholes"][0]
    old, new = tile_url(*OLD), tile_url(*NEW)
    assert fid in ids_in(client.get(old).content, "manholes")
    assert fid not in ids_in(client.get(new).content, "manholes")
    assert client.get(old).headers["x-tile-cache"] == "hit"
    start = client.get("/tiles/changes").json()["seq"]
    with store.engine.begin() as conn:
        conn.exec_driver_sql(f"UPDATE manholes SET geom = ST_SetSRID(ST_MakePoint({NEW[0]}, {NEW[1]}), 4490) "
                             f"WHERE id = {fid}")
    assert wait_for(lambda: client.get(f"/tiles/changes?since={start}").json()["changes"])
    assert fid not in ids_in(client.get(old).content, "manholes")
    assert fid in ids_in(client.get(new).content, "manholes")


@pytest.mark.postgis
def test_writes_marked_as_the_stores_own_do_not_notify(backend, store, seeded, client):
    if backend != "postgis":
        pytest.skip("triggers are PostGIS only")
    with store.engine.begin() as conn:
        install_change_triggers(conn, store)
    start = client.get("/tiles/changes").json()["seq"]
    with store.engine.begin() as conn:
        conn.exec_driver_sql("SET LOCAL geoapi.origin = 'store'")
        conn.exec_driver_sql("UPDATE manholes SET status = '占用'")
    with store.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE pipes SET status = '废弃'")  # a marker that does notify
    assert wait_for(lambda: client.get(f"/tiles/changes?since={start}").json()["changes"])
    time.sleep(0.2)
    layers = {c["layer"] for c in client.get(f"/tiles/changes?since={start}").json()["changes"]}
    assert layers == {"pipes"}
