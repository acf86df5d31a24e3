"""The tile cache: an in-process LRU by default, Redis when configured (shared by workers).

Entries are keyed by the layers, the tile, and the filters; each knows the (layer, z, x, y)
tiles it was made from, so a purge removes every filter variant and every composite that
contains a changed tile, and nothing else.

- Memory: an index from (layer, z, x, y) to the keys that hold it; a purge deletes them.
- Redis: each tile has a generation ``gen:{layer}:{z}/{x}/{y}`` (plus one per layer and zoom,
  for changes too big to list) folded into the entry's key; a purge sets them to a new value,
  so old entries are never read again and expire by TTL, without a key scan.

A tile rendered while a purge of it happens is not stored (it may predate the write).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from tiles.grid import TileId

Ref = tuple[str, int, int, int]  # (layer, z, x, y)


@dataclass(frozen=True)
class CacheKey:
    layers: tuple[str, ...]
    tile: TileId
    filters: str = ""

    @property
    def refs(self) -> list[Ref]:
        return [(lid, self.tile.z, self.tile.x, self.tile.y) for lid in self.layers]

    def text(self) -> str:
        return f"{','.join(self.layers)}/{self.tile}?{self.filters}"


@dataclass(frozen=True)
class CachedTile:
    body: bytes  # gzip-compressed MVT; b"" = empty tile
    etag: str

    def dumps(self) -> bytes:
        return self.etag.encode() + b"\n" + self.body

    @classmethod
    def loads(cls, raw: bytes) -> CachedTile:
        etag, _, body = raw.partition(b"\n")
        return cls(body, etag.decode())


@dataclass(frozen=True)
class Purge:
    """What a change invalidates: single tiles, and whole zooms of a layer where too many."""

    tiles: frozenset[Ref]
    zooms: frozenset[tuple[str, int]] = frozenset()

    def touches(self, key: CacheKey) -> bool:
        z = key.tile.z
        return any((lid, z) in self.zooms or r in self.tiles for lid, r in zip(key.layers, key.refs, strict=True))


class TileCache(Protocol):
    def lookup(self, key: CacheKey) -> tuple[CachedTile | None, Any]: ...
    def store(self, key: CacheKey, ticket: Any, tile: CachedTile) -> None: ...
    def purge(self, purge: Purge) -> None: ...
    def clear(self) -> None: ...


class MemoryTileCache:
    """LRU of at most ``size`` entries (0 = no caching)."""

    def __init__(self, size: int = 20_000, recent_purges: int = 1024):
        self.size = size
        self._entries: OrderedDict[CacheKey, CachedTile] = OrderedDict()
        self._index: dict[Ref, set[CacheKey]] = {}
        self._seq = 0
        self._recent: deque[tuple[int, Purge]] = deque(maxlen=recent_purges)
        self._lock = threading.Lock()

    def lookup(self, key: CacheKey) -> tuple[CachedTile | None, int]:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
            return entry, self._seq

    def store(self, key: CacheKey, ticket: int, tile: CachedTile) -> None:
        if self.size <= 0:
            return
        with self._lock:
            if self._purged_since(ticket, key):
                return
            self._entries[key] = tile
            self._entries.move_to_end(key)
            for ref in key.refs:
                self._index.setdefault(ref, set()).add(key)
            while len(self._entries) > self.size:
                old, _ = self._entries.popitem(last=False)
                self._unindex(old)

    def purge(self, purge: Purge) -> None:
        with self._lock:
            self._seq += 1
            self._recent.append((self._seq, purge))
            doomed: set[CacheKey] = set()
            for ref in purge.tiles:
                doomed |= self._index.get(ref, set())
            if purge.zooms:
                doomed |= {k for k in self._entries if purge.touches(k)}
            for key in doomed:
                self._entries.pop(key, None)
                self._unindex(key)

    def clear(self) -> None:
        with self._lock:
            self._seq += 1
            self._recent.clear()
            self._entries.clear()
            self._index.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def _purged_since(self, ticket: int, key: CacheKey) -> bool:
        if ticket == self._seq:
            return False
        if not self._recent or self._recent[0][0] > ticket + 1:
            return True  # purges we no longer remember: play safe
        return any(seq > ticket and p.touches(key) for seq, p in self._recent)

    def _unindex(self, key: CacheKey) -> None:
        for ref in key.refs:
            keys = self._index.get(ref)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._index[ref]


class RedisTileCache:
    """Shared cache in Redis; generations make purges O(changed tiles) with no scan."""

    def __init__(self, url: str, *, prefix: str = "geoapi:tiles:", ttl: int = 86_400):
        import redis

        self.redis = redis.Redis.from_url(url)
        self.prefix = prefix
        self.ttl = ttl

    def _gen_keys(self, key: CacheKey) -> list[str]:
        t = key.tile
        out = []
        for lid in key.layers:
            out += [f"{self.prefix}gen:{lid}:{t.z}/{t.x}/{t.y}", f"{self.prefix}gen:{lid}:{t.z}"]
        return out

    def lookup(self, key: CacheKey) -> tuple[CachedTile | None, str]:
        gens = self.redis.mget(self._gen_keys(key))
        digest = hashlib.blake2b(f"{key.text()}#{gens}".encode(), digest_size=16).hexdigest()
        rkey = f"{self.prefix}t:{digest}"
        raw = self.redis.get(rkey)
        return (CachedTile.loads(raw) if raw is not None else None), rkey

    def store(self, key: CacheKey, ticket: str, tile: CachedTile) -> None:
        self.redis.set(ticket, tile.dumps(), ex=self.ttl)

    def purge(self, purge: Purge) -> None:
        # A fresh value, never reused: an expired generation reads as None, and entries made
        # under None are older than the first purge, so they expire before it does (2 × TTL).
        value = self.redis.incr(f"{self.prefix}seq")
        pipe = self.redis.pipeline(transaction=False)
        for lid, z, x, y in purge.tiles:
            pipe.set(f"{self.prefix}gen:{lid}:{z}/{x}/{y}", value, ex=2 * self.ttl)
        for lid, z in purge.zooms:
            pipe.set(f"{self.prefix}gen:{lid}:{z}", value, ex=2 * self.ttl)
        pipe.execute()

    def clear(self) -> None:
        for k in self.redis.scan_iter(f"{self.prefix}*", count=1000):
            self.redis.delete(k)


def open_cache(redis_url: str | None, size: int) -> TileCache:
    return RedisTileCache(redis_url) if redis_url else MemoryTileCache(size)


def purge_for(refs: Iterable[Ref], zooms: Iterable[tuple[str, int]] = ()) -> Purge:
    return Purge(frozenset(refs), frozenset(zooms))
