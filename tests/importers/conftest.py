"""Fixtures for the importer tests: deliveries written with GDAL (pyogrio) into tmp_path.

Each fixture reproduces one way real survey deliveries go wrong (DOMAIN.md §7–8): GBK DBFs
without ``.cpg``, names cut at 10 bytes, zone-prefixed eastings, missing ``.prj`` …
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyproj
import pytest
import shapely
from pyogrio import raw

from layers import load_registry

# Jiaozuo centre: 113.24E 35.22N ≈ EPSG:4547 E 430 806 / N 3 899 265 (DOMAIN.md §7.2).
JIAOZUO = (113.24, 35.22)
TO_4547 = pyproj.Transformer.from_crs(4490, 4547, always_xy=True)
TO_4526 = pyproj.Transformer.from_crs(4490, 4526, always_xy=True)

ESRI_CM_114E = (
    'PROJCS["CGCS2000_3_Degree_GK_CM_114E",GEOGCS["GCS_China_Geodetic_Coordinate_System_2000",'
    'DATUM["D_China_2000",SPHEROID["CGCS2000",6378137.0,298.257222101]],PRIMEM["Greenwich",0.0],'
    'UNIT["Degree",0.0174532925199433]],PROJECTION["Gauss_Kruger"],PARAMETER["False_Easting",500000.0],'
    'PARAMETER["False_Northing",0.0],PARAMETER["Central_Meridian",114.0],PARAMETER["Scale_Factor",1.0],'
    'PARAMETER["Latitude_Of_Origin",0.0],UNIT["Meter",1.0]]'
)


def lonlat_points(n: int, seed: int = 1) -> np.ndarray:
    """n points scattered around Jiaozuo centre (±0.02°), lon/lat in EPSG:4490."""
    rng = np.random.default_rng(seed)
    return np.column_stack([JIAOZUO[0] + rng.uniform(-0.02, 0.02, n), JIAOZUO[1] + rng.uniform(-0.02, 0.02, n)])


def write_shapefile(path: Path, geoms: list | np.ndarray, fields: dict[str, list[Any]], *,
                    crs: str | None = "EPSG:4547", encoding: str = "UTF-8", cpg: bool = True,
                    prj: str | bool = True, ldid: int | None = None, geometry_type: str | None = None) -> Path:
    """Write a shapefile with GDAL; then remove or rewrite the parts a delivery got wrong."""
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = []
    for values in fields.values():
        kind = "float64" if all(isinstance(v, float | int) and not isinstance(v, bool) for v in values) else object
        arrays.append(np.array(values, dtype=kind))
    geoms = np.asarray(geoms, dtype=object)
    gtype = geometry_type or geoms[0].geom_type
    if shapely.has_z(geoms[0]) and not str(gtype).endswith(" Z"):
        gtype = f"{gtype} Z"
    raw.write(path, shapely.to_wkb(geoms), arrays, list(fields), driver="ESRI Shapefile",
              geometry_type=gtype, crs=crs, encoding=encoding)
    if not cpg:
        path.with_suffix(".cpg").unlink(missing_ok=True)
    if prj is False:
        path.with_suffix(".prj").unlink(missing_ok=True)
    elif isinstance(prj, str):
        path.with_suffix(".prj").write_text(prj)
    if ldid is not None:
        dbf = path.with_suffix(".dbf")
        data = bytearray(dbf.read_bytes())
        data[29] = ldid
        dbf.write_bytes(bytes(data))
    return path


def projected(lonlat: np.ndarray, transformer: pyproj.Transformer) -> np.ndarray:
    x, y = transformer.transform(lonlat[:, 0], lonlat[:, 1])
    return np.column_stack([x, y])


@pytest.fixture(scope="session")
def registry():
    return load_registry()


@pytest.fixture(scope="session")
def manholes(registry):
    return registry["manholes"]


@pytest.fixture(scope="session")
def pipes(registry):
    return registry["pipes"]


@pytest.fixture
def make_shapefile(tmp_path) -> Callable[..., Path]:
    def make(name: str, geoms, fields, **kw) -> Path:
        return write_shapefile(tmp_path / name / f"{name}.shp", geoms, fields, **kw)
    return make
