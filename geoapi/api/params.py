"""Query-parameter parsing shared by items, tiles and queries: bbox, property filters, paging."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping

from geoapi.errors import BadRequestError
from layers import LayerSpec
from layers.validate import coerce_value

# Parameters that are never property filters. Routers that add parameters extend this set.
RESERVED = {"bbox", "bbox-crs", "limit", "offset", "f", "properties", "sortby", "datetime", "updated_since",
            "crs", "filter", "filter-lang", "filter-crs", "near", "radius_m", "skipGeometry", "k", "lon", "lat",
            "layer", "layers", "max_distance_m", "by", "format", "segment", "buffer_m", "line", "token"}


def parse_bbox(text: str | None, *, lat_range: bool = True) -> tuple[float, float, float, float] | None:
    if text is None or text == "":
        return None
    try:
        parts = [float(p) for p in text.split(",")]
    except ValueError as exc:
        raise BadRequestError(f"bbox must be four numbers minlon,minlat,maxlon,maxlat; got {text!r}") from exc
    if len(parts) == 6:  # 3D bbox: drop the heights
        parts = [parts[0], parts[1], parts[3], parts[4]]
    if len(parts) != 4:
        raise BadRequestError(f"bbox must have 4 numbers (or 6 with heights), got {len(parts)}")
    x0, y0, x1, y1 = parts
    if any(v != v for v in parts):
        raise BadRequestError("bbox contains NaN")
    if x0 > x1 or y0 > y1:
        raise BadRequestError(f"bbox {text} has min > max (order: minlon,minlat,maxlon,maxlat)")
    if lat_range and (not (-180 <= x0 <= 180 and -180 <= x1 <= 180) or not (-90 <= y0 <= 90 and -90 <= y1 <= 90)):
        raise BadRequestError(f"bbox {text} is outside lon ±180 / lat ±90")
    return (x0, y0, x1, y1)


def parse_filters(layer: LayerSpec, params: Mapping[str, str], extra_reserved: Iterable[str] = ()) -> dict[str, list]:
    """Every non-reserved query parameter must be a field of the layer: ``status=破损,丢失``."""
    reserved = RESERVED | set(extra_reserved)
    filters: dict[str, list] = {}
    for name, raw in params.items():
        if name in reserved:
            continue
        spec = layer.field(name)
        if spec is None:
            raise BadRequestError(f"unknown parameter or property {name!r} for layer {layer.id}",
                                  [{"field": name, "message": "not a field of this layer"}])
        values = []
        pieces = [raw] if spec.type in ("text", "json") else [p for p in raw.split(",") if p != ""]
        for piece in pieces:
            if spec.type == "enum_list":
                v, err = (piece, None) if piece in spec.values else (None, f"{piece!r} is not one of {list(spec.values)}")
            else:
                v, err = coerce_value(spec, piece)
            if err:
                raise BadRequestError(f"bad value for {name}: {err}", [{"field": name, "message": err}])
            values.append(v)
        if values:
            filters[name] = values
    return filters


def parse_datetime(text: str | None, name: str) -> dt.datetime | None:
    if not text:
        return None
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise BadRequestError(f"{name} must be an ISO 8601 date-time, got {text!r}") from exc
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def parse_sortby(layer: LayerSpec, text: str | None) -> list[tuple[str, bool]]:
    out = []
    for item in (text or "").split(","):
        item = item.strip()
        if not item:
            continue
        desc = item.startswith("-")
        name = item.lstrip("+-")
        if name not in ("id", "updated_at", "created_at") and layer.field(name) is None:
            raise BadRequestError(f"cannot sort by {name!r}: not a field of {layer.id}")
        out.append((name, desc))
    return out


def clamp_limit(limit: int | None, default: int, maximum: int) -> int:
    """Limits above the maximum are clamped (OGC API - Features Part 1, /req/core/fc-limit-response-1)."""
    if limit is None:
        return default
    if limit < 1:
        raise BadRequestError(f"limit must be at least 1, got {limit}")
    return min(limit, maximum)
