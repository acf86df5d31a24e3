"""Load and validate the layer files: the built-in ones in layers/defs/ plus a site directory."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from pathlib import Path

from pydantic import ValidationError

from layers.spec import LayerSpec

BUILTIN_DIR = Path(__file__).with_name("defs")


class LayerFileError(ValueError):
    """A layer file is unreadable or invalid; the message names the file and the field."""

    def __init__(self, path: Path, problems: list[str]):
        self.path = path
        self.problems = problems
        super().__init__(f"invalid layer file {path}: " + "; ".join(problems))


def read_layer_file(path: Path) -> LayerSpec:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise LayerFileError(path, [f"cannot read TOML: {exc}"]) from exc
    data["source"] = str(path)
    try:
        return LayerSpec.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = _describe_loc(data, err["loc"])
            problems.append(f"{loc}: {err['msg']}" if loc else err["msg"])
        raise LayerFileError(path, problems) from exc


def _describe_loc(data: dict, loc: tuple) -> str:
    """Turn ('fields', 3, 'type') into 'fields[3] (well_use).type' so a person finds it."""
    parts: list[str] = []
    node = data
    for item in loc:
        if isinstance(item, int):
            name = node[item].get("name") if isinstance(node, list) and item < len(node) and isinstance(node[item], dict) else None
            parts[-1] += f"[{item}]" + (f" ({name})" if name else "")
            node = node[item] if isinstance(node, list) and item < len(node) else {}
        else:
            parts.append(str(item))
            node = node.get(item, {}) if isinstance(node, dict) else {}
    return ".".join(parts)


class LayerRegistry:
    """All layers known to this deployment, by id, in a stable order."""

    def __init__(self, layers: list[LayerSpec]):
        self._layers = {layer.id: layer for layer in layers}

    def __iter__(self) -> Iterator[LayerSpec]:
        return iter(self._layers.values())

    def __len__(self) -> int:
        return len(self._layers)

    def __contains__(self, layer_id: object) -> bool:
        return layer_id in self._layers

    def get(self, layer_id: str) -> LayerSpec | None:
        return self._layers.get(layer_id)

    def __getitem__(self, layer_id: str) -> LayerSpec:
        return self._layers[layer_id]

    @property
    def ids(self) -> list[str]:
        return list(self._layers)


def load_registry(site_dir: Path | None = None, builtin_dir: Path = BUILTIN_DIR) -> LayerRegistry:
    """Read every ``*.toml`` of the built-in directory, then of ``site_dir``.

    A site file whose id equals a built-in layer's replaces it (a city may reword labels or
    add enum values); any other id adds a layer. Invalid files raise LayerFileError.
    """
    layers: dict[str, LayerSpec] = {}
    dirs = [builtin_dir] + ([site_dir] if site_dir else [])
    for d in dirs:
        if not d.is_dir():
            raise LayerFileError(d, ["layers directory does not exist"])
        seen_here: dict[str, str | None] = {}
        for path in sorted(d.glob("*.toml")):
            spec = read_layer_file(path)
            # Two files of one directory with the same id is a mistake, not an override.
            if spec.id in seen_here:
                raise LayerFileError(path, [f"id: {spec.id!r} is already declared by {seen_here[spec.id]}"])
            seen_here[spec.id] = spec.source
            layers[spec.id] = spec
    return LayerRegistry(list(layers.values()))
