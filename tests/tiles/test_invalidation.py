"""A write purges exactly the tiles it touches, with the cache warm, on both backends."""

from __future__ import annotations

import pytest
from shapely import Point

from tests.tiles.conftest import decode, ids_in, tile_at

pytestmark = pytest.mark.usefixtures("seeded")

OLD = (113.2400, 35.2100)
NEW = (113.2600, 35.2300)


def tile_url(layers: str, lon: float, lat: float, z: int, query: str = "") -> str:
    t = tile_at(lon, lat, z)
    return f"/tiles/{layers}/{t.z}/{t.x}/{t.y}.mvt" + (f"?{query}" if query else "")


def test_moving_a_manhole_updates_old_and_new_tiles_at_once(client, store, seeded):
    fid = seeded["manholes"][0]
    variants = [("manholes", ""), ("manholes", "status=完好"), ("manholes,smart_covers", "")]
    old = [tile_url(layers, *OLD, 16, q) for layers, q in variants]
    new = [tile_url(layers, *NEW, 16, q) for layers, q in variants]
    for u in old + new:
        client.get(u)
    assert all(client.get(u).headers["x-tile-cache"] == "hit" for u in old + new)
    store.patch("manholes", fid, {}, Point(*NEW), actor="test")
    for u in old:
        r = client.get(u)
        assert r.headers["x-tile-cache"] == "miss" and fid not in ids_in(r.content, "manholes"), u
    for u in new:
        r = client.get(u)
        assert r.headers["x-tile-cache"] == "miss" and fid in ids_in(r.content, "manholes"), u


def test_aggregated_zoom_counts_follow_a_status_change(client, store, seeded):
    u = tile_url("manholes", *OLD, 12)
    before = client.get(u)
    store.patch("manholes", seeded["manholes"][0], {"status": "破损"}, actor="test")
    after = client.get(u)
    assert after.headers["x-tile-cache"] == "miss"
    assert after.headers["etag"] != before.headers["etag"]
    cells = decode(after.content)["manholes"]["features"]
    assert sum(c["properties"]["count_破损"] for c in cells) == 2


def test_an_edit_leaves_untouched_tiles_cached(client, store, seeded):
    far = tile_url("manholes", *NEW, 16)
    client.get(far)
    store.patch("manholes", seeded["manholes"][1], {"status": "占用"}, actor="test")
    assert client.get(far).headers["x-tile-cache"] == "hit"
    assert client.get(tile_url("manholes", *OLD, 16)).headers["x-tile-cache"] == "miss"


def test_changes_feed_announces_both_places_of_a_move(client, store, seeded):
    start = client.get("/tiles/changes").json()["seq"]
    store.patch("manholes", seeded["manholes"][0], {}, Point(*NEW), actor="test")
    body = client.get(f"/tiles/changes?since={start}").json()
    boxes = [c["bbox"] for c in body["changes"] if c["layer"] == "manholes"]
    assert body["seq"] > start
    assert any(abs(b[0] - OLD[0]) < 1e-6 for b in boxes) and any(abs(b[0] - NEW[0]) < 1e-6 for b in boxes)
    assert client.get(f"/tiles/changes?since={body['seq']}").json()["changes"] == []
