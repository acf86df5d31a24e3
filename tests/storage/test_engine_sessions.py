"""PostGIS session settings and autocommit reads (geoapi.storage.engine)."""

from __future__ import annotations

import pytest

from geoapi.storage.engine import autocommit_reads


def _postgis_only(backend: str) -> None:
    if backend != "postgis":
        pytest.skip("PostGIS session settings")


@pytest.mark.postgis
def test_sessions_run_without_parallel_workers_or_jit(backend, store):
    _postgis_only(backend)
    with store.read() as conn:
        assert conn.exec_driver_sql("SHOW max_parallel_workers_per_gather").scalar() == "0"
        assert conn.exec_driver_sql("SHOW jit").scalar() == "off"


@pytest.mark.postgis
def test_autocommit_read_sends_no_transaction_and_is_undone_on_return(backend, store):
    _postgis_only(backend)
    import psycopg

    with store.read() as conn:
        autocommit_reads(conn)
        dbapi = conn.connection.dbapi_connection
        assert conn.exec_driver_sql("SELECT 1").scalar() == 1
        assert dbapi.info.transaction_status == psycopg.pq.TransactionStatus.IDLE  # no BEGIN was sent
    assert dbapi.autocommit is False  # back in the pool as it was: the next reader gets a transaction
    with store.read() as conn:
        conn.exec_driver_sql("SELECT 1")
        assert conn.connection.dbapi_connection.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS


def test_autocommit_read_leaves_spatialite_alone(backend, store):
    if backend != "spatialite":
        pytest.skip("SpatiaLite")
    with store.read() as conn:
        assert autocommit_reads(conn) is conn
        assert conn.get_execution_options().get("isolation_level") is None
