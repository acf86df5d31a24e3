"""Serving a tile: resolve layers, check the address, parse filters, cache, render, compress.

Framework-free; the HTTP router (geoapi.api.tiles) only turns the result into a response.
Rendering is a callable given by the storage side (geoapi.storage.tilesql.render_tile).
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass

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
    body: bytes  # gzip-compressed; b"" for an empty tile
    etag: str  # a weak validator: equal for the gzip and identity encodings of one tile
    cache_control: str
    cached: bool

    @property
    def empty(self) -> bool:
        return not self.body

    def identity(self) -> bytes:
        return gzip.decompress(self.body) if self.body else b""


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
        raw = self.render(shown, tile, filters)
        entry = CachedTile(gzip.compress(raw, compresslevel=5, mtime=0) if raw else b"", _etag(raw))
        self.cache.store(key, ticket, entry)
        return TileResult(entry.body, entry.etag, policy, cached=False)


def _etag(raw: bytes) -> str:
    return 'W/"' + hashlib.blake2b(raw, digest_size=12).hexdigest() + '"'
