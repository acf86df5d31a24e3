"""Tile filters from query parameters: ``property=value`` (comma = any of), ``updated_since=``.

Parsing is pure and per layer; geoapi.storage.tilesql turns the result into SQL.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from layers.spec import LayerSpec

# Query parameters that are not filters: cache busters a map adds after a change notice.
IGNORED_PARAMS = frozenset({"v", "_"})
TRUE_WORDS = {"true": True, "1": True, "是": True, "yes": True, "false": False, "0": False, "否": False, "no": False}


class TileFilterError(ValueError):
    """A filter names an unknown property or gives a value its type cannot take."""


@dataclass(frozen=True)
class PropertyFilter:
    field: str
    kind: str  # the field type; "enum_list" matches when any listed value is present
    values: tuple[Any, ...]


@dataclass(frozen=True)
class LayerFilter:
    """The filters that apply to one layer; empty = every feature."""

    properties: tuple[PropertyFilter, ...] = ()
    updated_since: dt.datetime | None = None

    def __bool__(self) -> bool:
        return bool(self.properties) or self.updated_since is not None


def parse_filters(params: Mapping[str, str], layers: Sequence[LayerSpec]) -> dict[str, LayerFilter]:
    """One LayerFilter per layer id.

    In a composite a property filter applies to the layers that have that property and leaves
    the others as they are; a layer whose vocabulary lacks the value matches nothing. A
    property no requested layer has, or a value no layer accepts, is an error.
    """
    since = None
    per_layer: dict[str, list[PropertyFilter]] = {layer.id: [] for layer in layers}
    for name, raw in sorted(params.items()):
        if name in IGNORED_PARAMS:
            continue
        if name == "updated_since":
            since = _parse_datetime(raw)
            continue
        having = [layer for layer in layers if layer.field(name) is not None]
        if not having:
            ids = ", ".join(layer.id for layer in layers)
            raise TileFilterError(f"unknown filter {name!r}: not a property of {ids}")
        errors = []
        for layer in having:
            field = layer.field(name)
            try:
                values = tuple(_parse_value(layer, name, field.type, field.values, v) for v in _split(raw, name))
            except TileFilterError as exc:
                # e.g. status=破损 on the 一张图: smart_covers have no 破损, so none of them match
                errors.append(exc)
                values = ()
            per_layer[layer.id].append(PropertyFilter(name, field.type, values))
        if len(errors) == len(having):
            raise errors[0]
    return {lid: LayerFilter(tuple(fs), since) for lid, fs in per_layer.items()}


def cache_token(filters: Mapping[str, LayerFilter]) -> str:
    """A stable text for the cache key: equal filters give equal tokens."""
    parts = []
    for lid in sorted(filters):
        f = filters[lid]
        if not f:
            continue
        props = ";".join(f"{p.field}={','.join(map(str, p.values))}" for p in f.properties)
        since = f.updated_since.isoformat() if f.updated_since else ""
        parts.append(f"{lid}[{props}|{since}]")
    return "&".join(parts)


def _split(raw: str, name: str) -> list[str]:
    values = [v.strip() for v in raw.split(",") if v.strip()]
    if not values:
        raise TileFilterError(f"filter {name!r} has no value")
    return values


def _parse_value(layer: LayerSpec, name: str, kind: str, allowed: tuple[str, ...], raw: str) -> Any:
    try:
        if kind in ("enum", "enum_list"):
            if raw not in allowed:
                raise ValueError(f"must be one of {', '.join(allowed)}")
            return raw
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        if kind == "bool":
            if raw.lower() not in TRUE_WORDS:
                raise ValueError("must be true or false")
            return TRUE_WORDS[raw.lower()]
        if kind == "date":
            return dt.date.fromisoformat(raw)
        if kind == "datetime":
            return _parse_datetime(raw)
        if kind == "json":
            raise ValueError("JSON properties cannot be filtered on tiles")
        return raw
    except ValueError as exc:
        raise TileFilterError(f"filter {name}={raw!r} on layer {layer.id}: {exc}") from None


def _parse_datetime(raw: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise TileFilterError(f"updated_since={raw!r} is not an ISO date or date-time") from None
    # A naive time is Beijing time, the time every user of this registry means.
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone(dt.timedelta(hours=8)))
