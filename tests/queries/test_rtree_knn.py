"""SpatiaLite nearest candidates from the best-first R*Tree walk equal a brute-force ranking."""

from __future__ import annotations

import logging
import math
from collections import namedtuple
from collections.abc import Iterator

import numpy as np
import pytest
import shapely
import sqlalchemy as sa
from shapely.geometry import LineString, Point

from geoapi import crs
from geoapi.settings import Settings
from geoapi.storage import Store, knn, rtree_knn

CENTRE = (113.24, 35.22)
RARE = "占用"  # the status of a handful of covers


@pytest.fixture
def lite(db_factories, tmp_path) -> Iterator[Store]:
    url = db_factories["spatialite"].new_url()
    store = Store.open(Settings(database_url=url, data_dir=tmp_path))
    yield store
    store.close()


@pytest.fixture
def covers(lite) -> None:
    """~4,000 covers: two dense clusters, a thin scatter over the city, repeated points (exact
    ties) and a few of a rare status far apart. Deep enough for a three-level R*Tree."""
    rng = np.random.default_rng(5)
    pts = [np.column_stack([113.20 + rng.normal(0, 0.002, 1500), 35.20 + rng.normal(0, 0.002, 1500)]),
           np.column_stack([113.28 + rng.uniform(0, 0.004, 1500), 35.25 + rng.uniform(0, 0.004, 1500)]),
           np.column_stack([CENTRE[0] + rng.uniform(-0.1, 0.1, 900), CENTRE[1] + rng.uniform(-0.1, 0.1, 900)]),
           np.repeat([[113.201, 35.201], [113.25, 35.21]], 6, axis=0)]
    xy = np.vstack(pts)
    rare = set(rng.choice(len(xy), 6, replace=False).tolist())
    rows = [({"well_use": "雨水", "status": RARE if i in rare else ("完好" if i % 3 else "破损"),
              "cover_no": f"C{i:05d}"}, Point(float(x), float(y))) for i, (x, y) in enumerate(xy)]
    lite.bulk_write("manholes", rows, actor="test")


def everything(store: Store, layer: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    t = store.table(layer)
    cols = [t.c.id, sa.func.AsBinary(t.c.geom)] + ([t.c.status] if "status" in t.c else [])
    with store.read() as conn:
        rows = conn.execute(sa.select(*cols)).all()
    status = np.array([r[2] if len(r) > 2 else None for r in rows], dtype=object)
    return np.array([r[0] for r in rows]), shapely.from_wkb([bytes(r[1]) for r in rows]), status


def check(store: Store, layer: str, x: float, y: float, n: int, conds: list, keep: np.ndarray, *,
          max_deg: float | None = None, rows=None) -> knn.Candidates:
    """The candidates are the brute-force top n by (planar degree distance, id), and complete."""
    ids, geoms, _ = rows or everything(store, layer)
    d = shapely.distance(Point(x, y), geoms)
    keep = keep & (d <= (math.inf if max_deg is None else max_deg))
    order = np.lexsort((ids[keep], d[keep]))[:n]
    cand = knn.nearest_candidates(store, layer, x, y, n, conds, max_deg=max_deg)
    assert [r.id for r in cand.rows] == ids[keep][order].tolist()
    assert np.allclose([r.d for r in cand.rows], d[keep][order], rtol=0, atol=1e-12)
    if len(cand.rows) == n:
        assert cand.complete_deg >= cand.rows[-1].d
    else:
        assert cand.complete_deg == (math.inf if max_deg is None else max_deg)
    inside = ids[keep][d[keep] < cand.complete_deg]
    assert np.isin(inside, [r.id for r in cand.rows]).all()
    return cand


def random_points(rng: np.random.Generator, m: int) -> list[tuple[float, float]]:
    """Inside the clusters, among the scatter, and up to ~50 km from every cover."""
    near = [(113.20 + rng.normal(0, 0.002), 35.20 + rng.normal(0, 0.002)) for _ in range(m)]
    city = [(CENTRE[0] + rng.uniform(-0.12, 0.12), CENTRE[1] + rng.uniform(-0.12, 0.12)) for _ in range(m)]
    far = [(CENTRE[0] + rng.uniform(-0.6, 0.6), CENTRE[1] + rng.uniform(-0.6, 0.6)) for _ in range(m)]
    return near + city + far + [(113.201, 35.201), (113.25, 35.21)]  # on the repeated points


def test_walk_equals_brute_force(lite, covers):
    rng = np.random.default_rng(1)
    rows = everything(lite, "manholes")
    for x, y in random_points(rng, 12):
        for n in (1, 3, 15, 60):
            check(lite, "manholes", x, y, n, [], np.ones(len(rows[0]), bool), rows=rows)


def test_walk_with_property_filters_matching_few_rows(lite, covers):
    t = lite.table("manholes")
    rows = ids, _, status = everything(lite, "manholes")
    rng = np.random.default_rng(2)
    for x, y in random_points(rng, 5):
        check(lite, "manholes", x, y, 15, [t.c.status == RARE], status == RARE, rows=rows)  # 6 rows: all of them
        check(lite, "manholes", x, y, 4, [t.c.status == RARE], status == RARE, rows=rows)
        check(lite, "manholes", x, y, 15, [t.c.status == "破损"], status == "破损", rows=rows)
        check(lite, "manholes", x, y, 5, [t.c.status == "no such"], np.zeros(len(ids), bool), rows=rows)


def test_walk_honours_max_distance(lite, covers):
    t = lite.table("manholes")
    rows = ids, _, status = everything(lite, "manholes")
    rng = np.random.default_rng(3)
    for x, y in random_points(rng, 5):
        for max_deg in (0.0005, 0.003, 0.02, 0.3):
            check(lite, "manholes", x, y, 15, [], np.ones(len(ids), bool), max_deg=max_deg, rows=rows)
            check(lite, "manholes", x, y, 3, [t.c.status == RARE], status == RARE, max_deg=max_deg, rows=rows)
    # Rows exactly max_deg away count (inclusive, as ST_DWithin): six repeated points here.
    edge = shapely.distance(Point(113.25, 35.2105), Point(113.25, 35.21))
    cand = check(lite, "manholes", 113.25, 35.2105, 15, [], np.ones(len(ids), bool), max_deg=edge, rows=rows)
    assert sum(r.d == edge for r in cand.rows) == 6


def test_walk_on_lines(lite):
    rng = np.random.default_rng(4)
    rows = []
    for i in range(600):
        x0, y0 = CENTRE[0] + rng.uniform(-0.1, 0.1), CENTRE[1] + rng.uniform(-0.1, 0.1)
        line = LineString([(x0, y0), (x0 + rng.normal(0, 0.01), y0 + rng.normal(0, 0.01)),
                           (x0 + rng.normal(0, 0.01), y0 + rng.normal(0, 0.01))])
        rows.append(({"segment_code": f"S{i:04d}", "road_name": "测试路"}, shapely.MultiLineString([line])))
    lite.bulk_write("road_segments", rows, actor="test")
    for x, y in random_points(rng, 6):
        check(lite, "road_segments", x, y, 10, [], np.ones(600, bool))


def test_far_point_reads_a_few_leaves_not_the_town(lite, covers):
    """~40 km from the data, n=15 fetches a few small batches of rows, not a town."""
    fetched: list[int] = []
    t = lite.table("manholes")
    stmt = sa.select(t.c.id, sa.func.ST_Distance(t.c.geom, sa.func.MakePoint(113.7, 35.2, 4490)).label("d"))
    with lite.read() as conn:
        cur = conn.connection.dbapi_connection.cursor()
        nodes = rtree_knn.node_table(cur, "manholes")

        def fetch(ids):
            fetched.extend(ids)
            return conn.execute(stmt.where(t.c.id.in_(ids))).all()

        rows, complete = rtree_knn.k_nearest(cur, nodes, 15, fetch, rtree_knn.planar_key(113.7, 35.2))
        node_count = cur.execute(f'SELECT count(*) FROM "{nodes}"').fetchone()[0]
    assert len(rows) == 15 and complete >= rows[-1].d
    assert len(set(fetched)) <= 6 * rtree_knn.MIN_BATCH, len(set(fetched))  # not a whole cluster
    assert node_count > 60  # the tree is not trivially small


def test_created_moved_and_deleted_rows_are_seen_at_once(lite, covers):
    x, y = 113.5, 35.5  # far from every cover
    [before] = knn.nearest_candidates(lite, "manholes", x, y, 1, []).rows
    new = lite.create("manholes", {"well_use": "雨水", "cover_no": "NEW"}, Point(x + 1e-4, y), actor="test")
    assert [(r.id, r.d) for r in knn.nearest_candidates(lite, "manholes", x, y, 1, []).rows] == [(new.id, pytest.approx(1e-4))]
    lite.patch("manholes", new.id, {}, Point(x, y + 2e-4), actor="test")
    assert knn.nearest_candidates(lite, "manholes", x, y, 1, []).rows[0].d == pytest.approx(2e-4)
    lite.delete("manholes", new.id, actor="test")
    assert [r.id for r in knn.nearest_candidates(lite, "manholes", x, y, 1, []).rows] == [before.id]


def test_unreadable_rtree_falls_back_to_frames(lite, covers, monkeypatch, caplog):
    def refuse(cur, table, column="geom"):
        raise rtree_knn.RtreeFormatError("test: pretend the layout is unknown")

    monkeypatch.setattr(rtree_knn, "node_table", refuse)
    t = lite.table("manholes")
    ids, _, status = everything(lite, "manholes")
    rng = np.random.default_rng(6)
    with caplog.at_level(logging.WARNING, logger="geoapi.storage"):
        for x, y in random_points(rng, 2):
            check(lite, "manholes", x, y, 15, [], np.ones(len(ids), bool))
            check(lite, "manholes", x, y, 3, [t.c.status == RARE], status == RARE, max_deg=0.3)
    assert "searching frames" in caplog.text


def test_node_table_checks_the_layout(lite):
    with lite.read() as conn:  # rolled back at the end
        cur = conn.connection.dbapi_connection.cursor()
        assert rtree_knn.node_table(cur, "manholes") == "idx_manholes_geom_node"
        with pytest.raises(rtree_knn.RtreeFormatError, match="no R"):
            rtree_knn.node_table(cur, "no_such_table")
        cur.execute("CREATE VIRTUAL TABLE idx_odd_geom USING rtree_i32(pkid, xmin, xmax, ymin, ymax)")
        with pytest.raises(rtree_knn.RtreeFormatError, match="unexpected"):
            rtree_knn.node_table(cur, "odd")
        cur.execute("CREATE VIRTUAL TABLE idx_cube_geom USING rtree(pkid, xmin, xmax, ymin, ymax, zmin, zmax)")
        with pytest.raises(rtree_knn.RtreeFormatError, match="unexpected"):
            rtree_knn.node_table(cur, "cube")
        cur.execute("CREATE TEMP TABLE short_node (nodeno INTEGER PRIMARY KEY, data)")
        cur.execute("INSERT INTO short_node VALUES (1, x'0001000100')")  # one cell, no bytes for it
        with pytest.raises(rtree_knn.RtreeFormatError, match="do not fit"):
            rtree_knn.k_nearest(cur, "short_node", 1, lambda ids: [], rtree_knn.planar_key(0.0, 0.0))


def test_geodesic_key_bounds_the_geodesic_distance():
    rng = np.random.default_rng(8)
    for lat in (0.0, 0.3, 35.22, -45.0, 60.0, 80.0):
        lon = 113.24
        for size in (1e-4, 0.01, 0.3, 3.0):
            lo_x = lon + rng.uniform(-2, 2, 200) * size * 4
            lo_y = np.clip(lat + rng.uniform(-2, 2, 200) * size * 4, -89, 89 - size)
            boxes = np.column_stack([lo_x, lo_x + size * rng.uniform(0, 1, 200), lo_y, lo_y + size * rng.uniform(0, 1, 200)])
            keys = rtree_knn.geodesic_key(lon, lat)(boxes)
            # The nearest point of each box, searched on a fine grid over it.
            u = np.linspace(0, 1, 41)
            gx = boxes[:, [0]] + (boxes[:, [1]] - boxes[:, [0]]) * u[None, :]
            gy = boxes[:, [2]] + (boxes[:, [3]] - boxes[:, [2]]) * u[None, :]
            xs = np.repeat(gx, 41, axis=1)
            ys = np.tile(gy, (1, 41))
            _, _, d = crs.GEOD.inv(np.full(xs.size, lon), np.full(xs.size, lat), xs.ravel(), ys.ravel())
            nearest = d.reshape(xs.shape).min(axis=1)
            assert (keys <= nearest).all(), (lat, size, float((keys - nearest).max()))
            if size <= 0.01 and abs(lat) < 61:
                far = nearest > 100  # tight where it matters: a fraction of a per cent
                assert (keys[far] >= 0.99 * nearest[far]).all()


Geo = namedtuple("Geo", "id d")


def test_geodesic_walk_equals_brute_force(lite, covers):
    """The same walk keyed in metres on the ellipsoid: exactly the k geodesic nearest."""
    ids, geoms, status = everything(lite, "manholes")
    xs, ys = shapely.get_x(geoms), shapely.get_y(geoms)
    t = lite.table("manholes")
    rng = np.random.default_rng(9)
    with lite.read() as conn:
        cur = conn.connection.dbapi_connection.cursor()
        nodes = rtree_knn.node_table(cur, "manholes")
        for x, y in random_points(rng, 6):
            for rare in (False, True):
                cond = [t.c.status == RARE] if rare else []

                def fetch(batch, x=x, y=y, cond=cond):
                    got = conn.execute(sa.select(t.c.id, sa.func.ST_X(t.c.geom), sa.func.ST_Y(t.c.geom))
                                       .where(t.c.id.in_(batch), *cond)).all()
                    _, _, d = crs.GEOD.inv(np.full(len(got), x), np.full(len(got), y),
                                           [r[1] for r in got], [r[2] for r in got])
                    return [Geo(r[0], float(di)) for r, di in zip(got, d, strict=True)]

                rows, complete = rtree_knn.k_nearest(cur, nodes, 5, fetch, rtree_knn.geodesic_key(x, y))
                _, _, d = crs.GEOD.inv(np.full(len(xs), x), np.full(len(xs), y), xs, ys)
                keep = status == RARE if rare else np.ones(len(ids), bool)
                order = np.lexsort((ids[keep], d[keep]))[:5]
                assert [r.id for r in rows] == ids[keep][order].tolist()
                assert complete >= rows[-1].d
