"""In-process event bus: numbered events in a bounded ring buffer, for ``GET /events`` (SSE).

Any thread may ``publish(kind, data)``; async consumers wait with ``wait_after`` and resume
from a sequence number (SSE ``Last-Event-ID``). The bus of an app lives on
``app.state.events`` — get it with ``bus_of(app)`` from startup code in any plugin.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Event:
    seq: int
    kind: str           # alarm | status | tiles | …
    data: dict[str, Any]
    at: str             # ISO 8601 UTC publish time


class EventBus:
    def __init__(self, keep: int = 10_000):
        self._items: deque[Event] = deque(maxlen=keep)
        self._seq = 0
        self._lock = threading.Lock()
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()

    @property
    def last_seq(self) -> int:
        return self._seq

    def publish(self, kind: str, data: dict[str, Any]) -> Event:
        """Append an event and wake every waiting consumer; safe from any thread."""
        with self._lock:
            self._seq += 1
            event = Event(self._seq, kind, data, dt.datetime.now(dt.UTC).isoformat())
            self._items.append(event)
            waiters = list(self._waiters)
        for loop, flag in waiters:
            try:
                loop.call_soon_threadsafe(flag.set)
            except RuntimeError:  # that consumer's loop has closed
                self._waiters.discard((loop, flag))
        return event

    def since(self, seq: int, kinds: frozenset[str] | None = None) -> tuple[list[Event], bool, int]:
        """Events after ``seq`` (of ``kinds``), whether some in between were already dropped from
        the buffer, and the newest sequence number looked at (to resume from)."""
        with self._lock:
            items = list(self._items)
            last = self._seq
        gap = bool(items) and seq < items[0].seq - 1
        out = [e for e in items if e.seq > seq and (kinds is None or e.kind in kinds)]
        return out, gap, max(seq, last)

    async def wait_after(self, seq: int, timeout: float) -> None:
        """Return when an event newer than ``seq`` exists, or after ``timeout`` seconds."""
        if self._seq > seq:
            return
        flag = asyncio.Event()
        waiter = (asyncio.get_running_loop(), flag)
        with self._lock:
            self._waiters.add(waiter)
        try:
            if self._seq > seq:
                return
            try:
                await asyncio.wait_for(flag.wait(), timeout)
            except TimeoutError:
                pass
        finally:
            with self._lock:
                self._waiters.discard(waiter)


_lock = threading.Lock()


def bus_of(app: Any) -> EventBus:
    """The app's bus (``app.state.events``), created on first use so plugin order does not matter."""
    state = app.state
    bus = getattr(state, "events", None)
    if bus is None:
        with _lock:
            bus = getattr(state, "events", None)
            if bus is None:
                bus = EventBus()
                state.events = bus
    return bus
