"""Run an iterator in a worker thread, a bounded number of items ahead of its consumer.

The import reads and checks the next rows while the store writes the previous ones: reading
(GDAL), reprojection and the geometry checks release the GIL, and so does the database driver
while it waits on PostgreSQL or runs SQLite, so on two cores the two overlap instead of taking
turns. At most ``depth`` items wait in the queue, so memory stays bounded.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
_DONE = object()


def prefetched(items: Iterable[T], depth: int = 2, name: str = "geoapi-prefetch") -> Iterator[T]:
    """Yield what ``items`` yields, produced in a thread. An exception raised by ``items`` is
    raised here, where the consumer reached it. Closing this generator early (or dropping it)
    stops the thread before the next item and waits for it."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(entry: tuple) -> bool:
        while not stop.is_set():
            try:
                q.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        it = iter(items)
        try:
            for item in it:
                if not put((item, None)):
                    return
            put((_DONE, None))
        except BaseException as exc:   # handed to the consumer, raised there
            put((_DONE, exc))
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=work, name=name, daemon=True)
    thread.start()
    try:
        while True:
            item, exc = q.get()
            if item is _DONE:
                if exc is not None:
                    raise exc
                return
            yield item
    finally:
        stop.set()
        thread.join()
