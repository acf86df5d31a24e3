"""The layer-file format: one declarative TOML file per asset type.

A layer file says what a layer *is* (id, titles, geometry), which attributes it carries
(fields with 中文 labels, types, enums, ranges, import aliases), how its 部件标识码 is formed
(GB/T 30428.2 class/subclass codes), and how it shows on the map (tile options, colours).
Tables, API models, tiles, styles and import mapping are all derived from it.

See docs/layers.md for the format with a worked example.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

FieldType = Literal["text", "int", "float", "bool", "date", "datetime", "enum", "enum_list", "json"]
GeometryType = Literal["Point", "LineString", "Polygon", "MultiPoint", "MultiLineString", "MultiPolygon"]

IDENT = r"^[a-z][a-z0-9_]*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FieldSpec(_Strict):
    """One attribute of a layer."""

    name: Annotated[str, Field(pattern=IDENT, max_length=40)]
    label: str = Field(description="中文 label shown in the UI, exports and reports")
    type: FieldType = "text"
    values: tuple[str, ...] = ()
    required: bool = False
    min: float | None = None
    max: float | None = None
    max_length: int | None = None
    unit: str | None = None
    default: Any = None
    aliases: tuple[str, ...] = Field(default=(), description="import names (DBF, pinyin initials, 中文)")
    description: str | None = None

    @model_validator(mode="after")
    def _check(self) -> FieldSpec:
        if self.type in ("enum", "enum_list") and not self.values:
            raise ValueError(f"field {self.name!r}: type {self.type} needs 'values'")
        if self.values and self.type not in ("enum", "enum_list"):
            raise ValueError(f"field {self.name!r}: 'values' only applies to enum and enum_list")
        if (self.min is not None or self.max is not None) and self.type not in ("int", "float"):
            raise ValueError(f"field {self.name!r}: min/max only apply to int and float")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"field {self.name!r}: min {self.min} > max {self.max}")
        if len(set(self.values)) != len(self.values):
            raise ValueError(f"field {self.name!r}: duplicate entries in 'values'")
        if self.max_length is not None and self.type != "text":
            raise ValueError(f"field {self.name!r}: max_length only applies to text")
        self._check_default()
        return self

    def _check_default(self) -> None:
        d = self.default
        if d is None:
            return
        if self.type == "enum" and d not in self.values:
            raise ValueError(f"field {self.name!r}: default {d!r} is not one of its values")
        if self.type == "enum_list" and not (isinstance(d, list | tuple) and set(d) <= set(self.values)):
            raise ValueError(f"field {self.name!r}: default {d!r} must be a list of its values")
        if self.type in ("int", "float"):
            if isinstance(d, bool) or not isinstance(d, int | float) or (self.type == "int" and d != int(d)):
                raise ValueError(f"field {self.name!r}: default {d!r} is not a {self.type}")
            if (self.min is not None and d < self.min) or (self.max is not None and d > self.max):
                raise ValueError(f"field {self.name!r}: default {d} is outside {self.min}–{self.max}")
        if self.type == "bool" and not isinstance(d, bool):
            raise ValueError(f"field {self.name!r}: default {d!r} is not true/false")


class IdentifierSpec(_Strict):
    """How the 16-digit 部件标识码 is formed: admin(6) + 大类(2) + 小类(2) + serial(6)."""

    class_code: Annotated[str, Field(pattern=r"^\d{2}$")]
    subclass: Annotated[str | None, Field(pattern=r"^\d{4}$")] = None
    subclass_field: str | None = None
    subclass_map: dict[str, Annotated[str, Field(pattern=r"^\d{4}$")]] = {}

    @model_validator(mode="after")
    def _check(self) -> IdentifierSpec:
        if not self.subclass and not (self.subclass_field and self.subclass_map):
            raise ValueError("identifier needs 'subclass', or 'subclass_field' with 'subclass_map'")
        codes = [self.subclass] if self.subclass else list(self.subclass_map.values())
        for c in codes:
            if c and not c.startswith(self.class_code):
                raise ValueError(f"小类 {c} does not belong to 大类 {self.class_code}")
        return self

    def subclass_for(self, props: dict[str, Any]) -> str:
        if self.subclass_field:
            value = props.get(self.subclass_field)
            if value in self.subclass_map:
                return self.subclass_map[value]
        if self.subclass:
            return self.subclass
        return next(iter(self.subclass_map.values()))


class StatusSpec(_Strict):
    """The layer's coarse state (the `status` common column) and its vocabulary."""

    label: str = "状态"
    values: tuple[str, ...] = ("完好", "破损", "丢失", "占用")
    default: str | None = "完好"
    aliases: tuple[str, ...] = ("OBJSTATE", "ZT", "状态")
    live: bool = Field(default=False, description="status changes often (telemetry): short tile caching")

    @model_validator(mode="after")
    def _check(self) -> StatusSpec:
        # An empty vocabulary would only fail later, when the status column is derived.
        if not self.values or len(set(self.values)) != len(self.values):
            raise ValueError("status.values must list at least one value, without duplicates")
        if self.default is not None and self.default not in self.values:
            raise ValueError(f"status default {self.default!r} is not one of {list(self.values)}")
        return self


class TileSpec(_Strict):
    minzoom: Annotated[int, Field(ge=0, le=22)] = 0
    maxzoom: Annotated[int, Field(ge=0, le=22)] = 22
    aggregate_below: Annotated[int | None, Field(ge=0, le=22)] = Field(
        default=None, description="zooms below this get grid-cell counts instead of every feature"
    )
    properties: tuple[str, ...] = ("status",)

    @model_validator(mode="after")
    def _check(self) -> TileSpec:
        if self.minzoom > self.maxzoom:
            raise ValueError(f"tiles.minzoom {self.minzoom} > tiles.maxzoom {self.maxzoom}")
        return self


class StyleSpec(_Strict):
    color_by: str | None = "status"
    colors: dict[str, str] = {}
    default_color: Annotated[str, Field(pattern=r"^#[0-9a-fA-F]{6}$")] = "#1565c0"
    outline_color: Annotated[str | None, Field(pattern=r"^#[0-9a-fA-F]{6}$")] = None
    width: float = 2.0
    radius: float = 4.0
    opacity: float = 0.6
    label_field: str | None = None
    legend_group: str = "资产"

    @field_validator("colors")
    @classmethod
    def _hex(cls, v: dict[str, str]) -> dict[str, str]:
        for key, colour in v.items():
            if not re.fullmatch(r"#[0-9a-fA-F]{6}", colour):
                raise ValueError(f"colour for {key!r} must be #rrggbb, got {colour!r}")
        return v


class LayerSpec(_Strict):
    """A whole layer file."""

    id: Annotated[str, Field(pattern=IDENT, max_length=40)]
    title: str = Field(description="中文 title")
    title_en: str
    description: str | None = None
    geometry: GeometryType
    has_z: bool = False
    kind: Literal["asset", "area", "network"] = "asset"
    identifier: IdentifierSpec | None = None
    status: StatusSpec = StatusSpec()
    fields: tuple[FieldSpec, ...] = ()
    tiles: TileSpec = TileSpec()
    style: StyleSpec = StyleSpec()
    code_field: str | None = Field(
        default=None, description="the layer's own business key used for upserts, e.g. grid_code"
    )
    required_common: tuple[str, ...] = Field(
        default=(), description="common columns this layer requires, e.g. grid_code for unit grids"
    )
    source: str | None = Field(default=None, description="the file it was read from (set by the loader)")

    @model_validator(mode="after")
    def _check(self) -> LayerSpec:
        names = [f.name for f in self.fields]
        dupes = {n for n in names if names.count(n) > 1}
        if dupes:
            raise ValueError(f"duplicate field names: {sorted(dupes)}")
        clash = set(names) & COMMON_NAMES
        if clash:
            raise ValueError(f"fields {sorted(clash)} are common columns; do not redeclare them")
        known = set(names) | COMMON_NAMES
        for p in self.tiles.properties:
            if p not in known:
                raise ValueError(f"tiles.properties names unknown field {p!r}")
        if self.style.color_by and self.style.color_by not in known:
            raise ValueError(f"style.color_by names unknown field {self.style.color_by!r}")
        if self.style.label_field and self.style.label_field not in known:
            raise ValueError(f"style.label_field names unknown field {self.style.label_field!r}")
        unknown_common = set(self.required_common) - COMMON_NAMES
        if unknown_common:
            raise ValueError(f"required_common names non-common fields {sorted(unknown_common)}")
        if self.identifier and self.identifier.subclass_field:
            f = next((f for f in self.fields if f.name == self.identifier.subclass_field), None)
            if f is None:
                raise ValueError(f"identifier.subclass_field names unknown field {self.identifier.subclass_field!r}")
            missing = set(self.identifier.subclass_map) - set(f.values)
            if missing:
                raise ValueError(f"identifier.subclass_map keys {sorted(missing)} are not values of {f.name!r}")
        if self.code_field and self.code_field not in known:
            raise ValueError(f"code_field names unknown field {self.code_field!r}")
        self._check_colour_keys()
        return self

    def _check_colour_keys(self) -> None:
        """A colour keyed by a value the colour field can never take is a typo."""
        by = self.style.color_by
        f = next((f for f in self.all_fields if f.name == by), None) if by else None
        if f is None or f.type not in ("enum", "enum_list"):
            return
        stray = set(self.style.colors) - set(f.values)
        if stray:
            raise ValueError(f"style.colors keys {sorted(stray)} are not values of {by!r}")

    # -- derived views -------------------------------------------------------------------
    @property
    def all_fields(self) -> tuple[FieldSpec, ...]:
        """Common columns (with this layer's status vocabulary) followed by the layer's own."""
        common = common_fields(self.status)
        if self.required_common:
            common = tuple(f.model_copy(update={"required": True}) if f.name in self.required_common else f
                           for f in common)
        return (*common, *self.fields)

    def field(self, name: str) -> FieldSpec | None:
        return next((f for f in self.all_fields if f.name == name), None)

    @property
    def is_point(self) -> bool:
        return self.geometry in ("Point", "MultiPoint")

    @property
    def is_line(self) -> bool:
        return self.geometry in ("LineString", "MultiLineString")

    @property
    def is_polygon(self) -> bool:
        return self.geometry in ("Polygon", "MultiPolygon")


# Common columns of every layer table (DOMAIN.md §9.0). `status` takes its vocabulary from
# the layer's [status] table. System columns (id, version, timestamps, provenance) are not
# fields: clients cannot set them.
_COMMON: tuple[FieldSpec, ...] = (
    FieldSpec(name="obj_code", label="部件标识码", max_length=16, aliases=("OBJCODE", "BSM", "部件标识码", "标识码")),
    FieldSpec(name="name", label="名称", max_length=200, aliases=("NAME", "MC", "OBJNAME", "名称")),
    FieldSpec(name="admin_code", label="行政区划代码", max_length=6, aliases=("XZQDM", "ADCODE", "行政区划代码", "区划代码")),
    FieldSpec(name="street_code", label="街道(乡镇)代码", max_length=9, aliases=("JDDM", "街道代码")),
    FieldSpec(name="grid_code", label="所在单元网格", max_length=15, aliases=("BGCODE", "WGBM", "单元网格")),
    FieldSpec(name="road_segment", label="所在路段", max_length=40, aliases=("LDBM", "路段编号")),
    FieldSpec(name="road_name", label="所在道路", max_length=100, aliases=("SZDL", "ROADNAME", "所在道路", "道路名称")),
    FieldSpec(name="address", label="位置描述", max_length=300, aliases=("LOCATEDSC", "ADDRESS", "WZMS", "位置描述", "地址")),
    FieldSpec(name="dept_name", label="主管部门", max_length=200, aliases=("DEPTNAME1", "ZGBM", "主管部门")),
    FieldSpec(name="owner_name", label="权属单位", max_length=200, aliases=("DEPTNAME2", "QSDW", "权属单位", "产权单位")),
    FieldSpec(name="maintainer_name", label="养护单位", max_length=200, aliases=("DEPTNAME3", "YHDW", "养护单位", "管理单位")),
    FieldSpec(name="currency", label="现势性", type="enum", values=("在用", "作废"), aliases=("OBJUPTODAT", "现势性")),
    FieldSpec(name="data_source", label="数据来源", type="enum", values=("实测", "地形图", "调绘", "竣工图", "其它"),
              aliases=("DATASOURCE", "SJLY", "数据来源")),
    FieldSpec(name="or_date", label="初始时间", type="date", aliases=("ORDATE", "初始时间")),
    FieldSpec(name="ch_date", label="变更时间", type="date", aliases=("CHDATE", "变更时间")),
    FieldSpec(name="photos", label="照片", type="json", aliases=("PICTURE", "照片")),
    FieldSpec(name="note", label="备注", max_length=1000, aliases=("NOTE_", "NOTE", "BZ", "备注")),
)


def common_fields(status: StatusSpec) -> tuple[FieldSpec, ...]:
    status_field = FieldSpec(
        name="status", label=status.label, type="enum", values=status.values,
        default=status.default, aliases=status.aliases,
    )
    return (_COMMON[0], _COMMON[1], status_field, *_COMMON[2:])


COMMON_NAMES = frozenset({f.name for f in _COMMON} | {"status"})

# Columns the system maintains; never accepted from clients, always returned.
SYSTEM_COLUMNS = ("id", "version", "created_at", "created_by", "updated_at", "updated_by",
                  "src_file", "src_crs", "batch_id", "extra")
