"""Cache backends: a purge drops every variant and composite holding a tile, and nothing else."""

from __future__ import annotations

import uuid

import pytest

from tiles.cache import CachedTile, CacheKey, MemoryTileCache, Purge, RedisTileCache
from tiles.grid import TileId

T = TileId(16, 53380, 25900)
OTHER = TileId(16, 53381, 25900)


def _redis():
    import redis

    try:
        redis.Redis.from_url("redis://127.0.0.1:6379/0").ping()
    except redis.RedisError:
        pytest.skip("Redis is not reachable at 127.0.0.1:6379")
    c = RedisTileCache("redis://127.0.0.1:6379/0", prefix=f"geoapi:test:{uuid.uuid4().hex[:8]}:", ttl=60)
    return c


@pytest.fixture(params=["memory", "redis"])
def cache(request):
    c = MemoryTileCache(100) if request.param == "memory" else _redis()
    yield c
    c.clear()


def put(cache, key: CacheKey, body: bytes = b"x") -> None:
    _, ticket = cache.lookup(key)
    cache.store(key, ticket, CachedTile(body, f'W/"{body.hex()}"'))


def test_purge_drops_filter_variants_and_composites_of_the_tile(cache):
    keys = [CacheKey(("manholes",), T), CacheKey(("manholes",), T, "manholes[status=破损|]"),
            CacheKey(("manholes", "pipes"), T)]
    spared = [CacheKey(("manholes",), OTHER), CacheKey(("pipes",), T)]
    for k in keys + spared:
        put(cache, k)
    cache.purge(Purge(frozenset({("manholes", T.z, T.x, T.y)})))
    assert [cache.lookup(k)[0] for k in keys] == [None, None, None]
    assert all(cache.lookup(k)[0] is not None for k in spared)


def test_whole_zoom_purge(cache):
    put(cache, CacheKey(("manholes",), T))
    put(cache, CacheKey(("manholes",), TileId(15, 1, 1)))
    cache.purge(Purge(frozenset(), frozenset({("manholes", 16)})))
    assert cache.lookup(CacheKey(("manholes",), T))[0] is None
    assert cache.lookup(CacheKey(("manholes",), TileId(15, 1, 1)))[0] is not None


def test_a_tile_rendered_across_a_purge_is_not_kept(cache):
    key = CacheKey(("manholes",), T)
    _, ticket = cache.lookup(key)
    cache.purge(Purge(frozenset({("manholes", T.z, T.x, T.y)})))  # a write lands mid-render
    cache.store(key, ticket, CachedTile(b"stale", 'W/"s"'))
    assert cache.lookup(key)[0] is None


def test_memory_cache_is_bounded():
    c = MemoryTileCache(2)
    for i in range(3):
        put(c, CacheKey(("manholes",), TileId(16, i, 0)))
    assert len(c) == 2 and c.lookup(CacheKey(("manholes",), TileId(16, 0, 0)))[0] is None
