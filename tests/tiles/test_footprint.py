"""The folded form of a large change (tiles.footprint): the same tiles as tiles_touching, in
bounded memory; and the purge a bulk write or an import rollback makes from it."""

from __future__ import annotations

import datetime as dt

import numpy as np
import shapely
from shapely import LineString, Point, box

from geoapi.storage import model
from tests.tiles.conftest import tile_at
from tiles.footprint import TileFootprint
from tiles.grid import mercator_bounds, mercator_to_lonlat, tiles_touching

NEAR = (113.2400, 35.2100)
FAR = (113.2600, 35.2300)


def _edge_points(z: int, n: int) -> np.ndarray:
    """Points on both sides of tile edges at zoom z: inside, within and just past the buffer."""
    t = tile_at(*NEAR, z)
    minx, miny, maxx, maxy = mercator_bounds(t)
    w = maxx - minx
    out = []
    for f in np.linspace(-0.03, 0.03, n):
        out.append(Point(*mercator_to_lonlat(maxx + f * w, (miny + maxy) / 2)))
        out.append(Point(*mercator_to_lonlat((minx + maxx) / 2, miny + f * w)))
        out.append(Point(*mercator_to_lonlat(maxx + f * w, maxy + f * w)))
    return np.array(out, dtype=object)


def test_points_fold_into_exactly_the_tiles_they_touch():
    rng = np.random.default_rng(3)
    pts = np.concatenate([_edge_points(16, 41), _edge_points(13, 17),
                          shapely.points(113.24 + rng.uniform(-0.05, 0.05, 300), 35.21 + rng.uniform(-0.05, 0.05, 300))])
    fp = TileFootprint(range(10, 23), max_tiles=100_000)
    for part in np.array_split(pts, 4):   # chunk by chunk, as an import adds them
        fp.add(part)
    tiles, whole = tiles_touching(pts, range(10, 23))
    assert set(fp.tiles()) == tiles and not whole and not fp.whole
    assert fp.count == len(pts)


def test_lines_and_boxes_fold_like_tiles_touching():
    geoms = np.array([LineString([(113.20, 35.20), (113.26, 35.25)]), box(113.24, 35.21, 113.241, 35.211), None],
                     dtype=object)
    fp = TileFootprint(range(12, 16))
    fp.add(geoms)
    tiles, _ = tiles_touching(geoms[:2], range(12, 16))
    assert set(fp.tiles()) == tiles and fp.count == 2


def test_a_zoom_past_the_limit_is_kept_whole_and_stays_whole():
    rng = np.random.default_rng(5)
    pts = shapely.points(113.24 + rng.uniform(-0.05, 0.05, 2000), 35.21 + rng.uniform(-0.05, 0.05, 2000))
    fp = TileFootprint(range(10, 19), max_tiles=200)
    fp.add(pts)
    assert {17, 18} <= fp.whole and 10 not in fp.whole
    assert all(t.z not in fp.whole for t in fp.tiles())
    small = TileFootprint(range(10, 19))
    small.add([Point(*NEAR)])
    small.merge(fp)
    assert small.whole == fp.whole and small.count == 2001
    assert tile_at(*NEAR, 12) in set(small.tiles())


def _url(lon: float, lat: float, z: int) -> str:
    t = tile_at(lon, lat, z)
    return f"/tiles/manholes/{t.z}/{t.x}/{t.y}.mvt"


def test_a_bulk_write_purges_its_tiles_and_leaves_the_rest_cached(client, store, monkeypatch):
    monkeypatch.setattr(model, "KEEP_GEOMS", 5)   # fold, as a large import does
    store.create("manholes", {"well_use": "雨水"}, Point(*FAR), actor="test")
    urls = [_url(*NEAR, 16), _url(*FAR, 16), _url(*NEAR, 12)]
    for u in urls:
        client.get(u)
    assert all(client.get(u).headers["x-tile-cache"] == "hit" for u in urls)
    rng = np.random.default_rng(7)
    rows = [({"well_use": "污水"}, Point(NEAR[0] + dx, NEAR[1] + dy))
            for dx, dy in rng.uniform(-0.0004, 0.0004, (30, 2))]
    start = client.get("/tiles/changes").json()["seq"]
    store.bulk_write("manholes", rows, actor="test")
    near16, far16, near12 = (client.get(u) for u in urls)
    assert near16.headers["x-tile-cache"] == "miss" and near12.headers["x-tile-cache"] == "miss"
    assert far16.headers["x-tile-cache"] == "hit"
    notices = client.get(f"/tiles/changes?since={start}").json()["changes"]
    assert len(notices) == 1 and len(notices[0]["ids"]) == 30
    x0, y0, x1, y1 = notices[0]["bbox"]
    assert x0 <= NEAR[0] <= x1 and y0 <= NEAR[1] <= y1 and x1 < FAR[0]


def test_rolling_back_an_import_purges_what_it_had_drawn(client, store, monkeypatch):
    from geoapi.storage import schema
    from importers.batches import rollback_batch

    monkeypatch.setattr(model, "KEEP_GEOMS", 5)
    with store.engine.begin() as conn:   # the batch row of a finished import
        conn.execute(schema.import_batches.insert().values(
            id="imp-t", layer="manholes", state="done", actor="test", created_at=dt.datetime.now(dt.UTC)))
    rows = [({"well_use": "污水"}, Point(NEAR[0] + i * 1e-5, NEAR[1])) for i in range(20)]
    store.bulk_write("manholes", rows, actor="test", batch_id="imp-t")
    u = _url(*NEAR, 16)
    client.get(u)
    assert client.get(u).headers["x-tile-cache"] == "hit"
    assert rollback_batch(store, "imp-t", actor="admin").deleted == 20
    assert client.get(u).headers["x-tile-cache"] == "miss"
