"""The asset-type registry: one declarative TOML file per layer (see docs/layers.md)."""

from layers.registry import LayerFileError, LayerRegistry, load_registry, read_layer_file
from layers.spec import COMMON_NAMES, SYSTEM_COLUMNS, FieldSpec, LayerSpec

__all__ = [
    "COMMON_NAMES", "SYSTEM_COLUMNS", "FieldSpec", "LayerFileError", "LayerRegistry", "LayerSpec",
    "load_registry", "read_layer_file",
]
