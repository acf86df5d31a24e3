"""Offline tile packages for field crews: the layers' tiles over an area, as one PMTiles v3 file."""

from __future__ import annotations

import gzip
from pathlib import Path

from pmtiles.tile import Compression, TileType, zxy_to_tileid
from pmtiles.writer import Writer

from geoapi.storage import Store
from geoapi.storage.tilesql import render_tile
from tiles.filters import LayerFilter
from tiles.grid import TMS, TileId
from tiles.service import resolve_layers
from tiles.tilejson import tilejson

MAX_TILES = 250_000


def export_pmtiles(store: Store, layers: list[str], bounds: tuple[float, float, float, float],
                   minzoom: int, maxzoom: int, path: Path | str) -> dict[str, int]:
    """Write every non-empty tile of ``layers`` within ``bounds`` (lon/lat) at ``minzoom``–``maxzoom``.

    Tiles are the same bytes the API serves (aggregated below each layer's aggregate_below),
    gzip-compressed, in tile-id order. Returns {"tiles": written, "empty": skipped, "bytes": size}.
    """
    specs = resolve_layers(store.registry, ",".join(layers))
    if not 0 <= minzoom <= maxzoom <= 22:
        raise ValueError(f"zooms must satisfy 0 ≤ minzoom ≤ maxzoom ≤ 22, got {minzoom}–{maxzoom}")
    addresses = sorted((zxy_to_tileid(t.z, t.x, t.y), TileId(t.z, t.x, t.y))
                       for t in TMS.tiles(*bounds, zooms=list(range(minzoom, maxzoom + 1))))
    if len(addresses) > MAX_TILES:
        raise ValueError(f"{len(addresses)} tiles is more than {MAX_TILES}; lower maxzoom or the area")
    no_filters = {spec.id: LayerFilter() for spec in specs}
    written = empty = 0
    path = Path(path)
    with path.open("wb") as f:
        writer = Writer(f)
        for tile_id, tile in addresses:
            shown = [s for s in specs if s.tiles.minzoom <= tile.z <= s.tiles.maxzoom]
            data = render_tile(store, shown, tile, no_filters) if shown else b""
            if not data:
                empty += 1
                continue
            writer.write_tile(tile_id, gzip.compress(data, mtime=0))
            written += 1
        header = {
            "tile_type": TileType.MVT, "tile_compression": Compression.GZIP,
            "min_zoom": minzoom, "max_zoom": maxzoom,
            "min_lon_e7": int(bounds[0] * 1e7), "min_lat_e7": int(bounds[1] * 1e7),
            "max_lon_e7": int(bounds[2] * 1e7), "max_lat_e7": int(bounds[3] * 1e7),
            "center_zoom": minzoom, "center_lon_e7": int((bounds[0] + bounds[2]) / 2 * 1e7),
            "center_lat_e7": int((bounds[1] + bounds[3]) / 2 * 1e7),
        }
        doc = tilejson(specs, "pmtiles://", bounds=bounds)
        metadata = {"name": doc["name"], "description": doc["description"], "vector_layers": doc["vector_layers"]}
        if "geoapi:aggregated_below" in doc:
            metadata["geoapi:aggregated_below"] = doc["geoapi:aggregated_below"]
        writer.finalize(header, metadata)
    return {"tiles": written, "empty": empty, "bytes": path.stat().st_size}
