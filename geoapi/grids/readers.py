"""Read roads, 社区 boundaries and grids from a file (shapefile, GeoPackage, GeoJSON) with pyogrio."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyproj
import shapely
from pyogrio import raw

from geoapi.errors import BadRequestError

STORED_CRS = pyproj.CRS.from_epsg(4490)


def read_file(path: Path, *, encoding: str | None = None) -> list[tuple[dict[str, Any], Any]]:
    """Rows ``(props, geometry in EPSG:4490)``; a file without a CRS must already be lon/lat."""
    if not path.exists():
        raise BadRequestError(f"{path}: no such file")
    try:
        meta, _, wkb, columns = raw.read(path, encoding=encoding)
    except Exception as exc:  # pyogrio raises DataSourceError / DataLayerError …
        raise BadRequestError(f"{path}: cannot read it ({exc})") from exc
    geoms = shapely.from_wkb(wkb)
    crs = pyproj.CRS.from_user_input(meta["crs"]) if meta.get("crs") else None
    if crs is None:
        x0, y0, x1, y1 = shapely.total_bounds(geoms)
        if not (-180 <= x0 <= x1 <= 180 and -90 <= y0 <= y1 <= 90):
            raise BadRequestError(f"{path}: no .prj / CRS and the coordinates are not lon/lat; add the .prj")
    elif not crs.equals(STORED_CRS) and not crs.equals(pyproj.CRS.from_epsg(4326)):
        t = pyproj.Transformer.from_crs(crs, STORED_CRS, always_xy=True)
        geoms = shapely.transform(geoms, lambda c: np.column_stack(t.transform(c[:, 0], c[:, 1])))
    names = list(meta["fields"])
    rows = []
    for i, g in enumerate(geoms):
        props = {n: (v.item() if hasattr(v, "item") else v) for n, v in ((n, columns[k][i]) for k, n in enumerate(names))}
        rows.append((props, g))
    return rows


def pick_field(names: list[str], wanted: str | None, candidates: tuple[str, ...], what: str,
               required: bool = True) -> str | None:
    """The column to use: the one asked for, else the first known alias present (case-insensitive)."""
    upper = {n.upper(): n for n in names}
    if wanted:
        if wanted.upper() not in upper:
            raise BadRequestError(f"no field {wanted!r} for {what}; the file has: {', '.join(names)}")
        return upper[wanted.upper()]
    for c in candidates:
        if c.upper() in upper:
            return upper[c.upper()]
    if required:
        raise BadRequestError(f"cannot tell which field holds the {what} (tried {', '.join(candidates)}); "
                              f"name it with an option; the file has: {', '.join(names)}")
    return None
