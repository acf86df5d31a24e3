"""Survey deliveries for the 导入 browser tests: a GBK shapefile without ``.cpg`` in EPSG:4547
(the way 焦作's survey companies hand them over), written with GDAL through pyogrio and zipped."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pyproj
import shapely
from pyogrio import raw

TO_4547 = pyproj.Transformer.from_crs(4490, 4547, always_xy=True)


def manhole_zip(folder: Path, name: str, lonlat: list[tuple[float, float]], uses: list[str]) -> Path:
    """A zip of ``name``.shp/.shx/.dbf/.prj: one manhole per point, Chinese values, GBK, no .cpg."""
    n = len(lonlat)
    shp = folder / name / f"{name}.shp"
    shp.parent.mkdir(parents=True, exist_ok=True)
    x, y = TO_4547.transform([p[0] for p in lonlat], [p[1] for p in lonlat])
    fields = {"JCJBH": [f"导入-{i + 1:03d}" for i in range(n)], "YT": uses, "ZT": ["破损"] * n,
              "SZDL": ["丰收路"] * n, "测量员": ["李四"] * n}
    raw.write(shp, shapely.to_wkb(shapely.points(np.column_stack([x, y]))),
              [np.array(v, dtype=object) for v in fields.values()], list(fields),
              driver="ESRI Shapefile", geometry_type="Point", crs="EPSG:4547", encoding="GBK")
    shp.with_suffix(".cpg").unlink(missing_ok=True)   # the encoding must be detected, not read
    out = folder / f"{name}.zip"
    with zipfile.ZipFile(out, "w") as z:
        for part in sorted(shp.parent.iterdir()):
            z.write(part, part.name)
    return out
