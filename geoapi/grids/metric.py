"""A local metric frame for grid geometry: transverse Mercator on CGCS2000, centred on the data.

A tmerc centred within a city keeps scale error under 0.01 % across it, so lengths and areas
(length_m, area_m2, the 10,000 m² cell target) are right without picking a Gauss–Krüger zone.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import shapely
from pyproj import Transformer
from shapely.geometry.base import BaseGeometry


@cache
def _transformers(lon0: float) -> tuple[Transformer, Transformer]:
    local = f"+proj=tmerc +lat_0=0 +lon_0={lon0} +k=1 +x_0=500000 +y_0=0 +ellps=GRS80 +units=m +no_defs"
    return (Transformer.from_crs("EPSG:4490", local, always_xy=True),
            Transformer.from_crs(local, "EPSG:4490", always_xy=True))


@dataclass(frozen=True)
class Frame:
    """EPSG:4490 ⇄ local metres, for geometries or arrays of them."""

    lon0: float

    @classmethod
    def around(cls, geoms) -> Frame:
        x0, _, x1, _ = shapely.total_bounds(np.asarray(geoms, dtype=object))
        return cls(round((x0 + x1) / 2, 1))  # rounded: nearby data reuses one cached transformer

    def to_m(self, geoms):
        fwd, _ = _transformers(self.lon0)
        return shapely.transform(geoms, lambda c: np.column_stack(fwd.transform(c[:, 0], c[:, 1])))

    def to_deg(self, geoms):
        _, back = _transformers(self.lon0)

        def conv(c: np.ndarray) -> np.ndarray:
            x, y = back.transform(c[:, 0], c[:, 1])
            return np.round(np.column_stack([x, y]), 9)  # ~0.1 mm: stable, comparable output

        return shapely.transform(geoms, conv)


def as_multi(geom: BaseGeometry) -> BaseGeometry:
    """Polygon → MultiPolygon, LineString → MultiLineString (the layers store Multi*)."""
    if geom.geom_type == "Polygon":
        return shapely.MultiPolygon([geom])
    if geom.geom_type == "LineString":
        return shapely.MultiLineString([geom])
    if geom.geom_type == "GeometryCollection":
        polys = [g for g in shapely.get_parts(geom) if g.geom_type in ("Polygon", "MultiPolygon")]
        return as_multi(shapely.union_all(polys)) if polys else shapely.MultiPolygon()
    return geom
