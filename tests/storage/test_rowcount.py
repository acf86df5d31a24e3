"""Unfiltered counts (numberMatched) from the trigger-kept row counts stay exact under every write
path: the Store, multi-row SQL, COPY, DELETE, TRUNCATE, rollbacks; and fall back to count(*)."""

from __future__ import annotations

import psycopg
import pytest
import sqlalchemy as sa
from shapely.geometry import Point

from geoapi.storage import FeatureQuery, rowcount

INSERT_SQL = ("INSERT INTO manholes (well_use, version, created_at, created_by, updated_at, updated_by, geom) "
              "SELECT '雨水', 1, now(), 'psql', now(), 'psql', ST_SetSRID(ST_MakePoint({x0} + g * 1e-5, 35.2), 4490) "
              "FROM generate_series(1, {n}) g")


def manholes(n: int, x0: float = 113.2):
    return [({"well_use": "污水"}, Point(x0 + i * 1e-5, 35.21)) for i in range(n)]


def real_count(store) -> int:
    with store.engine.connect() as conn:
        return conn.execute(sa.text("SELECT count(*) FROM manholes")).scalar_one()


def kept_count(store) -> int | None:
    with store.engine.connect() as conn:
        return rowcount.exact_count(store, conn, "manholes")


def psycopg_dsn(store) -> str:
    return store.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture
def pg_store(backend, store):
    if backend != "postgis":
        pytest.skip("the trigger-kept count is PostGIS only; SpatiaLite counts rows")
    return store


def test_counts_and_pages_agree_with_count_star_on_both_backends(client, store):
    store.bulk_write("manholes", manholes(25), actor="t")
    f = store.create("manholes", *manholes(1, 113.3)[0], actor="t")
    store.delete("manholes", f.id, actor="t")
    assert store.count("manholes") == real_count(store) == 25
    page = store.query("manholes", FeatureQuery(limit=10, offset=10))
    assert page.number_matched == 25 and [x.id for x in page.features] == list(range(11, 21))
    body = client.get("/collections/manholes/items", params={"limit": 10, "offset": 20}).json()
    assert body["numberMatched"] == 25 and body["numberReturned"] == 5
    assert kept_count(store) == (25 if store.dialect == "postgis" else None)


@pytest.mark.postgis
def test_direct_sql_copy_delete_truncate_and_rollback(pg_store):
    store = pg_store
    store.bulk_write("manholes", manholes(10), actor="t")
    with psycopg.connect(psycopg_dsn(store)) as conn:
        conn.execute(INSERT_SQL.format(x0=113.2, n=500))
        with conn.cursor().copy("COPY manholes (well_use, version, created_at, created_by, updated_at, updated_by, geom) "
                                "FROM STDIN") as cp:
            for i in range(40):
                cp.write_row(["雨水", 1, "2024-01-01", "copy", "2024-01-01", "copy", f"SRID=4490;POINT(113.3 {35 + i * 1e-4})"])
        conn.execute("DELETE FROM manholes WHERE id % 7 = 0")
        conn.execute("UPDATE manholes SET status = '破损' WHERE id % 3 = 0")  # no change in count
    assert kept_count(store) == real_count(store) == 550 - 550 // 7
    with psycopg.connect(psycopg_dsn(store)) as conn:
        conn.execute(INSERT_SQL.format(x0=113.2, n=100))
        conn.rollback()
    assert kept_count(store) == real_count(store)
    with psycopg.connect(psycopg_dsn(store)) as conn:
        conn.execute("TRUNCATE manholes")
    assert kept_count(store) == 0
    store.bulk_write("manholes", manholes(3), actor="t", mode="replace")
    assert kept_count(store) == real_count(store) == 3


@pytest.mark.postgis
def test_concurrent_writers_do_not_wait_on_the_count(pg_store):
    """Deltas are appended, not one counter row updated: a long import holds no lock others need."""
    store = pg_store
    with psycopg.connect(psycopg_dsn(store)) as a, psycopg.connect(psycopg_dsn(store)) as b:
        a.execute(INSERT_SQL.format(x0=113.2, n=5))          # open transaction, not committed
        b.execute("SET lock_timeout = '2s'")
        b.execute(INSERT_SQL.format(x0=113.4, n=7))          # would time out behind a locked counter row
        b.commit()
        assert kept_count(store) == real_count(store) == 7   # a's rows are not visible yet
        a.commit()
    assert kept_count(store) == real_count(store) == 12


@pytest.mark.postgis
def test_deltas_are_folded_and_stay_exact(pg_store):
    store = pg_store
    with psycopg.connect(psycopg_dsn(store), autocommit=True) as conn:
        for _ in range(rowcount.COMPACT_AFTER + 6):
            conn.execute(INSERT_SQL.format(x0=113.2, n=2))
        conn.execute("DELETE FROM manholes WHERE id <= 3")
        rows = lambda: conn.execute(f"SELECT count(*) FROM {rowcount.TABLE} WHERE layer = 'manholes'").fetchone()[0]  # noqa: E731
        assert rows() > rowcount.COMPACT_AFTER
        assert kept_count(store) == real_count(store) == 2 * (rowcount.COMPACT_AFTER + 6) - 3
        assert rows() == 1
        assert kept_count(store) == real_count(store)


@pytest.mark.postgis
def test_without_a_complete_count_it_counts_rows_and_upgrade_recounts(pg_store):
    store = pg_store
    store.bulk_write("manholes", manholes(12), actor="t")
    with psycopg.connect(psycopg_dsn(store), autocommit=True) as conn:
        conn.execute(f"DELETE FROM {rowcount.TABLE}")            # emptied by hand
        conn.execute(INSERT_SQL.format(x0=113.2, n=4))                      # a delta without a base
    assert kept_count(store) is None
    assert store.count("manholes") == store.query("manholes", FeatureQuery(limit=5)).number_matched == 16
    with psycopg.connect(psycopg_dsn(store), autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")   # triggers off, as pg_restore may
        conn.execute(INSERT_SQL.format(x0=113.2, n=5))
    store.upgrade()
    assert kept_count(store) == real_count(store) == 21
