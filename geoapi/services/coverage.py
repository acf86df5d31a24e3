"""Coverage for planners: per district / unit grid / road segment, how many assets, how dense,
and (with a service radius) how much of the unit lies within reach of one.

Boundary rule (docs/queries.md): a point counts in every unit whose closed polygon contains it
(a point exactly on a shared border counts in both; survey points practically never are);
lines and polygons count by the share of their length/area inside the unit, so a pipe half in
each district counts 0.5 in each and the shares of a feature add up to 1 over a tiling.
Areas are computed in a Lambert azimuthal equal-area frame centred on the city; clipped
lengths/areas of assets on the ellipsoid, by the database.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
from shapely.geometry import mapping
from shapely.geometry.base import BaseGeometry

from geoapi import crs as crsmod
from geoapi.errors import BadRequestError
from geoapi.services.along import corridor
from geoapi.storage import FeatureQuery, Store, overlay

MAX_RADIUS_M = 5_000
MAX_RADIUS_FEATURES = 200_000
MAX_UNITS = 50_000
BOUNDARY_RULE = ("points count in every unit whose polygon (boundary included) contains them; lines and "
                 "polygons count by their share of length/area inside the unit")


@dataclass(frozen=True)
class UnitSource:
    layer: str
    code: str
    name: str
    corridor: bool = False  # road segments: the unit is the segment's frontage corridor


UNIT_SOURCES = {
    "district": UnitSource("districts", "admin_code", "name"),
    "unit_grid": UnitSource("unit_grids", "grid_code", "name"),
    "road_segment": UnitSource("road_segments", "segment_code", "road_name", corridor=True),
}


@dataclass
class UnitRow:
    code: str | None
    name: str | None
    area_km2: float
    count: float
    features: int                      # features intersecting the unit (whole)
    by_status: dict[str, float] = field(default_factory=dict)
    length_km: float | None = None     # line layers: clipped length inside the unit
    asset_area_km2: float | None = None  # polygon layers: clipped area inside the unit
    smart: float | None = None         # manholes: smart covers inside the unit
    unit_length_km: float | None = None  # road segments: the segment's own length
    covered_share: float | None = None
    uncovered: BaseGeometry | None = None
    geometry: BaseGeometry | None = None

    @property
    def density_per_km2(self) -> float | None:
        return _sig(self.count / self.area_km2) if self.area_km2 > 0 else None

    @property
    def smart_share(self) -> float | None:
        if self.smart is None:
            return None
        return round(self.smart / self.count, 4) if self.count else None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "name": self.name, "area_km2": round(self.area_km2, 4),
                               "count": round(self.count, 3), "features": self.features,
                               "density_per_km2": self.density_per_km2,
                               "by_status": {k: round(v, 3) for k, v in self.by_status.items()}}
        if self.length_km is not None:
            out["length_km"] = round(self.length_km, 4)
        if self.asset_area_km2 is not None:
            out["asset_area_km2"] = round(self.asset_area_km2, 6)
        if self.smart is not None:
            out["smart_share"] = self.smart_share
        if self.unit_length_km is not None:
            out["unit_length_km"] = round(self.unit_length_km, 4)
            out["density_per_km"] = _sig(self.count / self.unit_length_km) if self.unit_length_km else None
        if self.covered_share is not None:
            out["covered_share"] = round(self.covered_share, 4)
        return out


@dataclass
class CoverageReport:
    layer: str
    by: str
    radius_m: float | None
    units: list[UnitRow]
    status_values: list[str]


def _sig(value: float) -> float:
    """Six significant digits: densities span 0.001 (rural counties) to 10,000 (a grid cell)."""
    return float(f"{value:.6g}")


def _kind(geometry_type: str) -> str:
    if "Point" in geometry_type:
        return "point"
    return "line" if "Line" in geometry_type else "area"


def load_units(store: Store, by: str) -> tuple[UnitSource, list]:
    source = UNIT_SOURCES.get(by)
    if source is None:
        raise BadRequestError(f"by must be one of {', '.join(UNIT_SOURCES)}; got {by!r}")
    page = store.query(source.layer, FeatureQuery(limit=MAX_UNITS + 1, count=False))
    if len(page.features) > MAX_UNITS:
        raise BadRequestError(f"more than {MAX_UNITS} {source.layer}; coverage works per district instead")
    return source, page.features


def coverage(store: Store, *, layer: str, by: str, radius_m: float | None = None, with_geometry: bool = False,
             conds: list | None = None) -> CoverageReport:
    spec = store.layer(layer)
    source, units = load_units(store, by)
    kind = _kind(spec.geometry)
    cx, cy = (store.bounds[0] + store.bounds[2]) / 2, (store.bounds[1] + store.bounds[3]) / 2
    to_area, from_area = crsmod.local_equal_area(cx, cy)

    geoms, unit_lengths = [], []
    for u in units:
        if source.corridor:
            width = u.props.get("frontage_m") or 30.0
            area, local_line, _ = corridor(u.geometry, float(width))
            geoms.append(area)
            unit_lengths.append(local_line.length / 1000)
        else:
            geoms.append(u.geometry)
    unit_geoms = np.array(geoms, dtype=object)
    local_units = crsmod.project(unit_geoms, to_area) if len(unit_geoms) else unit_geoms
    areas_km2 = shapely.area(local_units) / 1e6 if len(unit_geoms) else []

    has_smart = spec.field("is_smart") is not None and spec.field("is_smart").type == "bool"
    wkbs = [shapely.to_wkb(g, flavor="iso") for g in unit_geoms]
    tallies = overlay.tallies(store, layer, wkbs, kind=kind, group=["status"], conds=conds or [],
                              flags=["is_smart"] if has_smart else [])

    rows = [UnitRow(code=u.props.get(source.code), name=u.props.get(source.name) or u.props.get("name"),
                    area_km2=float(areas_km2[i]), count=0.0, features=0,
                    length_km=0.0 if kind == "line" else None, asset_area_km2=0.0 if kind == "area" else None,
                    smart=0.0 if has_smart else None, unit_length_km=unit_lengths[i] if source.corridor else None,
                    geometry=unit_geoms[i] if with_geometry else None)
            for i, u in enumerate(units)]
    for t in tallies.rows:
        row = rows[t.unit]
        weight = float(t.count) if kind == "point" else t.share
        row.count += weight
        row.features += t.count
        status = t.group[0] if t.group[0] is not None else "未填"
        row.by_status[status] = row.by_status.get(status, 0.0) + weight
        if kind == "line":
            row.length_km += t.measure / 1000
        elif kind == "area":
            row.asset_area_km2 += t.measure / 1e6
    for unit, (smart,) in tallies.flagged.items() if has_smart else ():
        rows[unit].smart += smart
    if radius_m is not None:
        _radius_coverage(store, layer, rows, unit_geoms, local_units, radius_m, (to_area, from_area),
                         with_geometry, conds or [])
    return CoverageReport(layer, by, radius_m, rows, list(spec.status.values))


def _radius_coverage(store: Store, layer: str, rows: list[UnitRow], unit_geoms, local_units, radius_m: float,
                     frame, with_geometry: bool, conds: list) -> None:
    """covered_share = area of (unit ∩ ⋃ buffers of radius_m) ÷ unit area, in the equal-area frame."""
    if not len(unit_geoms):
        return
    to_area, from_area = frame
    x0, y0, x1, y1 = shapely.total_bounds(unit_geoms)
    dlon, dlat = crsmod.degrees_for_metres(radius_m, max(abs(y0), abs(y1)))
    wkbs = overlay.geometries_near(store, layer, (x0 - dlon, y0 - dlat, x1 + dlon, y1 + dlat), conds,
                                   MAX_RADIUS_FEATURES)
    if len(wkbs) > MAX_RADIUS_FEATURES:
        raise BadRequestError(f"radius coverage handles up to {MAX_RADIUS_FEATURES} features in the area; "
                              "narrow it with property filters")
    if wkbs:
        assets = crsmod.project(shapely.from_wkb(wkbs), to_area)
        reach = shapely.union_all(shapely.buffer(assets, radius_m, quad_segs=16))
    else:
        reach = shapely.Polygon()
    covered = shapely.intersection(local_units, reach)
    shares = np.divide(shapely.area(covered), shapely.area(local_units),
                       out=np.zeros(len(local_units)), where=shapely.area(local_units) > 0)
    uncovered = crsmod.project(shapely.difference(local_units, reach), from_area) if with_geometry else None
    for i, row in enumerate(rows):
        row.covered_share = float(shares[i])
        if uncovered is not None:
            row.uncovered = uncovered[i]


# -- output ------------------------------------------------------------------------------------
def to_json(report: CoverageReport) -> dict:
    return {"layer": report.layer, "by": report.by, "radius_m": report.radius_m, "boundary_rule": BOUNDARY_RULE,
            "units": [r.as_dict() for r in report.units],
            "totals": {"units": len(report.units), "count": round(sum(r.count for r in report.units), 3),
                       "area_km2": round(sum(r.area_km2 for r in report.units), 4)}}


def to_geojson(report: CoverageReport) -> dict:
    features = []
    for r in report.units:
        props = r.as_dict()
        if r.uncovered is not None:
            props["uncovered"] = None if r.uncovered.is_empty else mapping(r.uncovered)
        features.append({"type": "Feature", "id": r.code, "properties": props,
                         "geometry": mapping(r.geometry) if r.geometry is not None else None})
    return {"type": "FeatureCollection", "features": features, "layer": report.layer, "by": report.by,
            "radius_m": report.radius_m, "boundary_rule": BOUNDARY_RULE}


def to_csv(report: CoverageReport) -> bytes:
    """Spreadsheet rows; UTF-8 with BOM so Excel shows the Chinese names."""
    base = ["code", "name", "area_km2", "count", "features", "density_per_km2"]
    optional = ["length_km", "asset_area_km2", "smart_share", "unit_length_km", "density_per_km", "covered_share"]
    dicts = [r.as_dict() for r in report.units]
    extra = [k for k in optional if any(k in d for d in dicts)]
    statuses = list(report.status_values) + sorted({s for d in dicts for s in d["by_status"]} - set(report.status_values))
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(base + extra + [f"status_{s}" for s in statuses])
    for d in dicts:
        w.writerow([d.get(k) for k in base + extra] + [d["by_status"].get(s, 0) for s in statuses])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")
