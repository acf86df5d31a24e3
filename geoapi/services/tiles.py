"""The tile machinery of one process, wired to a Store: cache, change feed, invalidation
(store writes and, on PostGIS, direct database edits), and the tile service.

``TilesRuntime.tile`` serves a tile to the event loop: PostGIS feature tiles are awaited on the
loop itself when the cache is in-process (a z16 tile's query takes about a millisecond, and a
hop to a worker thread and back cost most of another: bench/README.md "Tiles"); everything else
(aggregated and filtered tiles, SpatiaLite, a Redis cache, whose client blocks) runs in the
thread pool.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from dataclasses import dataclass

from anyio import to_thread

from geoapi.storage import Store
from geoapi.storage.tilesql import ChangeListener, render_tile, render_tile_async
from tiles.cache import MemoryTileCache, TileCache, open_cache
from tiles.feed import ChangeFeed, open_feed
from tiles.invalidation import TileInvalidator
from tiles.service import CachePolicy, TileResult, TileService

log = logging.getLogger(__name__)


@dataclass
class TilesRuntime:
    store: Store
    cache: TileCache
    feed: ChangeFeed
    service: TileService
    invalidator: TileInvalidator
    listener: ChangeListener | None = None

    @property
    def renders_on_loop(self) -> bool:
        return self.store.dialect == "postgis" and isinstance(self.cache, MemoryTileCache)

    async def tile(self, layer_ids: str, z: int, x: int, y: int, params: Mapping[str, str]) -> TileResult:
        """TileService.tile for an async server (see the module docstring)."""
        if not self.renders_on_loop:
            return await to_thread.run_sync(self.service.tile, layer_ids, z, x, y, params)
        plan = self.service.plan(layer_ids, z, x, y, params)
        if isinstance(plan, TileResult):
            return plan
        raw = await render_tile_async(self.store, plan.layers, plan.tile, plan.filters)
        if raw is None:
            raw = await to_thread.run_sync(self.service.render, plan.layers, plan.tile, plan.filters)
        return self.service.finish(plan, raw)

    def close(self) -> None:
        self.store.unsubscribe(self.invalidator)
        if self.listener is not None:
            self.listener.stop()


def open_tiles(store: Store, *, redis_url: str | None = None, cache_size: int = 20_000,
               policy: CachePolicy = CachePolicy(), listen: bool = True) -> TilesRuntime:
    """Build the runtime and subscribe it to the store (and to PostGIS NOTIFY when ``listen``)."""
    cache = open_cache(redis_url, cache_size)
    feed = open_feed(redis_url)
    service = TileService(store.registry, cache, functools.partial(render_tile, store), policy)
    invalidator = TileInvalidator(store.registry, cache, feed)
    store.subscribe(invalidator)
    listener = None
    if listen and store.dialect == "postgis":
        listener = ChangeListener(store, invalidator, on_gap=cache.clear).start()
    return TilesRuntime(store, cache, feed, service, invalidator, listener)
