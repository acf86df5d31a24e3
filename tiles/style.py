"""MapLibre GL style (spec v8) generated from the layer files: colour by the style's
``color_by`` with ``match`` expressions, circle/line/fill by geometry, count circles at the
aggregated zooms, 中文 labels. Everything it points at is served by geoapi itself.

CJK label glyphs come from the browser: create the map with ``localIdeographFontFamily``
(MapLibre's default does this); the served glyph PBFs cover Latin and digits.
"""

from __future__ import annotations

from typing import Any

from layers.registry import LayerRegistry
from layers.spec import LayerSpec

ALL_LAYERS = "yizhangtu"  # 一张图
FONT = "Noto Sans Regular"
SOURCE = "geoapi"


class UnknownStyleError(LookupError):
    pass


def style_layers(registry: LayerRegistry, name: str) -> list[LayerSpec]:
    if name == ALL_LAYERS:
        return list(registry)
    layer = registry.get(name)
    if layer is None:
        raise UnknownStyleError(f"unknown style {name!r}: use {ALL_LAYERS} or a layer id ({', '.join(registry.ids)})")
    return [layer]


def style(name: str, layers: list[LayerSpec], base_url: str) -> dict[str, Any]:
    base = base_url.rstrip("/")
    ids = ",".join(layer.id for layer in layers)
    # Areas under lines under points, so nothing is hidden under a fill.
    ordered = sorted(layers, key=lambda layer: 0 if layer.is_polygon else 1 if layer.is_line else 2)
    out: list[dict[str, Any]] = [{"id": "background", "type": "background",
                                  "paint": {"background-color": "#f4f3ef"}}]
    for layer in ordered:
        out += _layers_for(layer)
    return {
        "version": 8,
        "name": "一张图" if name == ALL_LAYERS else layers[0].title,
        "metadata": {"geoapi:layers": [layer.id for layer in layers]},
        "sources": {SOURCE: {"type": "vector", "url": f"{base}/tiles/{ids}/tilejson.json"}},
        "glyphs": f"{base}/fonts/{{fontstack}}/{{range}}.pbf",
        "sprite": f"{base}/sprites/geoapi",
        "layers": out,
    }


def color_expression(layer: LayerSpec) -> Any:
    s = layer.style
    if not s.color_by or not s.colors:
        return s.default_color
    f = layer.field(s.color_by)
    if f is not None and f.type == "enum_list":
        # enum_list values arrive comma-joined: first listed value present wins
        cases: list[Any] = ["case"]
        for value, colour in s.colors.items():
            cases += [["in", value, ["coalesce", ["get", s.color_by], ""]], colour]
        return [*cases, s.default_color]
    match: list[Any] = ["match", ["to-string", ["get", s.color_by]]]
    for value, colour in s.colors.items():
        match += [value, colour]
    return [*match, s.default_color]


def _meta(layer: LayerSpec, role: str) -> dict[str, Any]:
    return {"geoapi:layer": layer.id, "geoapi:title": layer.title, "geoapi:role": role,
            "geoapi:legend_group": layer.style.legend_group, "geoapi:color_by": layer.style.color_by}


def _base(layer: LayerSpec, suffix: str, kind: str, role: str) -> dict[str, Any]:
    return {"id": f"{layer.id}{suffix}", "type": kind, "source": SOURCE, "source-layer": layer.id,
            "minzoom": layer.tiles.minzoom, "metadata": _meta(layer, role)}


def _layers_for(layer: LayerSpec) -> list[dict[str, Any]]:
    s = layer.style
    colour = color_expression(layer)
    below = layer.tiles.aggregate_below if layer.is_point else None
    out: list[dict[str, Any]] = []
    if below is not None and below > layer.tiles.minzoom:
        out += _aggregate_layers(layer, below)
    if layer.is_polygon:
        fill = _base(layer, "", "fill", "features")
        fill["paint"] = {"fill-color": colour, "fill-opacity": s.opacity}
        outline = _base(layer, "-outline", "line", "outline")
        outline["paint"] = {"line-color": s.outline_color or colour, "line-width": 1}
        out += [fill, outline]
    elif layer.is_line:
        line = _base(layer, "", "line", "features")
        line["paint"] = {"line-color": colour, "line-width": s.width}
        line["layout"] = {"line-cap": "round", "line-join": "round"}
        out.append(line)
    else:
        circle = _base(layer, "", "circle", "features")
        if below is not None:
            circle["minzoom"] = max(below, layer.tiles.minzoom)
        circle["paint"] = {"circle-color": colour, "circle-radius": s.radius,
                           "circle-stroke-color": "#ffffff", "circle-stroke-width": 1}
        out.append(circle)
    if s.label_field:
        label = _base(layer, "-label", "symbol", "label")
        label["minzoom"] = max(layer.tiles.minzoom, 17)
        label["layout"] = {"text-field": ["to-string", ["get", s.label_field]], "text-font": [FONT],
                           "text-size": 12, "text-offset": [0, 1.2] if layer.is_point else [0, 0],
                           "symbol-placement": "line" if layer.is_line else "point",
                           "text-optional": True}
        label["paint"] = {"text-color": "#263238", "text-halo-color": "#ffffff", "text-halo-width": 1.2}
        out.append(label)
    return out


def _aggregate_layers(layer: LayerSpec, below: int) -> list[dict[str, Any]]:
    """Grid-cell counts: circle size by count, red ring when any feature is not in the first status."""
    first = layer.status.values[0]
    circle = _base(layer, "-cells", "circle", "aggregate")
    circle["maxzoom"] = below
    circle["filter"] = ["has", "count"]
    circle["paint"] = {
        "circle-color": ["case", ["<", ["get", f"count_{first}"], ["get", "count"]], "#e53935", layer.style.default_color],
        "circle-opacity": 0.75,
        "circle-radius": ["interpolate", ["linear"], ["get", "count"], 1, 4, 100, 10, 10000, 22],
        "circle-stroke-color": "#ffffff", "circle-stroke-width": 1,
    }
    count = _base(layer, "-cells-count", "symbol", "aggregate")
    count["maxzoom"] = below
    count["filter"] = ["has", "count"]
    count["layout"] = {"text-field": ["to-string", ["get", "count"]], "text-font": [FONT], "text-size": 10,
                       "text-allow-overlap": False}
    count["paint"] = {"text-color": "#ffffff"}
    return [circle, count]
