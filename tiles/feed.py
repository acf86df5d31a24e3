"""The tile change feed: numbered notices of what changed, so an open map refetches only those
tiles (``GET /tiles/changes?since=<seq>``; listeners also forward them to SSE ``/events``).

Each notice: ``{"seq", "layer", "bbox": [minlon, minlat, maxlon, maxlat], "minzoom",
"maxzoom", "ids", "at"}``. A map computes the tiles of ``bbox`` at its own zoom, grown by the
64/4096 tile buffer (or uses the ``tiles`` list when the notice carries one).
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

Notice = dict[str, Any]
Listener = Callable[[list[Notice]], None]


class ChangeFeed(Protocol):
    def publish(self, notices: list[Notice]) -> list[Notice]: ...
    def since(self, seq: int, limit: int = 1000) -> tuple[list[Notice], int]: ...
    def add_listener(self, listener: Listener) -> None: ...


class _Listeners:
    def __init__(self) -> None:
        self._listeners: list[Listener] = []

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def _notify(self, notices: list[Notice]) -> None:
        for listener in self._listeners:
            listener(notices)


class MemoryFeed(_Listeners):
    """The last ``keep`` notices of this process."""

    def __init__(self, keep: int = 10_000):
        super().__init__()
        self._items: deque[Notice] = deque(maxlen=keep)
        self._seq = 0
        self._lock = threading.Lock()

    def publish(self, notices: list[Notice]) -> list[Notice]:
        with self._lock:
            out = []
            for n in notices:
                self._seq += 1
                out.append({"seq": self._seq, **n})
            self._items.extend(out)
        self._notify(out)
        return out

    def since(self, seq: int, limit: int = 1000) -> tuple[list[Notice], int]:
        with self._lock:
            items = [n for n in self._items if n["seq"] > seq][:limit]
            return items, self._seq


class RedisFeed(_Listeners):
    """Notices in a Redis sorted set by sequence number, shared by every worker."""

    def __init__(self, url: str, *, key: str = "geoapi:tiles:feed", keep: int = 10_000):
        super().__init__()
        import redis

        self.redis = redis.Redis.from_url(url)
        self.key = key
        self.keep = keep

    def publish(self, notices: list[Notice]) -> list[Notice]:
        if not notices:
            return []
        last = self.redis.incrby(f"{self.key}:seq", len(notices))
        out = [{"seq": last - len(notices) + i + 1, **n} for i, n in enumerate(notices)]
        pipe = self.redis.pipeline(transaction=False)
        pipe.zadd(self.key, {json.dumps(n, ensure_ascii=False): n["seq"] for n in out})
        pipe.zremrangebyrank(self.key, 0, -self.keep - 1)
        pipe.execute()
        self._notify(out)
        return out

    def since(self, seq: int, limit: int = 1000) -> tuple[list[Notice], int]:
        raw = self.redis.zrangebyscore(self.key, f"({seq}", "+inf", start=0, num=limit)
        last = int(self.redis.get(f"{self.key}:seq") or 0)
        return [json.loads(r) for r in raw], last


def open_feed(redis_url: str | None) -> ChangeFeed:
    return RedisFeed(redis_url) if redis_url else MemoryFeed()
