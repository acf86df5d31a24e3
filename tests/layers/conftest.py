"""Fixtures for the layer-file tests: the built-in registry, every layer, valid sample values."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from layers import FieldSpec, LayerRegistry, LayerSpec, load_registry

BUILTIN = load_registry()


def sample_value(spec: FieldSpec) -> Any:
    """A value the field accepts, chosen from its own declaration."""
    if spec.type == "enum":
        return spec.values[0]
    if spec.type == "enum_list":
        return [spec.values[0]]
    if spec.type in ("int", "float"):
        lo = spec.min if spec.min is not None else 0
        hi = spec.max if spec.max is not None else lo + 10
        mid = (lo + hi) / 2
        return int(mid) if spec.type == "int" else mid
    if spec.type == "bool":
        return True
    if spec.type == "date":
        return "2023-05-01"
    if spec.type == "datetime":
        return "2023-05-01T08:30:00+08:00"
    if spec.type == "json":
        return {"k": "v"}
    if spec.name == "admin_code":
        return "410802"
    return "样例"[: spec.max_length or 2]


@pytest.fixture(scope="session")
def registry() -> LayerRegistry:
    return BUILTIN


@pytest.fixture(params=BUILTIN.ids)
def layer(request: pytest.FixtureRequest) -> LayerSpec:
    """Every built-in layer in turn."""
    return BUILTIN[request.param]


@pytest.fixture(scope="session")
def sample() -> Callable[[FieldSpec], Any]:
    return sample_value


@pytest.fixture(scope="session")
def minimal_props() -> Callable[[LayerSpec], dict[str, Any]]:
    """Only the required fields of a layer, each with a valid value."""
    return lambda layer: {f.name: sample_value(f) for f in layer.all_fields if f.required}


@pytest.fixture(scope="session")
def jiaozuo_bounds() -> tuple[float, float, float, float]:
    """焦作 city bounds (lon/lat, EPSG:4490) used by the geometry checks."""
    return (112.5, 34.75, 113.75, 35.55)
