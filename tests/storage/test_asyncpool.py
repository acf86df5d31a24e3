"""The event loop's PostGIS read pool (geoapi.storage.asyncpool), on the test server."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from geoapi.storage.asyncpool import AsyncReadPool

pytestmark = pytest.mark.postgis


@pytest.fixture
def conninfo(pg_base_url) -> str:
    if not pg_base_url:
        pytest.skip("PostgreSQL is not reachable (set GEOAPI_TEST_PG_URL to require it)")
    return pg_base_url.replace("postgresql+psycopg://", "postgresql://")


async def _backend_pid(pool: AsyncReadPool) -> int:
    async with pool.connection() as conn:
        return (await (await conn.execute("SELECT pg_backend_pid()")).fetchone())[0]


def test_reuses_an_idle_connection_and_runs_autocommit(conninfo):
    async def main():
        pool = AsyncReadPool(conninfo, size=2)
        try:
            first, second = await _backend_pid(pool), await _backend_pid(pool)
            async with pool.connection() as conn:
                assert conn.autocommit
            return first, second
        finally:
            await pool.close()

    first, second = asyncio.run(main())
    assert first == second


def test_a_connection_left_broken_or_busy_is_not_handed_out_again(conninfo):
    async def main():
        pool = AsyncReadPool(conninfo, size=2)
        try:
            before = await _backend_pid(pool)
            with pytest.raises(psycopg.errors.DivisionByZero):
                async with pool.connection() as conn:
                    await conn.execute("SELECT 1 / 0")
            after_error = await _backend_pid(pool)   # a failed statement in autocommit: still fine
            async with pool.connection() as conn:    # the server ends this session under us
                async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as admin:
                    await admin.execute("SELECT pg_terminate_backend(%s)", (conn.info.backend_pid,))
                with pytest.raises(psycopg.OperationalError):
                    await conn.execute("SELECT 1")
            return before, after_error, await _backend_pid(pool)
        finally:
            await pool.close()

    before, after_error, after_kill = asyncio.run(main())
    assert before == after_error and after_kill != before


def test_no_more_than_size_connections_at_once(conninfo):
    async def main():
        pool = AsyncReadPool(conninfo, size=2)
        inside = peak = 0

        async def read():
            nonlocal inside, peak
            async with pool.connection() as conn:
                inside += 1
                peak = max(peak, inside)
                await conn.execute("SELECT pg_sleep(0.05)")
                inside -= 1

        try:
            await asyncio.gather(*(read() for _ in range(6)))
        finally:
            await pool.close()
        return peak

    assert asyncio.run(main()) == 2


def test_an_unreachable_server_fails_at_once():
    async def main():
        pool = AsyncReadPool("postgresql://postgres@127.0.0.1:1/nowhere", connect_timeout=2)
        try:
            async with pool.connection():
                pass
        finally:
            await pool.close()

    with pytest.raises(psycopg.OperationalError):
        asyncio.run(main())
