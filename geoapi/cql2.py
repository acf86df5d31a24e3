"""CQL2 filters (OGC API - Features Part 3) → SQLAlchemy conditions on a layer's table.

Parsing is done by the ``cql2`` package (developmentseed's cql2-rs, a maintained Rust parser
with Python bindings; it turns cql2-text or cql2-json into cql2-json). This module compiles
that JSON tree into SQLAlchemy expressions built from the table's own columns with bound
parameters: no user text ever becomes SQL text. Property names are checked against the layer,
literals are converted to the property's type.

Supported: ``= <> < > <= >=``, ``LIKE``, ``IN``, ``BETWEEN``, ``IS NULL``, ``AND OR NOT``,
``S_INTERSECTS(geom, <geometry>|BBOX(..))`` and ``S_DWITHIN(geom, POINT(..), d, meters)``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cql2
import shapely
import sqlalchemy as sa
from shapely.geometry import box, shape
from shapely.geometry.base import BaseGeometry

from geoapi import crs as crsmod
from geoapi.errors import BadRequestError
from geoapi.storage import spatial
from layers import LayerSpec
from layers.spec import FieldSpec

GEOMETRY_NAMES = ("geom", "geometry")
SYSTEM_COLUMNS = {"id": "int", "updated_at": "datetime", "created_at": "datetime", "version": "int"}
_UNITS = {"m": 1.0, "meter": 1.0, "meters": 1.0, "metre": 1.0, "metres": 1.0, "km": 1000.0,
          "kilometer": 1000.0, "kilometers": 1000.0, "kilometre": 1000.0, "kilometres": 1000.0}
_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "=": lambda a, b: a == b, "<>": lambda a, b: a != b, "<": lambda a, b: a < b,
    ">": lambda a, b: a > b, "<=": lambda a, b: a <= b, ">=": lambda a, b: a >= b,
}
_FLIP = {"=": "=", "<>": "<>", "<": ">", ">": "<", "<=": ">=", ">=": "<="}
MAX_NODES = 500


class FilterError(BadRequestError):
    """A filter that cannot be parsed or does not fit the layer (400 bad_request)."""


@dataclass
class Compiler:
    layer: LayerSpec
    table: sa.Table
    dialect: str
    filter_crs: crsmod.Crs = crsmod.CRS84
    nodes: int = 0

    # -- entry ----------------------------------------------------------------------------
    def compile(self, node: Any):
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise FilterError(f"the filter is too large (more than {MAX_NODES} terms)")
        if isinstance(node, bool):
            return sa.true() if node else sa.false()
        if not isinstance(node, dict) or "op" not in node:
            raise FilterError(f"expected a predicate, got {_show(node)}")
        op = str(node["op"]).lower()
        args = node.get("args") or []
        if op in ("and", "or"):
            parts = [self.compile(a) for a in args]
            return sa.and_(*parts) if op == "and" else sa.or_(*parts)
        if op == "not":
            return sa.not_(self.compile(_one(args, op)))
        if op in _COMPARE:
            return self._compare(op, args)
        if op == "like":
            return self._like(args)
        if op == "in":
            return self._in(args)
        if op == "between":
            return self._between(args)
        if op == "isnull":
            return self._column(_one(args, op))[0].is_(None)
        if op == "s_intersects":
            return self._intersects(args)
        if op == "s_dwithin":
            return self._dwithin(args)
        raise FilterError(f"operator {node['op']!r} is not supported; use = <> < > <= >= LIKE IN BETWEEN "
                          "IS NULL AND OR NOT S_INTERSECTS S_DWITHIN")

    # -- operands -------------------------------------------------------------------------
    def _column(self, node: Any) -> tuple[sa.Column, FieldSpec | None, str]:
        if not (isinstance(node, dict) and "property" in node):
            raise FilterError(f"expected a property name, got {_show(node)}")
        name = node["property"]
        if name in SYSTEM_COLUMNS:
            return self.table.c[name], None, SYSTEM_COLUMNS[name]
        spec = self.layer.field(name)
        if spec is None:
            raise FilterError(f"unknown property {name!r} for layer {self.layer.id}",
                              [{"field": "filter", "message": f"{name!r} is not a field of {self.layer.id}"}])
        return self.table.c[name], spec, spec.type

    def _literal(self, value: Any, spec: FieldSpec | None, type_: str, *, check_enum: bool = True) -> Any:
        if isinstance(value, dict):
            if "timestamp" in value or "date" in value:
                value = value.get("timestamp") or value.get("date")
            else:
                raise FilterError(f"expected a literal value, got {_show(value)}")
        if isinstance(value, list):
            raise FilterError(f"expected one value, got a list {_show(value)}")
        name = spec.name if spec else type_
        try:
            if type_ in ("text", "enum", "enum_list", "json"):
                if not isinstance(value, str):
                    raise ValueError
                if check_enum and type_ in ("enum", "enum_list") and spec and value not in spec.values:
                    raise FilterError(f"{value!r} is not a value of {spec.name}; one of {list(spec.values)}")
                return value
            if type_ == "int":
                if isinstance(value, bool) or not isinstance(value, int | float) or not float(value).is_integer():
                    raise ValueError
                return int(value)
            if type_ == "float":
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise ValueError
                return float(value)
            if type_ == "bool":
                if not isinstance(value, bool):
                    raise ValueError
                return value
            if type_ == "date":
                return dt.date.fromisoformat(str(value)[:10])
            if type_ == "datetime":
                parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
                return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
        except (TypeError, ValueError):
            raise FilterError(f"{_show(value)} is not a valid {type_} value for {name}") from None
        raise FilterError(f"cannot compare property {name} of type {type_}")

    def _pair(self, args: list) -> tuple[Any, Any, bool]:
        """(property node, literal, flipped): comparisons may be written either way round."""
        if len(args) != 2:
            raise FilterError(f"a comparison needs two operands, got {len(args)}")
        a, b = args
        if isinstance(a, dict) and "property" in a:
            return a, b, False
        if isinstance(b, dict) and "property" in b:
            return b, a, True
        raise FilterError("a comparison needs a property on one side")

    # -- predicates -----------------------------------------------------------------------
    def _compare(self, op: str, args: list):
        prop, lit, flipped = self._pair(args)
        col, spec, type_ = self._column(prop)
        if flipped:
            op = _FLIP[op]
        if type_ == "enum_list":
            if op not in ("=", "<>"):
                raise FilterError(f"{spec.name} is a list: use = or IN to test membership")
            cond = self._contains(col, [self._literal(lit, spec, type_)])
            return cond if op == "=" else sa.not_(cond)
        if type_ == "json":
            raise FilterError(f"{spec.name} holds structured data and cannot be compared")
        return _COMPARE[op](col, self._literal(lit, spec, type_, check_enum=op in ("=", "<>")))

    def _like(self, args: list):
        prop, lit, _ = self._pair(args)
        col, spec, type_ = self._column(prop)
        if type_ not in ("text", "enum"):
            raise FilterError(f"LIKE needs a text property; {prop['property']} is {type_}")
        return col.like(self._literal(lit, spec, type_, check_enum=False))

    def _in(self, args: list):
        if len(args) != 2 or not isinstance(args[1], list):
            raise FilterError("IN needs a property and a list: status IN ('破损','丢失')")
        col, spec, type_ = self._column(args[0])
        values = [self._literal(v, spec, type_) for v in args[1]]
        if not values:
            raise FilterError("IN needs at least one value")
        return self._contains(col, values) if type_ == "enum_list" else col.in_(values)

    def _between(self, args: list):
        if len(args) != 3:
            raise FilterError("BETWEEN needs a property and two values")
        col, spec, type_ = self._column(args[0])
        return col.between(self._literal(args[1], spec, type_), self._literal(args[2], spec, type_))

    def _contains(self, col, values: list):
        # enum_list is a JSON array; values were checked against the vocabulary (no wildcards).
        text = sa.cast(col, sa.Text) if self.dialect == "postgis" else col
        return sa.or_(*[text.like(f'%"{v}"%') for v in values])

    def _geometry_arg(self, args: list, n: int, op: str) -> BaseGeometry:
        if len(args) != n:
            raise FilterError(f"{op} needs {n} arguments")
        prop, value = args[0], args[1]
        if isinstance(value, dict) and value.get("property") in GEOMETRY_NAMES:
            prop, value = value, prop
        if not (isinstance(prop, dict) and prop.get("property") in GEOMETRY_NAMES):
            raise FilterError(f"{op}: the first argument must be the geometry property 'geom'")
        try:
            if isinstance(value, dict) and "bbox" in value:
                b = value["bbox"]
                if len(b) == 6:
                    b = [b[0], b[1], b[3], b[4]]
                geom = box(*b)
            else:
                geom = shape(value)
        except Exception as exc:  # shapely raises several types for malformed input
            raise FilterError(f"{op}: malformed geometry: {exc}") from None
        if geom.is_empty or not shapely.is_valid(geom) and geom.geom_type in ("Polygon", "MultiPolygon"):
            geom = shapely.make_valid(geom) if not geom.is_empty else geom
        if geom.is_empty:
            raise FilterError(f"{op}: the geometry is empty")
        geom = crsmod.geometry_to_storage(geom, self.filter_crs)
        coords = shapely.get_coordinates(geom)
        if (abs(coords[:, 0]) > 180).any() or (abs(coords[:, 1]) > 90).any():
            raise FilterError(f"{op}: coordinates outside lon ±180 / lat ±90 (order is lon lat)")
        return geom

    def _intersects(self, args: list):
        geom = self._geometry_arg(args, 2, "S_INTERSECTS")
        return spatial.intersects(self.dialect, self.table, shapely.to_wkb(geom, flavor="iso"), geom.bounds)

    def _dwithin(self, args: list):
        geom = self._geometry_arg(args, 4, "S_DWITHIN")
        if geom.geom_type != "Point":
            raise FilterError("S_DWITHIN supports a POINT(lon lat) only")
        distance, unit = args[2], args[3]
        unit_name = unit.get("property") if isinstance(unit, dict) else unit
        factor = _UNITS.get(str(unit_name).lower())
        if factor is None:
            raise FilterError(f"S_DWITHIN unit {unit_name!r} is not supported; use meters or kilometers")
        if isinstance(distance, bool) or not isinstance(distance, int | float) or not 0 <= distance * factor <= 100_000:
            raise FilterError("S_DWITHIN distance must be a number between 0 and 100 km")
        return near_condition(self.dialect, self.table, geom.x, geom.y, float(distance) * factor)


def near_condition(dialect: str, table: sa.Table, lon: float, lat: float, metres: float):
    """Rows within ``metres`` geodesic of (lon, lat), index first."""
    dlon, dlat = crsmod.degrees_for_metres(metres, lat)
    frame = (lon - dlon, max(-90.0, lat - dlat), lon + dlon, min(90.0, lat + dlat))
    return spatial.within_metres(dialect, table, lon, lat, metres, frame)


def parse(text: str, lang: str | None = None) -> Any:
    """cql2-text (default) or cql2-json → the cql2-json tree; 400 naming the problem."""
    lang = (lang or "cql2-text").lower()
    if lang not in ("cql2-text", "cql2-json"):
        raise FilterError(f"filter-lang {lang!r} is not supported; use cql2-text or cql2-json")
    if len(text) > 20_000:
        raise FilterError("the filter is longer than 20,000 characters")
    try:
        expr = cql2.parse_text(text) if lang == "cql2-text" else cql2.parse_json(text)
        return expr.to_json()
    except Exception as exc:  # cql2 raises ParseError/ValidationError/ValueError
        message = " ".join(str(exc).split())
        raise FilterError(f"malformed CQL2 ({lang}): {message}",
                          [{"field": "filter", "message": message}]) from None


def compile_filter(text: str, *, layer: LayerSpec, table: sa.Table, dialect: str, lang: str | None = None,
                   filter_crs: crsmod.Crs = crsmod.CRS84):
    """One SQLAlchemy condition for a CQL2 filter on ``layer``."""
    return Compiler(layer, table, dialect, filter_crs).compile(parse(text, lang))


def _one(args: list, op: str) -> Any:
    if len(args) != 1:
        raise FilterError(f"{op} takes one argument")
    return args[0]


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) < 80 else text[:77] + "..."
