"""The built-in layer files: all load, and each declares what the rest of the system needs."""

from __future__ import annotations

import re

from layers import COMMON_NAMES, LayerRegistry, LayerSpec

EXPECTED_IDS = {
    "manholes", "smart_covers", "pipes", "heat_stations", "toilets", "transfer_stations",
    "parking_bays", "waterlogging_points", "districts", "road_segments", "unit_grids",
    "road_corridors", "signboards",
}
CJK = re.compile(r"[\u4e00-\u9fff]")


def test_every_builtin_layer_loads(registry: LayerRegistry) -> None:
    assert set(registry.ids) == EXPECTED_IDS


def test_every_field_has_a_chinese_label(layer: LayerSpec) -> None:
    unlabelled = [f.name for f in layer.fields if not CJK.search(f.label) and f.label not in ("IMEI", "IMSI", "ICCID")]
    assert unlabelled == []
    assert CJK.search(layer.title)


def test_no_layer_redeclares_a_common_column(layer: LayerSpec) -> None:
    assert not {f.name for f in layer.fields} & COMMON_NAMES


def test_import_aliases_are_unambiguous_within_a_layer(layer: LayerSpec) -> None:
    """An alias naming two fields would make the importer guess; names count as aliases too."""
    owner: dict[str, str] = {}
    clashes = []
    for f in layer.all_fields:
        for alias in {f.name.upper(), *(a.upper() for a in f.aliases)}:
            if owner.setdefault(alias, f.name) != f.name:
                clashes.append((alias, owner[alias], f.name))
    assert clashes == []


def test_component_layers_carry_a_class_code_and_areas_do_not(layer: LayerSpec) -> None:
    if layer.id in ("pipes", "districts", "road_segments", "unit_grids", "road_corridors", "signboards"):
        assert layer.identifier is None  # not 部件 (DOMAIN.md §1.2)
    else:
        assert layer.identifier is not None


def test_colours_cover_every_value_of_the_colour_field(layer: LayerSpec) -> None:
    by = layer.field(layer.style.color_by) if layer.style.color_by else None
    if by is not None and by.type == "enum":
        assert set(layer.style.colors) == set(by.values)


def test_pipes_use_cjj61_colours(registry: LayerRegistry) -> None:
    colours = registry["pipes"].style.colors
    assert (colours["给水"], colours["排水"], colours["燃气"]) == ("#00ffff", "#4c3926", "#ff00ff")
    assert (colours["热力"], colours["电力"], colours["通信"]) == ("#ff8000", "#ff0000", "#00ff00")


def test_live_layers_are_the_telemetry_ones(registry: LayerRegistry) -> None:
    assert {layer.id for layer in registry if layer.status.live} == {"smart_covers", "waterlogging_points"}


def test_code_fields(registry: LayerRegistry) -> None:
    codes = {layer.id: layer.code_field for layer in registry if layer.code_field}
    assert codes == {"pipes": "segment_no", "districts": "admin_code",
                     "road_segments": "segment_code", "unit_grids": "grid_code",
                     "road_corridors": "segment_code"}
    assert registry["unit_grids"].field("grid_code").required


def test_tiles_carry_no_nested_values(layer: LayerSpec) -> None:
    """MVT properties are scalars; json fields are read from the feature, not the tile."""
    assert [p for p in layer.tiles.properties if layer.field(p).type == "json"] == []
