"""From source coordinates to CGCS2000 lon/lat (EPSG:4490), vectorised and cached.

Three kinds of mapping:

* PROJ between CRSs on the same datum (CGCS2000 Gauss-Krüger → 4490) or WGS 84 (taken as
  CGCS2000: they agree to decimetres, as everywhere in Chinese web GIS);
* the bureau's parameters for Xian 1980 / Beijing 1954, either 7-parameter Helmert
  (``+towgs84=dx,dy,dz,rx,ry,rz,s``: metres, arc-seconds, ppm, position-vector convention as in
  PROJ) or a plane 4-parameter fit (``4param:dX,dY,rot,scale``: metres, arc-seconds, ppm, with
  X = northing and Y = easting as Chinese survey software writes them:
  X' = dX + (1+m)(X·cosα − Y·sinα), Y' = dY + (1+m)(X·sinα + Y·cosα)), whose result is in
  the CGCS2000 Gauss-Krüger projection with the source's projection parameters;
* the GCJ-02 / BD-09 web-map offsets, removed with :mod:`importers.offsets`.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np
import pyproj

from importers import offsets
from importers.crs import SourceCrs, refuse_datum
from importers.errors import ImportRefusedError

XY = tuple[np.ndarray, np.ndarray]
Mapper = Callable[[np.ndarray, np.ndarray], XY]

_ARCSEC = np.pi / (180.0 * 3600.0)
_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"


@dataclass(frozen=True)
class DatumTransform:
    """Given conversion parameters; ``text`` is what the report records."""

    kind: Literal["7param", "4param"]
    params: tuple[float, ...]
    text: str


def parse_transform(text: str) -> DatumTransform:
    s = text.strip()
    m = re.fullmatch(r"(?:\+towgs84=|7param:)\s*(.*)", s, flags=re.I)
    kind: Literal["7param", "4param"]
    if m:
        kind, want = "7param", 7
    else:
        m = re.fullmatch(r"4param:\s*(.*)", s, flags=re.I)
        if not m:
            raise ImportRefusedError(
                f"cannot read transform {text!r}: use '+towgs84=dx,dy,dz,rx,ry,rz,s' or "
                "'4param:dX,dY,rotation_arcsec,scale_ppm'")
        kind, want = "4param", 4
    parts = [p.strip() for p in m.group(1).split(",")]
    if len(parts) != want or not all(re.fullmatch(_NUM, p) for p in parts):
        raise ImportRefusedError(f"transform {text!r} needs {want} comma-separated numbers")
    return DatumTransform(kind, tuple(float(p) for p in parts), s)


def make_mapper(src: SourceCrs, transform: DatumTransform | None) -> Mapper:
    """A vectorised (x, y) → (lon, lat) in EPSG:4490; refuses unsafe datums without parameters."""
    if src.offset:
        return _offset_mapper(src.offset)
    if transform is None and (src.needs_transform or src.datum == "other"):
        raise refuse_datum(src)
    return _cached_mapper(src.crs.to_wkt(), src.datum, transform)


@lru_cache(maxsize=64)
def _cached_mapper(wkt: str, datum: str, transform: DatumTransform | None) -> Mapper:
    crs = pyproj.CRS.from_wkt(wkt)
    if transform is None:
        # WGS 84 goes to 4326 and is stored as 4490: no datum shift, by design (architecture.md).
        target = 4326 if datum == "wgs84" else 4490
        return _transformer_mapper(pyproj.Transformer.from_crs(crs, target, always_xy=True))
    if transform.kind == "7param":
        return _transformer_mapper(pyproj.Transformer.from_pipeline(helmert_pipeline(crs, transform.params)))
    return _four_param_mapper(crs, transform.params)


def _transformer_mapper(t: pyproj.Transformer) -> Mapper:
    def run(x: np.ndarray, y: np.ndarray) -> XY:
        lon, lat = t.transform(x, y)
        return np.asarray(lon, dtype="float64"), np.asarray(lat, dtype="float64")
    return run


def _offset_mapper(kind: str) -> Mapper:
    return offsets.gcj02_to_wgs84 if kind == "gcj02" else offsets.bd09_to_wgs84


def _proj_terms(crs: pyproj.CRS) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        d = crs.to_dict()
    skip = {"type", "no_defs", "towgs84", "wktext", "nadgrids"}
    return " ".join(f"+{k}" if v is None else f"+{k}={v}" for k, v in d.items() if k not in skip)


def helmert_pipeline(crs: pyproj.CRS, p: tuple[float, ...]) -> str:
    """Source plane or lon/lat → geocentric → 7-parameter Helmert → CGCS2000 lon/lat (degrees)."""
    ell = crs.ellipsoid
    if ell is None:
        raise ImportRefusedError(f"{crs.name}: no ellipsoid, cannot apply a 7-parameter transform")
    if crs.is_projected:
        first = f"+step +inv {_proj_terms(crs)}"
    else:
        first = "+step +proj=unitconvert +xy_in=deg +xy_out=rad"
    dx, dy, dz, rx, ry, rz, s = p
    return (f"+proj=pipeline {first} "
            f"+step +proj=cart +a={ell.semi_major_metre} +rf={ell.inverse_flattening} "
            f"+step +proj=helmert +x={dx} +y={dy} +z={dz} +rx={rx} +ry={ry} +rz={rz} +s={s} "
            "+convention=position_vector "
            "+step +inv +proj=cart +ellps=GRS80 "
            "+step +proj=unitconvert +xy_in=rad +xy_out=deg")


def _four_param_mapper(crs: pyproj.CRS, p: tuple[float, ...]) -> Mapper:
    if not crs.is_projected:
        raise ImportRefusedError("a 4-parameter transform works on plane coordinates; the source is lon/lat")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        d = crs.to_dict()
    for k in ("ellps", "a", "b", "rf", "f", "towgs84", "datum", "type"):
        d.pop(k, None)
    target = pyproj.CRS.from_dict({**d, "ellps": "GRS80"})   # same projection on CGCS2000
    to_geo = pyproj.Transformer.from_crs(target, 4490, always_xy=True)
    dX, dY, rot, ppm = p
    c, s, k = np.cos(rot * _ARCSEC), np.sin(rot * _ARCSEC), 1.0 + ppm * 1e-6

    def run(x: np.ndarray, y: np.ndarray) -> XY:
        north, east = np.asarray(y, dtype="float64"), np.asarray(x, dtype="float64")
        north2 = dX + k * (north * c - east * s)
        east2 = dY + k * (north * s + east * c)
        lon, lat = to_geo.transform(east2, north2)
        return np.asarray(lon), np.asarray(lat)
    return run
