"""The tile machinery of one process, wired to a Store: cache, change feed, invalidation
(store writes and, on PostGIS, direct database edits), and the tile service."""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

from geoapi.storage import Store
from geoapi.storage.tilesql import ChangeListener, render_tile
from tiles.cache import TileCache, open_cache
from tiles.feed import ChangeFeed, open_feed
from tiles.invalidation import TileInvalidator
from tiles.service import CachePolicy, TileService

log = logging.getLogger(__name__)


@dataclass
class TilesRuntime:
    store: Store
    cache: TileCache
    feed: ChangeFeed
    service: TileService
    invalidator: TileInvalidator
    listener: ChangeListener | None = None

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
