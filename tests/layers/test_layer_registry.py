"""Loading layer files: bad files stop loading with a message naming file and field; site dirs."""

from __future__ import annotations

from pathlib import Path

import pytest

from layers import LayerFileError, load_registry, read_layer_file
from layers.registry import BUILTIN_DIR
from layers.validate import validate_properties

GOOD = """
id = "litter_bins"
title = "果皮箱"
title_en = "Litter bins"
geometry = "Point"

[identifier]
class_code = "03"
subclass = "0305"

[[fields]]
name = "capacity_l"
label = "容量"
type = "int"
min = 1
max = 2000

[[fields]]
name = "bin_type"
label = "类型"
type = "enum"
values = ["单桶", "双桶", "分类"]

[[fields]]
name = "well_use"
label = "用途"
type = "{well_use_type}"
"""


def _write(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def test_bad_field_type_names_the_file_and_the_field(tmp_path: Path) -> None:
    path = _write(tmp_path, "litter_bins.toml", GOOD.replace("{well_use_type}", "colour"))
    with pytest.raises(LayerFileError) as exc:
        read_layer_file(path)
    message = str(exc.value)
    assert str(path) in message
    assert "fields[2] (well_use).type" in message


def test_bad_file_in_site_dir_stops_loading(tmp_path: Path) -> None:
    _write(tmp_path, "a.toml", GOOD.replace("{well_use_type}", "text").replace('max = 2000', 'max = "lots"'))
    with pytest.raises(LayerFileError) as exc:
        load_registry(tmp_path)
    assert "a.toml" in str(exc.value) and "fields[0] (capacity_l).max" in str(exc.value)


@pytest.mark.parametrize(("change", "expect"), [
    (('name = "bin_type"', 'name = "status"'), "common columns"),
    (('values = ["单桶", "双桶", "分类"]', "values = []"), "bin_type"),
    (('subclass = "0305"', 'subclass = "0405"'), "大类 03"),
    (('geometry = "Point"', 'geometry = "Circle"'), "geometry"),
    (('title = "果皮箱"', 'title = "果皮箱"\nshape = "round"'), "shape"),
    (('min = 1', 'min = 5000'), "min 5000"),
])
def test_invalid_declarations_are_refused(tmp_path: Path, change: tuple[str, str], expect: str) -> None:
    text = GOOD.replace("{well_use_type}", "text").replace(*change)
    with pytest.raises(LayerFileError, match=expect):
        read_layer_file(_write(tmp_path, "x.toml", text))


def test_unparsable_toml_is_reported(tmp_path: Path) -> None:
    with pytest.raises(LayerFileError, match="cannot read TOML"):
        read_layer_file(_write(tmp_path, "broken.toml", "id = \n"))


def test_colour_key_typo_is_refused(tmp_path: Path) -> None:
    text = GOOD.replace("{well_use_type}", "text") + '\n[style]\ncolors = { "完hao" = "#ff0000" }\n'
    with pytest.raises(LayerFileError, match="完hao"):
        read_layer_file(_write(tmp_path, "x.toml", text))


def test_site_dir_adds_a_layer(tmp_path: Path) -> None:
    _write(tmp_path, "litter_bins.toml", GOOD.replace("{well_use_type}", "text"))
    registry = load_registry(tmp_path)
    assert "litter_bins" in registry and "manholes" in registry
    assert len(registry) == len(load_registry()) + 1
    _, problems = validate_properties(registry["litter_bins"], {"capacity_l": 5000})
    assert [p.field for p in problems] == ["capacity_l"]


def test_site_file_with_a_builtin_id_replaces_it(tmp_path: Path) -> None:
    text = (BUILTIN_DIR / "toilets.toml").read_text(encoding="utf-8")
    text = text.replace('title = "公厕"', 'title = "公共厕所"').replace('"独立式", "附属式", "活动式"',
                                                                  '"独立式", "附属式", "活动式", "移动式"')
    site = _write(tmp_path, "my_toilets.toml", text)
    layer = load_registry(tmp_path)["toilets"]
    assert layer.title == "公共厕所"
    assert layer.source == str(site)
    assert "移动式" in layer.field("toilet_type").values


def test_two_files_with_one_id_in_the_same_dir_are_refused(tmp_path: Path) -> None:
    text = GOOD.replace("{well_use_type}", "text")
    _write(tmp_path, "a.toml", text)
    _write(tmp_path, "b.toml", text)
    with pytest.raises(LayerFileError, match="already declared"):
        load_registry(tmp_path)


def test_missing_site_dir_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(LayerFileError, match="does not exist"):
        load_registry(tmp_path / "nope")
