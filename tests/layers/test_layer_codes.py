"""部件标识码 (GB/T 30428.2): 6 admin + 2 大类 + 2 小类 + 6 serial."""

from __future__ import annotations

import pytest

from layers import LayerRegistry
from layers.codes import check_code, code_prefix, format_code

# 410802 = 焦作市解放区 (GB/T 2260)
ADMIN = "410802"


@pytest.mark.parametrize(("layer_id", "props", "prefix"), [
    ("manholes", {"well_use": "雨水"}, "4108020103"),
    ("manholes", {"well_use": "中水"}, "4108020127"),
    ("manholes", {"well_use": "合流"}, "4108020102"),
    ("toilets", {}, "4108020301"),
    ("heat_stations", {}, "4108020701"),
    ("transfer_stations", {}, "4108020702"),
    ("parking_bays", {}, "4108020703"),
    ("waterlogging_points", {}, "4108020704"),
    ("smart_covers", {}, "4108020705"),
])
def test_prefix_from_admin_and_subclass(registry: LayerRegistry, layer_id: str, props: dict, prefix: str) -> None:
    assert code_prefix(registry[layer_id], ADMIN, props) == prefix


def test_format_code_pads_the_serial() -> None:
    assert format_code("4108020103", 42) == "4108020103000042"


@pytest.mark.parametrize("serial", [0, 1_000_000])
def test_format_code_refuses_serials_outside_the_range(serial: int) -> None:
    with pytest.raises(ValueError):
        format_code("4108020103", serial)


@pytest.mark.parametrize("admin", ["4108", "41080a", ""])
def test_prefix_needs_a_six_digit_admin_code(registry: LayerRegistry, admin: str) -> None:
    with pytest.raises(ValueError, match="6 digits"):
        code_prefix(registry["toilets"], admin, {})


def test_format_code_refuses_a_short_prefix() -> None:
    with pytest.raises(ValueError, match="10 digits"):
        format_code("41080201", 1)


def test_layers_without_identifier_have_no_prefix(registry: LayerRegistry) -> None:
    with pytest.raises(ValueError, match="no 部件标识码"):
        code_prefix(registry["pipes"], ADMIN, {})


@pytest.mark.parametrize(("layer_id", "code", "props"), [
    ("manholes", "4108020103000001", {"well_use": "雨水"}),
    ("manholes", "4108020110999999", {"well_use": "热力"}),
    ("manholes", "4108020101000001", {}),  # use unknown: any 小类 the layer produces
    ("toilets", "4108020301000123", {"admin_code": ADMIN}),
    ("smart_covers", "4108020705000001", {}),
])
def test_check_code_accepts_good_codes(registry: LayerRegistry, layer_id: str, code: str, props: dict) -> None:
    assert check_code(registry[layer_id], code, props) is None


@pytest.mark.parametrize(("layer_id", "code", "props", "reason"), [
    ("manholes", "410802010300001", {"well_use": "雨水"}, "16 digits"),
    ("manholes", "41080201030000011", {"well_use": "雨水"}, "16 digits"),
    ("manholes", "41080201030000x1", {"well_use": "雨水"}, "16 digits"),
    ("manholes", "4108020303000001", {"well_use": "雨水"}, "大类"),
    ("toilets", "4108020101000001", {}, "大类"),
    ("manholes", "4108020102000001", {"well_use": "雨水"}, "小类"),
    ("manholes", "4108020199000001", {}, "小类"),
    ("toilets", "4108020302000001", {}, "小类"),
    ("manholes", "4108020103000000", {"well_use": "雨水"}, "serial"),
    ("toilets", "4108030301000001", {"admin_code": ADMIN}, "admin_code"),
])
def test_check_code_rejects(registry: LayerRegistry, layer_id: str, code: str, props: dict, reason: str) -> None:
    problem = check_code(registry[layer_id], code, props)
    assert problem is not None and reason in problem
