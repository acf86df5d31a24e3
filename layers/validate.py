"""Check a feature's properties and geometry against its layer.

Pure functions shared by the API, the importers and the demo: each returns the cleaned
value plus a list of FieldProblem, never raises for bad input.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import shapely
from shapely.geometry.base import BaseGeometry

from layers.spec import SYSTEM_COLUMNS, FieldSpec, LayerSpec

_MULTI = {"Point": "MultiPoint", "LineString": "MultiLineString", "Polygon": "MultiPolygon"}


@dataclass(frozen=True)
class FieldProblem:
    field: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


def coerce_value(spec: FieldSpec, value: Any) -> tuple[Any, str | None]:
    """Convert one value to the field's type; (value, None) or (None, reason)."""
    # Blank DBF/CSV cells mean "no value" for every type, text included, so a blank
    # required field is reported as missing instead of slipping through as "".
    if value is None or (isinstance(value, str) and value.strip() == ""):
        return None, None
    t = spec.type
    try:
        if t == "text":
            v = str(value)
            if spec.max_length and len(v) > spec.max_length:
                return None, f"longer than {spec.max_length} characters"
            return v, None
        if t == "int":
            if isinstance(value, bool):
                return None, "expected an integer"
            if isinstance(value, int):
                v = value  # no float round trip: it would corrupt integers above 2**53
            else:
                f = float(value)
                if f != f:  # NaN: how readers hand over an empty numeric DBF cell
                    return None, None
                if not f.is_integer():
                    return None, f"expected an integer, got {value!r}"
                v = int(f)
        elif t == "float":
            if isinstance(value, bool):
                return None, "expected a number"
            v = float(value)
            if v != v:  # NaN
                return None, None
        elif t == "bool":
            if isinstance(value, bool):
                return value, None
            if isinstance(value, int | float) and value in (0, 1):  # DBF numeric flags: 1.0 / 0.0
                return bool(value), None
            s = str(value).strip().lower()
            if s in ("1", "true", "t", "yes", "y", "是", "有"):
                return True, None
            if s in ("0", "false", "f", "no", "n", "否", "无"):
                return False, None
            return None, f"expected true/false (是/否), got {value!r}"
        elif t == "date":
            if isinstance(value, dt.datetime):
                return value.date(), None
            if isinstance(value, dt.date):
                return value, None
            return _parse_date(str(value)), None
        elif t == "datetime":
            if isinstance(value, dt.datetime):
                return value, None
            return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00")), None
        elif t == "enum":
            v = str(value).strip()
            if v not in spec.values:
                return None, f"{v!r} is not one of {list(spec.values)}"
            return v, None
        elif t == "enum_list":
            items = value if isinstance(value, (list, tuple)) else [s for s in str(value).replace("，", ",").replace("、", ",").split(",") if s.strip()]
            items = [str(i).strip() for i in items]
            bad = [i for i in items if i not in spec.values]
            if bad:
                return None, f"{bad} not among {list(spec.values)}"
            return items, None
        elif t == "json":
            return value, None
        else:  # pragma: no cover - the spec's Literal forbids it
            return None, f"unknown type {t}"
    except (TypeError, ValueError):
        return None, f"expected {t}, got {value!r}"
    if spec.min is not None and v < spec.min:
        return None, f"{v} is below the minimum {spec.min:g}"
    if spec.max is not None and v > spec.max:
        return None, f"{v} is above the maximum {spec.max:g}"
    return v, None


def _parse_date(text: str) -> dt.date:
    """Survey dates come as 2021-05-01, 2021/5/1, 2021.5.1, 20210501 or 2021年5月1日."""
    s = text.strip()
    if len(s) == 8 and s.isdigit():
        return dt.date(int(s[:4]), int(s[4:6]), int(s[6:]))
    s = s.replace("年", "-").replace("月", "-").replace("日", "").replace("/", "-").replace(".", "-")
    head = s.split("T")[0].split(" ")[0]
    parts = head.split("-")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise ValueError(text)
    return dt.date(int(parts[0]), int(parts[1]), int(parts[2]))


def validate_properties(
    layer: LayerSpec, props: dict[str, Any], *, partial: bool = False
) -> tuple[dict[str, Any], list[FieldProblem]]:
    """Clean ``props`` for ``layer``.

    ``partial`` (PATCH) skips required checks and defaults for absent fields. Unknown
    property names are errors; system columns are ignored (the server sets them).
    """
    clean: dict[str, Any] = {}
    problems: list[FieldProblem] = []
    fields = {f.name: f for f in layer.all_fields}
    for name, value in props.items():
        if name in SYSTEM_COLUMNS:
            continue
        spec = fields.get(name)
        if spec is None:
            problems.append(FieldProblem(name, f"unknown property for layer {layer.id}"))
            continue
        v, err = coerce_value(spec, value)
        if err:
            problems.append(FieldProblem(name, err))
        else:
            clean[name] = v
    if not partial:
        bad = {p.field for p in problems}
        for spec in fields.values():
            # A field that failed keeps its error: a default would hide the bad input.
            if spec.name not in bad and clean.get(spec.name) is None:
                if spec.default is not None:
                    clean[spec.name] = spec.default
                elif spec.required:
                    problems.append(FieldProblem(spec.name, f"required ({spec.label})"))
    else:
        for name, v in clean.items():
            if v is None and fields[name].required:
                problems.append(FieldProblem(name, f"required ({fields[name].label}) cannot be cleared"))
    return clean, problems


def conform_geometry(
    layer: LayerSpec, geom: BaseGeometry | None, bounds: tuple[float, float, float, float]
) -> tuple[BaseGeometry | None, list[FieldProblem]]:
    """Check type, validity, Z and city bounds; promote single to Multi when the layer is Multi."""
    if geom is None or geom.is_empty:
        return None, [FieldProblem("geometry", "missing or empty geometry")]
    gtype = geom.geom_type
    wanted = layer.geometry
    if gtype != wanted:
        if _MULTI.get(gtype) == wanted:
            geom = shapely.multipolygons([geom]) if wanted == "MultiPolygon" else (
                shapely.multilinestrings([geom]) if wanted == "MultiLineString" else shapely.multipoints([geom]))
        else:
            return None, [FieldProblem("geometry", f"layer {layer.id} takes {wanted}, got {gtype}")]
    if geom.has_z and not layer.has_z:
        geom = shapely.force_2d(geom)
    elif layer.has_z and not geom.has_z:
        # Z is allowed, not required (most pipe deliveries are 2D with elevation attributes):
        # the 3D column stores 0 for "not surveyed"; the elevation fields stay authoritative.
        geom = shapely.force_3d(geom, 0.0)
    problems: list[FieldProblem] = []
    if not geom.is_valid:
        reason = shapely.is_valid_reason(geom)
        repaired = shapely.make_valid(geom)
        if repaired.geom_type == geom.geom_type and repaired.is_valid:
            geom = repaired
        else:
            problems.append(FieldProblem("geometry", f"invalid geometry: {reason}"))
    minx, miny, maxx, maxy = bounds
    gx0, gy0, gx1, gy1 = geom.bounds
    if not (minx <= gx0 and gx1 <= maxx and miny <= gy0 and gy1 <= maxy):
        hint = ""
        if minx <= gy0 <= maxx and miny <= gx0 <= maxy:
            hint = " (longitude and latitude look swapped: GeoJSON order is [lon, lat])"
        problems.append(FieldProblem(
            "geometry",
            f"coordinates ({gx0:.6f}, {gy0:.6f})–({gx1:.6f}, {gy1:.6f}) lie outside the city bounds "
            f"{minx}, {miny}, {maxx}, {maxy}{hint}",
        ))
    return geom, problems
