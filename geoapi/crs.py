"""Coordinate reference systems the API speaks, and one cached transformer per pair.

Stored coordinates are CGCS2000 lon/lat (EPSG:4490). WGS 84 (EPSG:4326, CRS84) is treated as the
same frame, as every Chinese web GIS does (they agree to decimetres). GCJ-02 (AMap, Tencent) and
BD-09 (Baidu) are the obfuscated web-map frames; their conversions live in
:mod:`importers.offsets` (reused here; the inverse is iterative and far below 0.5 m).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pyproj  # imported before any SpatiaLite connection: the other order crashes at exit
import shapely
from shapely.geometry.base import BaseGeometry

from geoapi.errors import BadRequestError
from importers import offsets

STORAGE_EPSG = 4490
CRS84_URI = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG_URI = "http://www.opengis.net/def/crs/EPSG/0/{}"
# OGC API - Features Part 2: the CRSs items can be served in (CRS84 first = the default).
OGC_CRS_URIS = (CRS84_URI, EPSG_URI.format(4490), EPSG_URI.format(4326), EPSG_URI.format(3857))
# The simple lon/lat CRSs /nearest and /along accept for their lon/lat parameters.
LONLAT_NAMES = ("EPSG:4326", "EPSG:4490", "GCJ-02", "BD-09")

_URI_RE = re.compile(r"^https?://www\.opengis\.net/def/crs/(?:EPSG/0/(?P<epsg>\d+)|OGC/1\.3/(?P<ogc>CRS84))$")


@dataclass(frozen=True)
class Crs:
    """A CRS as the API names it: an EPSG code, CRS84, or a web-map offset frame."""

    name: str                   # "EPSG:4490", "CRS84", "GCJ-02", "BD-09", "EPSG:3857"
    epsg: int | None = None     # projected/geographic EPSG code; None for CRS84 and the offset frames
    offset: str | None = None   # "gcj02" | "bd09"
    lat_first: bool = False     # authority axis order (EPSG:4326/4490 as OGC URIs are lat,lon)

    @property
    def uri(self) -> str:
        if self.epsg is None:
            return CRS84_URI
        return EPSG_URI.format(self.epsg)

    @property
    def is_geographic(self) -> bool:
        return self.epsg in (None, 4326, 4490)


CRS84 = Crs("CRS84")
CGCS2000 = Crs("EPSG:4490", 4490)
_SIMPLE = {
    "EPSG:4326": Crs("EPSG:4326", 4326), "WGS84": Crs("EPSG:4326", 4326), "CRS84": CRS84,
    "EPSG:4490": CGCS2000, "CGCS2000": CGCS2000,
    "EPSG:3857": Crs("EPSG:3857", 3857),
    "GCJ-02": Crs("GCJ-02", offset="gcj02"), "GCJ02": Crs("GCJ-02", offset="gcj02"),
    "BD-09": Crs("BD-09", offset="bd09"), "BD09": Crs("BD-09", offset="bd09"),
}


def parse_lonlat_crs(text: str | None) -> Crs:
    """A ``crs=`` for plain lon/lat parameters (/nearest, /along): EPSG:4326|4490, GCJ-02, BD-09."""
    if not text:
        return CGCS2000
    crs = _SIMPLE.get(text.strip().upper())
    if crs is None or not crs.is_geographic:
        raise BadRequestError(f"crs must be one of {', '.join(LONLAT_NAMES)}; got {text!r}")
    return crs


def parse_ogc_crs(text: str | None, name: str = "crs") -> Crs:
    """An OGC API Part 2 ``crs``/``bbox-crs``: a URI from OGC_CRS_URIS (or EPSG:nnnn / CRS84).

    EPSG:4326 and EPSG:4490 follow their authority axis order (latitude first), as Part 2
    requires; CRS84 is longitude first and the default.
    """
    if not text:
        return CRS84
    m = _URI_RE.match(text.strip())
    if m:
        if m["ogc"]:
            return CRS84
        key = f"EPSG:{m['epsg']}"
    else:
        key = text.strip().upper()
    crs = _SIMPLE.get(key)
    if crs is None or crs.offset or crs.name == "CRS84" and key != "CRS84":
        raise BadRequestError(f"{name} {text!r} is not supported; use one of {', '.join(OGC_CRS_URIS)}")
    if crs.epsg in (4326, 4490):
        return Crs(crs.name, crs.epsg, lat_first=True)
    return crs


@lru_cache(maxsize=64)
def transformer(src: str, dst: str) -> pyproj.Transformer:
    """One cached transformer per pair, always x=lon/easting first."""
    return pyproj.Transformer.from_crs(src, dst, always_xy=True)


def _is_storage_frame(crs: Crs) -> bool:
    return crs.epsg in (None, 4326, 4490) and crs.offset is None


def to_storage_xy(x, y, crs: Crs) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates in ``crs`` (x = lon/easting) → CGCS2000 lon/lat arrays."""
    x, y = np.asarray(x, dtype="float64"), np.asarray(y, dtype="float64")
    if crs.offset == "gcj02":
        return offsets.gcj02_to_wgs84(x, y)
    if crs.offset == "bd09":
        return offsets.bd09_to_wgs84(x, y)
    if _is_storage_frame(crs):
        return x, y
    return transformer(f"EPSG:{crs.epsg}", f"EPSG:{STORAGE_EPSG}").transform(x, y)


def from_storage_xy(lon, lat, crs: Crs) -> tuple[np.ndarray, np.ndarray]:
    """CGCS2000 lon/lat arrays → ``crs`` (x = lon/easting)."""
    lon, lat = np.asarray(lon, dtype="float64"), np.asarray(lat, dtype="float64")
    if crs.offset == "gcj02":
        return offsets.wgs84_to_gcj02(lon, lat)
    if crs.offset == "bd09":
        return offsets.wgs84_to_bd09(lon, lat)
    if _is_storage_frame(crs):
        return lon, lat
    return transformer(f"EPSG:{STORAGE_EPSG}", f"EPSG:{crs.epsg}").transform(lon, lat)


def _apply(geom: BaseGeometry, fn: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]],
           swap: bool) -> BaseGeometry:
    def _xy(coords: np.ndarray) -> np.ndarray:
        x, y = fn(coords[:, 0], coords[:, 1])
        return np.column_stack([y, x] if swap else [x, y])

    return shapely.transform(geom, _xy)


def geometry_to_storage(geom: BaseGeometry, crs: Crs) -> BaseGeometry:
    if _is_storage_frame(crs) and not crs.lat_first:
        return geom
    if crs.lat_first:  # lat,lon input: swap first, then convert
        geom = shapely.transform(geom, lambda c: c[:, ::-1].copy())
    return _apply(geom, lambda x, y: to_storage_xy(x, y, crs), swap=False)


def geometry_from_storage(geom: BaseGeometry, crs: Crs) -> BaseGeometry:
    if _is_storage_frame(crs) and not crs.lat_first:
        return geom
    return _apply(geom, lambda x, y: from_storage_xy(x, y, crs), swap=crs.lat_first)


def bbox_to_storage(bbox: tuple[float, float, float, float], crs: Crs) -> tuple[float, float, float, float]:
    """A bbox given in ``crs`` (its axis order) → a CGCS2000 lon/lat bbox that contains it."""
    x0, y0, x1, y1 = bbox
    if crs.lat_first:
        x0, y0, x1, y1 = y0, x0, y1, x1
    if _is_storage_frame(crs):
        return (x0, y0, x1, y1)
    # Densify the edges: a projected rectangle is not a lon/lat rectangle.
    t = np.linspace(0.0, 1.0, 21)
    xs = np.concatenate([x0 + (x1 - x0) * t, np.full_like(t, x1), x0 + (x1 - x0) * t, np.full_like(t, x0)])
    ys = np.concatenate([np.full_like(t, y0), y0 + (y1 - y0) * t, np.full_like(t, y1), y0 + (y1 - y0) * t])
    lon, lat = to_storage_xy(xs, ys, crs)
    return (float(lon.min()), float(lat.min()), float(lon.max()), float(lat.max()))


# -- metric frames ---------------------------------------------------------------------------
GEOD = pyproj.CRS.from_epsg(STORAGE_EPSG).get_geod()  # CGCS2000 ellipsoid (GRS 80 ≈ WGS 84)


def local_metric(lon0: float, lat0: float) -> tuple[pyproj.Transformer, pyproj.Transformer]:
    """Forward/inverse transformers to an azimuthal equidistant frame centred on (lon0, lat0).

    Distances from the centre are exact geodesic metres; within tens of km of it every distance
    is within a few parts per million, so buffers in metres are drawn there.
    """
    return _local("aeqd", round(lon0, 4), round(lat0, 4))


def local_equal_area(lon0: float, lat0: float) -> tuple[pyproj.Transformer, pyproj.Transformer]:
    """Lambert azimuthal equal-area around (lon0, lat0): exact areas, near-exact lengths nearby."""
    return _local("laea", round(lon0, 3), round(lat0, 3))


@lru_cache(maxsize=256)
def _local(proj: str, lon0: float, lat0: float) -> tuple[pyproj.Transformer, pyproj.Transformer]:
    local = pyproj.CRS.from_proj4(f"+proj={proj} +lat_0={lat0} +lon_0={lon0} +ellps=GRS80 +units=m +no_defs")
    src = pyproj.CRS.from_epsg(STORAGE_EPSG)
    return (pyproj.Transformer.from_crs(src, local, always_xy=True),
            pyproj.Transformer.from_crs(local, src, always_xy=True))


def project(geom, tr: pyproj.Transformer):
    """Shapely geometry (or array of them) through a transformer, vectorised."""
    return shapely.transform(geom, lambda c: np.column_stack(tr.transform(c[:, 0], c[:, 1])))


def degrees_for_metres(metres: float, lat: float) -> tuple[float, float]:
    """Half-sizes (dlon, dlat) in degrees of a box that surely contains a geodesic circle of
    ``metres`` around a point at latitude ``lat`` (1 % margin for the ellipsoid)."""
    dlat = metres / 110_574.0 * 1.01  # 110 574 m is the shortest degree of latitude (equator)
    far = min(89.9, abs(lat) + dlat)
    dlon = min(180.0, metres / (111_320.0 * math.cos(math.radians(far))) * 1.01)
    return dlon, dlat


def min_metres_for_degrees(deg: float, lat: float) -> float:
    """A lower bound of the geodesic length of anything at least ``deg`` planar degrees away
    from a point at latitude ``lat`` (used to prove a nearest search complete)."""
    far = min(89.9, abs(lat) + deg)
    return deg * 110_574.0 * math.cos(math.radians(far)) * 0.99
