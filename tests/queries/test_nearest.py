"""GET /nearest: exactly the k nearest by geodesic distance, on both backends."""

from __future__ import annotations

import numpy as np
import pytest
from pyproj import Geod
from shapely.geometry import MultiLineString, Point

from importers.offsets import wgs84_to_bd09, wgs84_to_gcj02

GEOD = Geod(ellps="GRS80")


def brute_force(rows, lon, lat, k, keep=lambda p: True):
    pts = [(p, g) for p, g in rows if keep(p)]
    xs = np.array([g.x for _, g in pts])
    ys = np.array([g.y for _, g in pts])
    _, _, d = GEOD.inv(np.full(len(xs), lon), np.full(len(xs), lat), xs, ys)
    order = np.argsort(d, kind="stable")[:k]
    return [pts[i][0]["cover_no"] for i in order], d[order]


def test_nearest_matches_brute_force_on_random_points(client, manholes):
    rng = np.random.default_rng(11)
    for lon, lat in zip(113.24 + rng.uniform(-0.06, 0.06, 12), 35.22 + rng.uniform(-0.06, 0.06, 12), strict=True):
        k = int(rng.integers(1, 12))
        r = client.get("/nearest", params={"layer": "manholes", "lon": lon, "lat": lat, "k": k})
        assert r.status_code == 200, r.text
        got = r.json()["features"]
        want, dist = brute_force(manholes, lon, lat, k)
        assert [f["properties"]["cover_no"] for f in got] == want
        assert np.allclose([f["properties"]["distance_m"] for f in got], dist, atol=0.02)


def test_property_filter_and_cql2_give_the_nearest_matching(client, manholes):
    lon, lat = 113.23, 35.21
    want, _ = brute_force(manholes, lon, lat, 4, keep=lambda p: p["status"] == "破损" and p["well_use"] in ("雨水", "污水"))
    r = client.get("/nearest", params={"layer": "manholes", "lon": lon, "lat": lat, "k": 4, "status": "破损",
                                       "filter": "well_use IN ('雨水','污水')"})
    assert r.status_code == 200, r.text
    assert [f["properties"]["cover_no"] for f in r.json()["features"]] == want


def test_max_distance_cuts_the_list(client, manholes):
    lon, lat = 113.24, 35.22
    want, dist = brute_force(manholes, lon, lat, 50)
    inside = [c for c, d in zip(want, dist, strict=True) if d <= 600]
    r = client.get("/nearest", params={"layer": "manholes", "lon": lon, "lat": lat, "k": 50, "max_distance_m": 600})
    assert [f["properties"]["cover_no"] for f in r.json()["features"]] == inside
    assert all(f["properties"]["distance_m"] <= 600 for f in r.json()["features"])


def test_bearing_points_from_the_query_to_the_feature(client, store):
    store.bulk_write("manholes", [({"well_use": "雨水", "cover_no": "N"}, Point(113.24, 35.23)),
                                  ({"well_use": "雨水", "cover_no": "E"}, Point(113.26, 35.22))], actor="test")
    r = client.get("/nearest", params={"layer": "manholes", "lon": 113.24, "lat": 35.22, "k": 2})
    got = {f["properties"]["cover_no"]: f["properties"]["bearing_deg"] for f in r.json()["features"]}
    assert got["N"] == pytest.approx(0.0, abs=0.1)
    assert got["E"] == pytest.approx(90.0, abs=0.2)


def test_gcj02_in_and_out_round_trips_below_half_a_metre(client, store):
    store.bulk_write("manholes", [({"well_use": "雨水", "cover_no": "A"}, Point(113.2400, 35.2200))], actor="test")
    glon, glat = (float(v[0]) for v in wgs84_to_gcj02([113.24], [35.22]))
    assert GEOD.inv(113.24, 35.22, glon, glat)[2] > 100  # the offset is real: hundreds of metres
    r = client.get("/nearest", params={"layer": "manholes", "lon": glon, "lat": glat, "k": 1, "crs": "GCJ-02"})
    f = r.json()["features"][0]
    assert f["properties"]["distance_m"] < 0.5
    x, y = f["geometry"]["coordinates"]
    assert GEOD.inv(glon, glat, x, y)[2] < 0.5  # output geometry is in GCJ-02 too


def test_bd09_input(client, store):
    store.bulk_write("manholes", [({"well_use": "雨水", "cover_no": "A"}, Point(113.2400, 35.2200))], actor="test")
    blon, blat = (float(v[0]) for v in wgs84_to_bd09([113.24], [35.22]))
    r = client.get("/nearest", params={"layer": "manholes", "lon": blon, "lat": blat, "k": 1, "crs": "BD-09"})
    assert r.json()["features"][0]["properties"]["distance_m"] < 0.5


def test_several_layers_merge_by_distance(client, store, manholes):
    store.bulk_write("toilets", [({"name": "公厕1"}, Point(113.2401, 35.2201))], actor="test")
    r = client.get("/nearest", params={"layers": "manholes,toilets", "lon": 113.2401, "lat": 35.2201, "k": 3})
    feats = r.json()["features"]
    assert feats[0]["properties"]["layer"] == "toilets" and feats[0]["properties"]["distance_m"] < 0.01
    d = [f["properties"]["distance_m"] for f in feats]
    assert d == sorted(d) and len(d) == 3


def test_lines_use_the_nearest_point_of_the_geometry(client, store):
    line = MultiLineString([[(113.20, 35.20), (113.30, 35.20)]])
    store.bulk_write("road_segments", [({"segment_code": "L-01", "road_name": "测试路"}, line)], actor="test")
    r = client.get("/nearest", params={"layer": "road_segments", "lon": 113.25, "lat": 35.21, "k": 1})
    f = r.json()["features"][0]
    assert f["properties"]["distance_m"] == pytest.approx(GEOD.inv(113.25, 35.21, 113.25, 35.20)[2], rel=1e-4)
    assert f["properties"]["bearing_deg"] == pytest.approx(180.0, abs=0.5)


@pytest.mark.parametrize(("params", "fragment"), [
    ({"lat": 95}, "latitude"),
    ({"k": 0}, "k must be"),
    ({"k": 1001}, "k must be"),
    ({"crs": "EPSG:9999"}, "crs"),
    ({"nonsense": "1"}, "nonsense"),
    ({"status": "坏了"}, "status"),
    ({"filter": "status = "}, "CQL2"),
    ({"filter": "depth > 3"}, "depth"),
])
def test_bad_input_is_a_400_saying_what(client, params, fragment):
    r = client.get("/nearest", params={"layer": "manholes", "lon": 113.2, "lat": 35.2, **params})
    assert r.status_code == 400, r.text
    assert fragment in r.json()["detail"]


def test_unknown_layer_is_404(client):
    assert client.get("/nearest", params={"layer": "nope", "lon": 113.2, "lat": 35.2}).status_code == 404


@pytest.mark.parametrize("param", ["layer", "status", "filter", "crs", "k", "cover_no"])
def test_injection_never_reaches_sql(client, store, manholes, param):
    evil = "'; DROP TABLE manholes; --"
    params = {"layer": "manholes", "lon": 113.24, "lat": 35.22, param: evil}
    r = client.get("/nearest", params=params)
    assert r.status_code in (200, 400, 404), r.text
    if param == "cover_no":  # a text field: a legal (if odd) value that matches nothing
        assert r.json()["features"] == []
    assert store.count("manholes") == len(manholes)


def ring(lon: float, lat: float, radius_m: float, n: int, jitter_m: float, seed: int) -> list[tuple[dict, Point]]:
    """Covers at nearly the same geodesic distance in every direction: the sphere and the
    ellipsoid disagree on their order (by up to ~0.5 %), so only a re-rank with a sound
    completeness bound returns the true nearest."""
    rng = np.random.default_rng(seed)
    az = np.linspace(0, 360, n, endpoint=False)
    dist = radius_m + rng.uniform(-jitter_m, jitter_m, n)
    xs, ys, _ = GEOD.fwd(np.full(n, lon), np.full(n, lat), az, dist)
    return [({"well_use": USES_RING[i % 2], "status": "完好", "cover_no": f"R{i:03d}"}, Point(float(x), float(y)))
            for i, (x, y) in enumerate(zip(xs, ys, strict=True))]


USES_RING = ["雨水", "污水"]


def assert_ring_ranked_on_the_ellipsoid(client, store, k: int, params: dict) -> None:
    lon, lat = 113.24, 35.22
    rows = ring(lon, lat, 2000.0, 80, 4.0, seed=k)
    store.bulk_write("manholes", rows, actor="test")
    keep = (lambda p: p["well_use"] == params["well_use"]) if "well_use" in params else (lambda p: True)
    want, dist = brute_force(rows, lon, lat, k, keep=keep)
    if "max_distance_m" in params:
        want = [c for c, d in zip(want, dist, strict=True) if d <= params["max_distance_m"]]
    r = client.get("/nearest", params={"layer": "manholes", "lon": lon, "lat": lat, "k": k, **params})
    assert r.status_code == 200, r.text
    assert [f["properties"]["cover_no"] for f in r.json()["features"]] == want


@pytest.mark.parametrize(("k", "params"), [(5, {}), (1, {}), (7, {"well_use": "污水"}), (5, {"max_distance_m": 2000})])
def test_ring_of_near_equal_distances_is_ranked_on_the_ellipsoid(client, store, k, params):
    assert_ring_ranked_on_the_ellipsoid(client, store, k, params)


@pytest.mark.postgis
def test_postgis_point_layers_have_an_idempotent_geography_index(backend, store):
    if backend != "postgis":
        pytest.skip("the geography index is PostGIS only")
    with store.read() as conn:
        names = set(conn.exec_driver_sql("SELECT indexname FROM pg_indexes").scalars())
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")  # a test table is tiny
        plan = "\n".join(conn.exec_driver_sql(
            "EXPLAIN SELECT id FROM manholes ORDER BY geography(geom) <-> "
            "geography(ST_SetSRID(ST_MakePoint(113.24, 35.22), 4490)) LIMIT 5").scalars())
    assert {"ix_manholes_geog", "ix_toilets_geog"} <= names
    assert "ix_road_segments_geog" not in names  # lines: geography would read edges as great circles
    assert "ix_manholes_geog" in plan
    assert not [line for line in store.upgrade() if "geog" in line]  # second run creates nothing


@pytest.mark.postgis
def test_the_geography_index_is_built_buffered_and_an_older_one_is_set_so_on_upgrade(backend, store):
    if backend != "postgis":
        pytest.skip("the geography index is PostGIS only")

    def options() -> list | None:
        with store.read() as conn:
            return conn.exec_driver_sql("SELECT reloptions FROM pg_class WHERE relname = 'ix_manholes_geog'").scalar()

    assert options() == ["buffering=on"]
    with store.engine.begin() as conn:   # as made before the option
        conn.exec_driver_sql('ALTER INDEX "ix_manholes_geog" RESET (buffering)')
    assert options() is None
    assert "index ix_manholes_geog: buffered builds" in store.upgrade()
    assert options() == ["buffering=on"]


def _postgis_only(backend: str) -> None:
    if backend != "postgis":
        pytest.skip("the geography KNN path is PostGIS only")


@pytest.mark.postgis
def test_postgis_nearest_is_one_statement_outside_a_transaction(backend, client, store, manholes):
    """The common case is one round trip: one statement (the reach scan with every column)
    and no BEGIN/ROLLBACK around it."""
    _postgis_only(backend)
    import psycopg
    from sqlalchemy import event

    seen = []

    def after(conn, cursor, statement, params, context, executemany):
        seen.append((statement.split()[0], conn.connection.dbapi_connection.info.transaction_status))

    event.listen(store.engine, "after_cursor_execute", after)
    try:
        r = client.get("/nearest", params={"layer": "manholes", "lon": 113.24, "lat": 35.22, "k": 5})
    finally:
        event.remove(store.engine, "after_cursor_execute", after)
    assert r.status_code == 200 and len(r.json()["features"]) == 5
    assert seen == [("SELECT", psycopg.pq.TransactionStatus.IDLE)]


@pytest.mark.postgis
@pytest.mark.parametrize(("k", "params"), [(5, {}), (12, {"well_use": "污水"}), (5, {"max_distance_m": 2003})])
def test_postgis_scan_past_its_limit_grows_and_stays_exact(backend, client, store, monkeypatch, k, params):
    """A ring of near-equal distances holds more rows within the reach than the first LIMIT:
    the scan is repeated with longer LIMITs and the answer is still the true one."""
    _postgis_only(backend)
    from geoapi.services import nearest as service

    monkeypatch.setattr(service, "FIRST_CAP", 1)
    monkeypatch.setattr(service, "CANDIDATE_FACTOR", 1)  # first LIMIT = k
    assert_ring_ranked_on_the_ellipsoid(client, store, k, params)


@pytest.mark.parametrize(("lat", "params"), [(37.5, {}), (35.30, {"max_distance_m": 3950}), (35.30, {"k": 300})])
def test_far_points_and_short_lists_are_exact(client, manholes, lat, params):
    """Beyond the reach band (the nearest cover ~250 km away), fewer than k inside
    max_distance_m, and k past the whole layer: each still the true list."""
    lon = 113.24
    k = params.get("k", 6)
    want, dist = brute_force(manholes, lon, lat, k)
    if "max_distance_m" in params:
        want = [c for c, d in zip(want, dist, strict=True) if d <= params["max_distance_m"]]
        assert 0 < len(want) < k  # the case under test: some, not k, inside the limit
    r = client.get("/nearest", params={"layer": "manholes", "lon": lon, "lat": lat, "k": k,
                                       **{p: v for p, v in params.items() if p != "k"}})
    assert r.status_code == 200, r.text
    got = r.json()["features"]
    assert [f["properties"]["cover_no"] for f in got] == want
    assert np.allclose([f["properties"]["distance_m"] for f in got], dist[: len(got)], atol=0.02)
