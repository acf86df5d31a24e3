"""Geometry helpers for the demo: the district file, a local metric frame, point-in-district.

The generator works in metres in a local tangent frame centred on 焦作 (equirectangular
with the ellipsoid's radii of curvature at 35.22°N: under 0.1 % scale error across the city,
plenty for synthetic data) and converts to EPSG:4490 lon/lat at the end.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, shape
from shapely.geometry.base import BaseGeometry

DISTRICTS_FILE = Path(__file__).with_name("data") / "jiaozuo_districts.geojson"
URBAN_CODES = ("410802", "410803", "410804", "410811")  # 解放区 中站区 马村区 山阳区

LON0, LAT0 = 113.25, 35.22
_A, _F = 6378137.0, 1 / 298.257222101  # CGCS2000 ellipsoid
_E2 = _F * (2 - _F)
_W = 1 - _E2 * math.sin(math.radians(LAT0)) ** 2
M_PER_DEG_LAT = math.radians(1) * _A * (1 - _E2) / _W**1.5
M_PER_DEG_LON = math.radians(1) * _A / math.sqrt(_W) * math.cos(math.radians(LAT0))


def to_xy(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return (np.asarray(lon) - LON0) * M_PER_DEG_LON, (np.asarray(lat) - LAT0) * M_PER_DEG_LAT


def to_lonlat(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(x) / M_PER_DEG_LON + LON0, np.asarray(y) / M_PER_DEG_LAT + LAT0


def geom_to_lonlat(geoms: BaseGeometry | np.ndarray) -> BaseGeometry | np.ndarray:
    """Local-metre geometries (keeping any Z) → EPSG:4490, rounded to 7 decimals (1 cm)."""
    def conv(c: np.ndarray) -> np.ndarray:
        out = c.copy()
        out[:, 0], out[:, 1] = to_lonlat(c[:, 0], c[:, 1])
        out[:, :2] = np.round(out[:, :2], 7)
        if out.shape[1] > 2:
            out[:, 2] = np.round(out[:, 2], 3)
        return out
    return shapely.transform(geoms, conv, include_z=_has_z(geoms))


def geom_to_xy(geoms: BaseGeometry | np.ndarray) -> BaseGeometry | np.ndarray:
    def conv(c: np.ndarray) -> np.ndarray:
        out = c.copy()
        out[:, 0], out[:, 1] = to_xy(c[:, 0], c[:, 1])
        return out
    return shapely.transform(geoms, conv)


def _has_z(geoms: BaseGeometry | np.ndarray) -> bool:
    return bool(np.any(shapely.has_z(geoms)))


@dataclass(frozen=True)
class District:
    admin_code: str
    name: str
    level: str
    parent_code: str
    geometry: MultiPolygon  # EPSG:4490


@cache
def load_districts() -> tuple[District, ...]:
    """The 10 county-level divisions of 焦作市 from the committed file (see data/ATTRIBUTION.md)."""
    data = json.loads(DISTRICTS_FILE.read_text(encoding="utf-8"))
    out = []
    for feat in data["features"]:
        p = feat["properties"]
        geom = shape(feat["geometry"])
        if geom.geom_type == "Polygon":
            geom = MultiPolygon([geom])
        out.append(District(p["admin_code"], p["name"], p["level"], p["parent_code"], geom))
    return tuple(out)


@cache
def urban_area_xy() -> BaseGeometry:
    """The four urban districts (the demo's city centre) in local metres."""
    polys = [geom_to_xy(d.geometry) for d in load_districts() if d.admin_code in URBAN_CODES]
    return shapely.union_all(polys)


@cache
def _district_polys_xy() -> tuple[tuple[str, BaseGeometry], ...]:
    out = []
    for d in load_districts():
        g = geom_to_xy(d.geometry)
        shapely.prepare(g)
        out.append((d.admin_code, g))
    return tuple(out)


def district_of_xy(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Admin code for each local-metre point (object array; None outside 焦作市)."""
    codes = np.full(len(x), None, dtype=object)
    todo = np.ones(len(x), dtype=bool)
    for code, poly in _district_polys_xy():
        if not todo.any():
            break
        idx = np.flatnonzero(todo)
        inside = shapely.contains_xy(poly, x[idx], y[idx])
        codes[idx[inside]] = code
        todo[idx[inside]] = False
    return codes


def district_names() -> dict[str, str]:
    return {d.admin_code: d.name for d in load_districts()}
