"""validate_properties / coerce_value against every built-in layer's own declarations."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

from layers import FieldSpec, LayerRegistry, LayerSpec
from layers.validate import coerce_value, validate_properties

Props = Callable[[LayerSpec], dict[str, Any]]


def _problem_fields(problems: list) -> set[str]:
    return {p.field for p in problems}


def test_minimal_record_is_accepted(layer: LayerSpec, minimal_props: Props) -> None:
    clean, problems = validate_properties(layer, minimal_props(layer))
    assert problems == []
    assert clean["status"] == layer.status.default


def test_required_fields_reject_absence(layer: LayerSpec, minimal_props: Props) -> None:
    required = [f.name for f in layer.all_fields if f.required]
    if not required:
        pytest.skip(f"{layer.id} has no required fields")
    for name in required:
        props = minimal_props(layer)
        del props[name]
        _, problems = validate_properties(layer, props)
        assert _problem_fields(problems) == {name}, name


def test_required_fields_reject_blank_text(layer: LayerSpec, minimal_props: Props) -> None:
    text_required = [f.name for f in layer.all_fields if f.required and f.type == "text"]
    if not text_required:
        pytest.skip(f"{layer.id} has no required text fields")
    for name in text_required:
        _, problems = validate_properties(layer, {**minimal_props(layer), name: "  "})
        assert _problem_fields(problems) == {name}


def test_enums_reject_unknown_values(layer: LayerSpec, minimal_props: Props) -> None:
    enums = [f for f in layer.all_fields if f.type in ("enum", "enum_list")]
    assert enums, "every layer has at least the status enum"
    for f in enums:
        bad = "不存在的值" if f.type == "enum" else [f.values[0], "不存在的值"]
        _, problems = validate_properties(layer, {**minimal_props(layer), f.name: bad})
        assert _problem_fields(problems) == {f.name}, f.name


def test_ranges_reject_out_of_range(layer: LayerSpec, minimal_props: Props) -> None:
    ranged = [f for f in layer.all_fields if f.min is not None or f.max is not None]
    if not ranged:
        pytest.skip(f"{layer.id} has no ranged fields")
    for f in ranged:
        for bad in ([f.min - 1] if f.min is not None else []) + ([f.max + 1] if f.max is not None else []):
            _, problems = validate_properties(layer, {**minimal_props(layer), f.name: bad})
            assert _problem_fields(problems) == {f.name}, (f.name, bad)


def test_every_field_accepts_its_sample(layer: LayerSpec, minimal_props: Props,
                                        sample: Callable[[FieldSpec], Any]) -> None:
    props = {f.name: sample(f) for f in layer.all_fields}
    _, problems = validate_properties(layer, props)
    assert problems == []


def test_unknown_property_is_reported(layer: LayerSpec, minimal_props: Props) -> None:
    _, problems = validate_properties(layer, {**minimal_props(layer), "no_such_field": 1})
    assert _problem_fields(problems) == {"no_such_field"}


def test_system_columns_are_ignored(layer: LayerSpec, minimal_props: Props) -> None:
    clean, problems = validate_properties(layer, {**minimal_props(layer), "id": 7, "version": 3})
    assert problems == [] and "id" not in clean and "version" not in clean


def test_bad_value_is_not_replaced_by_the_default(registry: LayerRegistry, minimal_props: Props) -> None:
    """A field with a default that fails validation must report the error, not take the default."""
    layer = registry["smart_covers"]
    clean, problems = validate_properties(layer, {**minimal_props(layer), "heartbeat_s": "abc", "status": "飞走"})
    assert _problem_fields(problems) == {"heartbeat_s", "status"}
    assert "heartbeat_s" not in clean and "status" not in clean


def test_defaults_fill_absent_fields(registry: LayerRegistry, minimal_props: Props) -> None:
    wl = registry["waterlogging_points"]
    clean, _ = validate_properties(wl, minimal_props(wl))
    assert (clean["warn_depth_cm"], clean["close_depth_cm"], clean["status"]) == (15, 25, "正常")
    road = registry["road_segments"]
    clean, _ = validate_properties(road, minimal_props(road))
    assert (clean["supervise_phone"], clean["frontage_m"]) == ("12319", 30)
    toilets = registry["toilets"]
    assert validate_properties(toilets, {})[0]["service_radius_m"] == 300


def test_partial_update_skips_defaults_and_required(registry: LayerRegistry) -> None:
    clean, problems = validate_properties(registry["manholes"], {"cover_no": "JZ-1"}, partial=True)
    assert problems == [] and clean == {"cover_no": "JZ-1"}


def test_partial_update_cannot_clear_a_required_field(registry: LayerRegistry) -> None:
    _, problems = validate_properties(registry["manholes"], {"well_use": None}, partial=True)
    assert _problem_fields(problems) == {"well_use"}


@pytest.mark.parametrize(("raw", "expected"), [
    ("2021-05-01", dt.date(2021, 5, 1)), ("2021/5/1", dt.date(2021, 5, 1)), ("2021.05.01", dt.date(2021, 5, 1)),
    ("20210501", dt.date(2021, 5, 1)), ("2021年5月1日", dt.date(2021, 5, 1)), ("2021-05-01 10:00:00", dt.date(2021, 5, 1)),
    (dt.datetime(2021, 5, 1, 9), dt.date(2021, 5, 1)),
])
def test_survey_date_formats(raw: Any, expected: dt.date) -> None:
    assert coerce_value(FieldSpec(name="d", label="日期", type="date"), raw) == (expected, None)


@pytest.mark.parametrize("raw", ["2021-13-01", "去年", "2021-5"])
def test_bad_dates_are_rejected(raw: str) -> None:
    value, err = coerce_value(FieldSpec(name="d", label="日期", type="date"), raw)
    assert value is None and err


@pytest.mark.parametrize(("raw", "expected"), [(1.0, True), (0, False), ("是", True), ("F", False)])
def test_bool_forms(raw: Any, expected: bool) -> None:
    assert coerce_value(FieldSpec(name="b", label="是否", type="bool"), raw) == (expected, None)


def test_big_integers_survive() -> None:
    big = 2**53 + 1
    assert coerce_value(FieldSpec(name="n", label="数", type="int"), big) == (big, None)


def test_nan_int_is_empty() -> None:
    assert coerce_value(FieldSpec(name="n", label="数", type="int"), float("nan")) == (None, None)


def test_enum_list_accepts_chinese_separators(registry: LayerRegistry) -> None:
    spec = registry["smart_covers"].field("sensors")
    assert coerce_value(spec, "倾角、水位(浮球)，温度") == (["倾角", "水位(浮球)", "温度"], None)
