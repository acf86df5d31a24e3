"""Which CRS a delivery is in, and how to bring it to CGCS2000 (EPSG:4490). DOMAIN.md §7, §8.3.

``.prj`` files are matched by their parameters (ellipsoid, central meridian, false easting,
scale), never by name: ESRI, FME and Chinese tools all spell CGCS2000 differently. Gauss-Krüger
3°/6° zones of CGCS2000, Xian 1980 and Beijing 1954 map onto their EPSG codes; anything else
(a 城市独立坐标系) is used as given. Xian 1980 and Beijing 1954 differ from CGCS2000 by about
100 m in Henan and PROJ has no published transformation, so they are refused unless the
bureau's parameters are given (see :mod:`importers.transforms`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Literal

import numpy as np
import pyproj
from pyproj.exceptions import CRSError

from importers.errors import ImportRefusedError

Datum = Literal["cgcs2000", "wgs84", "xian80", "beijing54", "other"]
Offset = Literal["gcj02", "bd09"]

TARGET_EPSG = 4490
_GEOGRAPHIC = {"cgcs2000": 4490, "wgs84": 4326, "xian80": 4610, "beijing54": 4214}
# First EPSG code of each Gauss-Krüger family and the zone it starts at (DOMAIN.md §7.1).
# (datum, zone width, zone prefix in false easting) -> (first code, first zone)
_GK_FAMILIES: dict[tuple[str, int, bool], tuple[int, int]] = {
    ("cgcs2000", 3, True): (4513, 25), ("cgcs2000", 3, False): (4534, 25),
    ("cgcs2000", 6, True): (4491, 13), ("cgcs2000", 6, False): (4502, 13),
    ("xian80", 3, True): (2349, 25), ("xian80", 3, False): (2370, 25),
    ("xian80", 6, True): (2327, 13), ("xian80", 6, False): (2338, 13),
    ("beijing54", 3, True): (2401, 25), ("beijing54", 3, False): (2422, 25),
    ("beijing54", 6, True): (21413, 13), ("beijing54", 6, False): (21473, 13),
}
_ZONES = {3: range(25, 46), 6: range(13, 24)}
NEEDS_TRANSFORM: frozenset[str] = frozenset({"xian80", "beijing54"})
_DATUM_LABEL = {"cgcs2000": "CGCS2000", "wgs84": "WGS 84", "xian80": "Xian 1980 (西安80)",
                "beijing54": "Beijing 1954 (北京54)", "other": "an unknown datum"}


@dataclass(frozen=True)
class SourceCrs:
    """The CRS a file's coordinates are in, as detected or given."""

    crs: pyproj.CRS
    epsg: int | None
    datum: Datum
    reason: str                      # how we know: "prj", "given", "dataset", ...
    offset: Offset | None = None     # GCJ-02 / BD-09 web-map offset to remove first

    @property
    def label(self) -> str:
        if self.offset:
            return {"gcj02": "GCJ-02", "bd09": "BD-09"}[self.offset]
        return f"EPSG:{self.epsg}" if self.epsg else self.crs.name

    @property
    def needs_transform(self) -> bool:
        return self.datum in NEEDS_TRANSFORM

    def as_dict(self) -> dict[str, object]:
        return {"crs": self.label, "name": self.crs.name, "datum": self.datum, "reason": self.reason}


def datum_of(crs: pyproj.CRS) -> Datum:
    """Classify by ellipsoid (the reliable part) and datum name (WGS 84 vs CGCS2000 share a)."""
    ell = crs.ellipsoid
    if ell is None:
        return "other"
    a, rf = ell.semi_major_metre, ell.inverse_flattening
    name = (crs.datum.name if crs.datum else "").lower()
    if abs(a - 6378137.0) < 0.01:
        if "2000" in name or "china" in name or "cgcs" in name:
            return "cgcs2000"
        if abs(rf - 298.257223563) < 1e-6:
            return "wgs84"
        if abs(rf - 298.257222101) < 1e-6:
            return "cgcs2000"   # GRS80-type ellipsoid in a Chinese delivery: CGCS2000
    if abs(a - 6378140.0) < 0.01 and abs(rf - 298.257) < 1e-3:
        return "xian80"
    if abs(a - 6378245.0) < 0.01 and abs(rf - 298.3) < 1e-3:
        return "beijing54"
    return "other"


@dataclass(frozen=True)
class _TM:
    lon_0: float
    lat_0: float
    k: float
    x_0: float
    y_0: float


def _tm_params(crs: pyproj.CRS) -> _TM | None:
    """Transverse Mercator parameters in metres, or None for any other projection."""
    op = crs.coordinate_operation
    if not crs.is_projected or op is None or "transverse mercator" not in op.method_name.lower():
        return None
    if op.method_name.lower() != "transverse mercator":   # e.g. "south orientated"
        return None
    p = {q.name.lower(): q.value for q in op.params}
    unit = crs.axis_info[0].unit_conversion_factor if crs.axis_info else 1.0
    return _TM(lon_0=p.get("longitude of natural origin", 0.0), lat_0=p.get("latitude of natural origin", 0.0),
               k=p.get("scale factor at natural origin", 1.0), x_0=p.get("false easting", 0.0) * unit,
               y_0=p.get("false northing", 0.0) * unit)


def _gk_epsg(datum: Datum, tm: _TM) -> int | None:
    """The EPSG code of a standard Gauss-Krüger zone with these parameters, if it is one."""
    if abs(tm.k - 1.0) > 1e-9 or abs(tm.lat_0) > 1e-9 or abs(tm.y_0) > 1e-6:
        return None
    for width in (3, 6):
        zone = round(tm.lon_0 / 3) if width == 3 else round((tm.lon_0 + 3) / 6)
        cm = zone * 3 if width == 3 else zone * 6 - 3
        if abs(cm - tm.lon_0) > 1e-9 or zone not in _ZONES[width]:
            continue
        for prefixed in (False, True):
            fe = zone * 1_000_000 + 500_000 if prefixed else 500_000
            family = _GK_FAMILIES.get((datum, width, prefixed))
            if family and abs(tm.x_0 - fe) < 1e-6:
                code = family[0] + zone - family[1]
                if _same_tm(code, tm):
                    return code
    return None


@lru_cache(maxsize=256)
def _epsg_tm(code: int) -> _TM | None:
    try:
        return _tm_params(pyproj.CRS.from_epsg(code))
    except CRSError:
        return None


def _same_tm(code: int, tm: _TM) -> bool:
    """Guard the code arithmetic against the EPSG database itself."""
    ref = _epsg_tm(code)
    return ref is not None and all(abs(getattr(ref, f) - getattr(tm, f)) < 1e-6 for f in ("lon_0", "lat_0", "k", "x_0", "y_0"))


def match_crs(crs: pyproj.CRS, reason: str) -> SourceCrs:
    """Recognise ``crs`` by its parameters; ``epsg`` is set when a known code matches."""
    if crs.is_compound:
        crs = crs.sub_crs_list[0]   # a vertical part (1985 height) does not move x/y
    datum = datum_of(crs)
    epsg: int | None = None
    if crs.is_geographic and datum in _GEOGRAPHIC:
        epsg = _GEOGRAPHIC[datum]
    elif crs.is_projected:
        tm = _tm_params(crs)
        if tm is not None and datum != "other":
            epsg = _gk_epsg(datum, tm)
        if epsg is None:
            epsg = crs.to_epsg(min_confidence=90)   # UTM, Web Mercator …
    if epsg is not None:
        crs = pyproj.CRS.from_epsg(epsg)
    return SourceCrs(crs=crs, epsg=epsg, datum=datum, reason=reason)


def parse_crs_text(text: str, reason: str) -> SourceCrs:
    """A CRS from a ``.prj`` (ESRI WKT), a user string (``EPSG:4547``, ``4547``, WKT, PROJ) or GCJ-02/BD-09."""
    key = text.strip().upper().replace("_", "-")
    if key in ("GCJ-02", "GCJ02", "GCJ"):
        return SourceCrs(pyproj.CRS.from_epsg(4326), 4326, "wgs84", reason, offset="gcj02")
    if key in ("BD-09", "BD09", "BAIDU"):
        return SourceCrs(pyproj.CRS.from_epsg(4326), 4326, "wgs84", reason, offset="bd09")
    if key.isdigit():
        text = f"EPSG:{key}"
    elif key in ("CGCS2000", "CGCS-2000"):
        text = "EPSG:4490"
    try:
        crs = pyproj.CRS.from_user_input(text)
    except CRSError as exc:
        raise ImportRefusedError(f"cannot understand the coordinate system {text[:120]!r}: {exc}") from exc
    return match_crs(crs, reason)


# -- zone prefixes --------------------------------------------------------------------------

def prefix_zone(eastings: np.ndarray) -> int | None:
    """The Gauss-Krüger zone when the eastings carry a zone prefix (38 430 806 → 38)."""
    e = eastings[np.isfinite(eastings)]
    if e.size == 0:
        return None
    zones = np.floor(e / 1_000_000)
    zone = int(np.median(zones))
    inside = np.abs(e - zone * 1_000_000 - 500_000) < 400_000
    if zone in range(13, 46) and np.mean((zones == zone) & inside) > 0.9:
        return zone
    return None


def with_zone_prefix(src: SourceCrs, eastings: np.ndarray) -> tuple[SourceCrs, str | None]:
    """Fit the declared Gauss-Krüger CRS to the eastings: add or drop the zone prefix.

    A ``.prj`` saying "CM 114E" over eastings of 38 430 806 is a common delivery: the data
    carries the zone number, the ``.prj`` does not. Returns the fitted CRS and a note.
    """
    tm = _tm_params(src.crs)
    if tm is None or src.datum == "other":
        return src, None
    zone = prefix_zone(eastings)
    has_prefix = tm.x_0 > 1_000_000
    if zone is not None and not has_prefix:
        width = 3 if zone >= 25 else 6
        cm = zone * 3 if width == 3 else zone * 6 - 3
        if abs(cm - tm.lon_0) > 1e-9:
            raise ImportRefusedError(
                f"the eastings carry zone prefix {zone} (central meridian {cm}°E) but the CRS "
                f"{src.label} has central meridian {tm.lon_0:g}°E; give the right crs=")
        new_x0 = zone * 1_000_000 + 500_000
    elif zone is None and has_prefix and _looks_unprefixed(eastings):
        new_x0 = 500_000
    else:
        return src, None
    fitted = pyproj.CRS.from_dict({**_proj_dict(src.crs), "x_0": new_x0})
    matched = match_crs(fitted, src.reason)
    note = (f"eastings {'carry' if new_x0 > 1_000_000 else 'lack'} the zone prefix: read as "
            f"{matched.label} instead of {src.label}")
    return replace(matched, reason=f"{src.reason}, zone prefix fitted"), note


def _looks_unprefixed(eastings: np.ndarray) -> bool:
    e = eastings[np.isfinite(eastings)]
    return e.size > 0 and bool(np.mean((e > 100_000) & (e < 900_000)) > 0.9)


def _proj_dict(crs: pyproj.CRS) -> dict[str, object]:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)   # "you may lose information": TM is exact
        d = crs.to_dict()
    d.pop("type", None)
    return d


def describe_unlabelled(x: np.ndarray, y: np.ndarray) -> str:
    """A hint for files without a CRS, from the magnitudes of the coordinates."""
    ok = np.isfinite(x) & np.isfinite(y)
    if not ok.any():
        return ""
    mx, my = float(np.median(x[ok])), float(np.median(y[ok]))
    zone = prefix_zone(x[ok])
    if zone is not None:
        cgcs = _GK_FAMILIES[("cgcs2000", 3, True)]
        xian = _GK_FAMILIES[("xian80", 3, True)]
        return (f"; the eastings ({mx:,.0f}) carry the Gauss-Krüger zone prefix {zone}: CGCS2000 would be "
                f"EPSG:{cgcs[0] + zone - cgcs[1]}, Xian 1980 EPSG:{xian[0] + zone - xian[1]}")
    if 100_000 < mx < 900_000 and 1_000_000 < my < 6_000_000:
        return (f"; the coordinates ({mx:,.0f}, {my:,.0f}) look like Gauss-Krüger without zone prefix "
                "(CGCS2000 CM 114E would be EPSG:4547)")
    if 70 < mx < 140 and 0 < my < 56:
        return f"; the coordinates ({mx:.4f}, {my:.4f}) look like longitude/latitude (CGCS2000: EPSG:4490)"
    return ""


def refuse_missing_crs(file_name: str, x: np.ndarray, y: np.ndarray) -> ImportRefusedError:
    return ImportRefusedError(
        f"{file_name} has no coordinate system (.prj missing); give one with crs=, e.g. EPSG:4547"
        + describe_unlabelled(x, y))


def refuse_datum(src: SourceCrs) -> ImportRefusedError:
    return ImportRefusedError(
        f"the data is in {src.label} on {_DATUM_LABEL[src.datum]}. PROJ can only approximate that to "
        "CGCS2000 (off by about 100 m here), so it is not taken silently: give the bureau's "
        "transformation with transform= ('+towgs84=dx,dy,dz,rx,ry,rz,s' for 7 parameters or "
        "'4param:dX,dY,rotation_arcsec,scale_ppm' for a plane 4-parameter fit)")
