"""TileJSON 3.0.0 (https://github.com/mapbox/tilejson-spec/tree/master/3.0.0) for one layer or a
composite, with absolute tile URLs built from the caller's base URL."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from layers.spec import LayerSpec
from tiles.aggregate import count_fields, is_aggregated


def field_descriptions(layer: LayerSpec) -> dict[str, str]:
    """Tile property → 中文 description (with the allowed values of enums)."""
    out = {}
    for name in layer.tiles.properties:
        f = layer.field(name)
        if f is None:
            continue
        text = f.label + (f"（{f.unit}）" if f.unit else "")
        if f.values:
            text += "：" + "|".join(f.values) + ("，多值以逗号分隔" if f.type == "enum_list" else "")
        out[name] = text
    if layer.tiles.aggregate_below is not None and layer.is_point:
        below = layer.tiles.aggregate_below
        out.update({k: f"{v}（第{below}级以下为网格聚合）" for k, v in count_fields(layer).items()})
    return out


def tilejson(layers: list[LayerSpec], base_url: str, *, bounds: tuple[float, float, float, float],
             query: dict[str, str] | None = None) -> dict[str, Any]:
    ids = ",".join(layer.id for layer in layers)
    url = f"{base_url.rstrip('/')}/tiles/{ids}/{{z}}/{{x}}/{{y}}.mvt"
    if query:
        url += "?" + urlencode(query)
    minzoom = min(layer.tiles.minzoom for layer in layers)
    maxzoom = max(layer.tiles.maxzoom for layer in layers)
    doc: dict[str, Any] = {
        "tilejson": "3.0.0",
        "name": ids,
        "description": "、".join(layer.title for layer in layers),
        "version": "1.0.0",
        "attribution": "geoapi",
        "scheme": "xyz",
        "tiles": [url],
        "minzoom": minzoom,
        "maxzoom": maxzoom,
        "bounds": list(bounds),
        "center": [(bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2, max(minzoom, 12)],
        "vector_layers": [_vector_layer(layer) for layer in layers],
    }
    aggregated = {layer.id: layer.tiles.aggregate_below for layer in layers
                  if layer.is_point and layer.tiles.aggregate_below is not None}
    if aggregated:
        # Zooms below these carry grid-cell counts (count, count_<status>) instead of features.
        doc["geoapi:aggregated_below"] = aggregated
    return doc


def _vector_layer(layer: LayerSpec) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": layer.id,
        "description": layer.title,
        "minzoom": layer.tiles.minzoom,
        "maxzoom": layer.tiles.maxzoom,
        "fields": field_descriptions(layer),
        "geoapi:geometry": layer.geometry,
    }
    if is_aggregated(layer, layer.tiles.minzoom):
        out["geoapi:aggregated_below"] = layer.tiles.aggregate_below
    return out
