"""Row checks for a batch, column by column.

The same rules as :func:`layers.validate.validate_properties` and
:func:`layers.validate.conform_geometry` (the API's checks), applied to whole columns: each
distinct value of a column is coerced once with :func:`layers.validate.coerce_value`, and
geometry checks run on shapely arrays, so a million rows cost a million dictionary look-ups
rather than a million Python validations.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely

from layers.codes import check_code
from layers.spec import LayerSpec
from layers.validate import coerce_value

_TYPE_IDS = {"Point": 0, "LineString": 1, "Polygon": 3, "MultiPoint": 4, "MultiLineString": 5, "MultiPolygon": 6}
_SINGLE_OF = {4: 0, 5: 1, 6: 3}
_MULTI_MAKERS = {4: shapely.multipoints, 5: shapely.multilinestrings, 6: shapely.multipolygons}


@dataclass
class BatchProblems:
    """Reasons per row index of the batch (0-based), plus counts of silent fixes."""

    reasons: dict[int, list[str]] = field(default_factory=dict)
    repaired: int = 0

    def add(self, i: int, reason: str) -> None:
        self.reasons.setdefault(i, []).append(reason)


def code_field(layer: LayerSpec) -> str | None:
    """The business key used for duplicates and upserts: the layer's code_field, else 部件标识码."""
    return layer.code_field or ("obj_code" if layer.identifier else None)


def check_properties(layer: LayerSpec, columns: dict[str, list[Any]], n: int,
                     problems: BatchProblems) -> dict[str, list[Any]]:
    """Coerce every mapped column and fill defaults; returns field → cleaned values."""
    clean: dict[str, list[Any]] = {}
    for spec in layer.all_fields:
        values = columns.get(spec.name)
        out: list[Any] = [None] * n
        failed: set[int] = set()
        if values is not None and _already_clean(spec, values):
            out = list(values)
        elif values is not None:
            memo: dict[Any, tuple[Any, str | None]] = {}
            for i, v in enumerate(values):
                try:
                    hit = memo.get((type(v), v))
                    key: Any = (type(v), v)
                except TypeError:   # unhashable (a list from a JSON column)
                    hit, key = None, None
                if hit is None:
                    hit = coerce_value(spec, v)
                    if key is not None:
                        memo[key] = hit
                out[i], err = hit
                if err:
                    failed.add(i)
                    problems.add(i, f"{spec.name} ({spec.label}): {err}")
        if values is None and spec.default is not None:
            out = [spec.default] * n
        elif (spec.default is not None or spec.required) and None in out:
            for i, v in enumerate(out):
                if v is not None or i in failed:
                    continue
                if spec.default is not None:
                    out[i] = spec.default
                else:
                    problems.add(i, f"{spec.name} ({spec.label}): required")
        clean[spec.name] = out
    return clean


def _already_clean(spec: Any, values: list[Any]) -> bool:
    """True when coerce_value would hand back every value as it is: text of non-blank strings
    within max_length, enum values as listed, numbers of the field's type within its range
    (None aside). Checked a column at a time: these are the columns of distinct values (codes,
    numbers, depths), where the memo saves nothing and a Python call per value was most of an
    import's checks."""
    present = [v for v in values if v is not None]
    kinds = set(map(type, present))
    if spec.type == "text" and kinds == {str}:
        lengths = list(map(len, present))
        return min(lengths) > 0 and (not spec.max_length or max(lengths) <= spec.max_length) \
            and not any(map(str.isspace, present))
    if spec.type == "enum" and kinds == {str}:
        return set(present) <= set(spec.values)
    if (spec.type, kinds) in (("float", {float}), ("int", {int})):
        arr = np.array(present, dtype=np.float64 if spec.type == "float" else object)
        return bool((spec.type == "int" or np.isfinite(arr).all())
                    and (spec.min is None or arr.min() >= spec.min) and (spec.max is None or arr.max() <= spec.max))
    return not kinds


def check_codes(layer: LayerSpec, clean: dict[str, list[Any]], n: int, problems: BatchProblems) -> None:
    """部件标识码 format (GB/T 30428.2) where a code is given; fills admin_code from it when absent."""
    if layer.identifier is None or "obj_code" not in clean:
        return
    codes = clean["obj_code"]
    admin = clean.get("admin_code")
    for i in range(n):
        code = codes[i]
        if code is None:
            continue
        code = codes[i] = str(code).strip()
        if admin is not None and admin[i] is None and code[:6].isdigit():
            admin[i] = code[:6]   # the code carries its 行政区划; the city default would contradict it
        row = {name: values[i] for name, values in clean.items()}
        reason = check_code(layer, code, row)
        if reason:
            problems.add(i, f"obj_code (部件标识码): {reason}")


def conform_geometries(layer: LayerSpec, geoms: np.ndarray, bounds: tuple[float, float, float, float],
                       problems: BatchProblems) -> np.ndarray:
    """Vectorised :func:`layers.validate.conform_geometry` for EPSG:4490 geometries.

    Also unwraps single-part multi-geometries for single-type layers: shapefile readers
    hand over a one-part MultiLineString for an ordinary polyline.
    """
    geoms = np.asarray(geoms, dtype=object).copy()
    n = len(geoms)
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    for i in np.flatnonzero(missing):
        problems.add(int(i), "geometry: missing or empty geometry")
    wanted = _TYPE_IDS[layer.geometry]
    types = shapely.get_type_id(geoms)
    single = _SINGLE_OF.get(wanted)
    if single is not None:
        promote = np.flatnonzero(types == single)
        if promote.size:
            geoms[promote] = _MULTI_MAKERS[wanted](geoms[promote], indices=np.arange(promote.size))
    else:
        unwrap = np.flatnonzero((np.array([_SINGLE_OF.get(t) for t in types]) == wanted)
                                & (shapely.get_num_geometries(geoms) == 1))
        if unwrap.size:
            geoms[unwrap] = shapely.get_geometry(geoms[unwrap], 0)
    types = shapely.get_type_id(geoms)
    wrong = np.flatnonzero((types != wanted) & ~missing)
    for i in wrong:
        problems.add(int(i), f"geometry: layer {layer.id} takes {layer.geometry}, got {geoms[i].geom_type}")
    ok = (types == wanted) & ~missing
    if not layer.has_z:
        has_z = ok & shapely.has_z(geoms)
        if has_z.any():
            geoms[has_z] = shapely.force_2d(geoms[has_z])
    invalid = np.flatnonzero(ok & ~shapely.is_valid(geoms))
    if invalid.size:
        reasons = shapely.is_valid_reason(geoms[invalid])
        repaired = shapely.make_valid(geoms[invalid])
        fixed = (shapely.get_type_id(repaired) == wanted) & shapely.is_valid(repaired)
        geoms[invalid[fixed]] = repaired[fixed]
        problems.repaired += int(fixed.sum())
        for i, reason in zip(invalid[~fixed], reasons[~fixed], strict=True):
            problems.add(int(i), f"geometry: invalid geometry: {reason}")
    check_bounds(geoms, ok, bounds, problems)
    geoms[~ok] = None
    assert len(geoms) == n
    return geoms


def check_bounds(geoms: np.ndarray, ok: np.ndarray, bounds: tuple[float, float, float, float],
                 problems: BatchProblems) -> None:
    minx, miny, maxx, maxy = bounds
    b = shapely.bounds(geoms)
    inside = (b[:, 0] >= minx) & (b[:, 2] <= maxx) & (b[:, 1] >= miny) & (b[:, 3] <= maxy)
    for i in np.flatnonzero(ok & ~inside):
        x0, y0, x1, y1 = b[i]
        problems.add(int(i), f"geometry: coordinates ({x0:.6f}, {y0:.6f})–({x1:.6f}, {y1:.6f}) lie outside "
                             f"the city bounds {minx}, {miny}, {maxx}, {maxy}")
