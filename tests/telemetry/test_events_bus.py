"""The in-process event bus: numbering, ring buffer, waking async consumers from other threads."""

from __future__ import annotations

import asyncio
import threading

from geoapi.events import EventBus


def test_events_are_numbered_and_filtered():
    bus = EventBus()
    bus.publish("alarm", {"a": 1})
    bus.publish("tiles", {"t": 1})
    events, gap, last = bus.since(0, frozenset({"tiles"}))
    assert [(e.seq, e.kind) for e in events] == [(2, "tiles")] and not gap and last == 2


def test_a_full_ring_reports_the_gap():
    bus = EventBus(keep=3)
    for i in range(5):
        bus.publish("alarm", {"i": i})
    events, gap, _ = bus.since(0)
    assert [e.seq for e in events] == [3, 4, 5] and gap


def test_a_publish_from_another_thread_wakes_a_waiter():
    bus = EventBus()

    async def main():
        threading.Timer(0.1, bus.publish, args=("status", {})).start()
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await bus.wait_after(0, timeout=5)
        return loop.time() - t0

    assert asyncio.run(main()) < 2
