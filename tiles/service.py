"""Serving a tile: resolve layers, check the address, parse filters, cache, render, compress.

Framework-free; the HTTP router (geoapi.api.tiles) only turns the result into a response.
Rendering is a callable given by the storage side (geoapi.storage.tilesql.render_tile).
A fresh render is compressed only when something needs the gzip bytes (a cache that keeps
entries, or a client that accepts gzip), and a client that asks for identity gets the rendered
bytes as they are, without a compress–decompress round trip.
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property

from layers.registry import LayerRegistry
from layers.spec import LayerSpec
from tiles.cache import CachedTile, CacheKey, TileCache
from tiles.filters import LayerFilter, cache_token, parse_filters
from tiles.grid import TileId, check_tile

Renderer = Callable[[list[LayerSpec], TileId, Mapping[str, LayerFilter]], bytes]


class UnknownLayerError(LookupError):
    """A requested layer id is not registered."""


@dataclass(frozen=True)
class TileResult:
    gzipped: bytes | None  # the gzip body when known (from the cache); b"" for an empty tile
    etag: str  # a weak validator: equal for the gzip and identity encodings of one tile
    cache_control: str
    cached: bool
    raw: bytes | None = None  # the uncompressed MVT when known (a fresh render)

    @cached_property
    def body(self) -> bytes:
        """gzip-compressed; b"" for an empty tile."""
        if self.gzipped is not None:
            return self.gzipped
        return _gzip(self.raw or b"")

    @property
    def empty(self) -> bool:
        return not (self.raw if self.raw is not None else self.gzipped)

    def identity(self) -> bytes:
        if self.raw is not None:
            return self.raw
        return gzip.decompress(self.gzipped) if self.gzipped else b""


@dataclass(frozen=True)
class CachePolicy:
    max_age: int = 60
    live_max_age: int = 5

    def header(self, layers: list[LayerSpec]) -> str:
        live = any(layer.status.live for layer in layers)
        # must-revalidate: once stale, the browser asks again (a cheap 304 when unchanged).
        return f"public, max-age={self.live_max_age if live else self.max_age}, must-revalidate"


def resolve_layers(registry: LayerRegistry, ids: str) -> list[LayerSpec]:
    names = [n.strip() for n in ids.split(",") if n.strip()]
    if not names:
        raise UnknownLayerError("no layer given")
    unknown = [n for n in names if n not in registry]
    if unknown:
        raise UnknownLayerError(f"unknown layer {', '.join(unknown)}; known: {', '.join(registry.ids)}")
    if len(set(names)) != len(names):
        names = list(dict.fromkeys(names))
    return [registry[n] for n in names]


class TileService:
    def __init__(self, registry: LayerRegistry, cache: TileCache, render: Renderer,
                 policy: CachePolicy = CachePolicy()):
        self.registry = registry
        self.cache = cache
        self.render = render
        self.policy = policy

    def tile(self, layer_ids: str, z: int, x: int, y: int, params: Mapping[str, str]) -> TileResult:
        plan = self.plan(layer_ids, z, x, y, params)
        if isinstance(plan, TileResult):
            return plan
        return self.finish(plan, self.render(plan.layers, plan.tile, plan.filters))

    def plan(self, layer_ids: str, z: int, x: int, y: int, params: Mapping[str, str]) -> TileResult | TilePlan:
        """Check the request and look in the cache: the answer, or what is left to render
        (render it, then ``finish``). ``tile`` does both; an async server may render itself."""
        layers = resolve_layers(self.registry, layer_ids)
        tile = check_tile(z, x, y)
        filters = parse_filters(params, layers)
        policy = self.policy.header(layers)
        shown = [layer for layer in layers if layer.tiles.minzoom <= z <= layer.tiles.maxzoom]
        if not shown:
            return TileResult(b"", _etag(b""), policy, cached=False)
        key = CacheKey(tuple(layer.id for layer in shown), tile, cache_token({k.id: filters[k.id] for k in shown}))
        entry, ticket = self.cache.lookup(key)
        if entry is not None:
            return TileResult(entry.body, entry.etag, policy, cached=True)
        return TilePlan(shown, tile, filters, policy, key, ticket)

    def finish(self, plan: TilePlan, raw: bytes) -> TileResult:
        """The result of a planned tile rendered as ``raw``, kept in the cache if it keeps entries."""
        result = TileResult(None, _etag(raw), plan.policy, cached=False, raw=raw)
        if _keeps_entries(self.cache):
            self.cache.store(plan.key, plan.ticket, CachedTile(result.body, result.etag))
        return result


@dataclass(frozen=True)
class TilePlan:
    """A tile that passed the checks and missed the cache (TileService.plan)."""

    layers: list[LayerSpec]
    tile: TileId
    filters: Mapping[str, LayerFilter]
    policy: str
    key: CacheKey
    ticket: object


def _keeps_entries(cache: TileCache) -> bool:
    """False for an in-process cache of size 0 (every request renders): nothing to compress for."""
    return getattr(cache, "size", 1) > 0


def _gzip(raw: bytes) -> bytes:
    return gzip.compress(raw, compresslevel=5, mtime=0) if raw else b""


def _etag(raw: bytes) -> str:
    return 'W/"' + hashlib.blake2b(raw, digest_size=12).hexdigest() + '"'
