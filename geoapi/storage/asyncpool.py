"""PostGIS: a small pool of psycopg async connections for one-statement reads on the event loop.

Vector tiles are read on the event loop (Store.read_async): a z16 tile's query takes about a
millisecond, so the pool's own cost shows. Checking a connection out of SQLAlchemy's async
engine and back cost ~85 µs (its greenlet bridge and pool events); this pool costs a few µs.
psycopg_pool was not used: when the database is down its ``connection()`` waits for its
background connector up to its timeout, where a tile request should answer 503 at once.

Connections are autocommit, opened on demand up to ``size`` at a time (further requests wait
for one), kept while idle up to ``size``, and replaced after ``max_age`` seconds or when psycopg
reports them closed or broken. They belong to the event loop that opened them.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg import pq


class AsyncReadPool:
    def __init__(self, conninfo: str, *, size: int = 10, max_age: float = 1800.0, **connect_kwargs: Any):
        self._conninfo = conninfo
        self._kwargs = {**connect_kwargs, "autocommit": True}
        self._max_age = max_age
        self._idle: deque[tuple[psycopg.AsyncConnection, float]] = deque()
        self._slots = asyncio.Semaphore(size)
        self._closed = False

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection]:
        if self._closed:
            raise RuntimeError("the pool is closed")
        async with self._slots:
            conn, born = await self._checkout()
            try:
                yield conn
            finally:
                await self._checkin(conn, born)

    async def _checkout(self) -> tuple[psycopg.AsyncConnection, float]:
        while self._idle:
            conn, born = self._idle.pop()
            if not conn.closed and not conn.broken and time.monotonic() - born < self._max_age:
                return conn, born
            await conn.close()
        conn = await psycopg.AsyncConnection.connect(self._conninfo, **self._kwargs)
        return conn, time.monotonic()

    async def _checkin(self, conn: psycopg.AsyncConnection, born: float) -> None:
        # A read that failed part-way may leave the connection busy or broken: never reuse it.
        if self._closed or conn.closed or conn.broken or conn.info.transaction_status != pq.TransactionStatus.IDLE:
            await conn.close()
        else:
            self._idle.append((conn, born))

    async def close(self) -> None:
        self._closed = True
        while self._idle:
            conn, _ = self._idle.pop()
            await conn.close()
