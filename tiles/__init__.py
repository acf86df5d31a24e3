"""Vector tiles: grid, in-process MVT encoding, low-zoom aggregation, cache and invalidation,
TileJSON and MapLibre styles. Database-side tile SQL lives in geoapi.storage.tilesql."""
