"""Export a layer for round trips: GeoJSON, GeoPackage, shapefile (zipped) or CSV.

Rows are read from the store in id order, a chunk at a time, and written as they come, so an
export never holds the layer in memory. The shapefile is what old desktop GIS expects of a
Chinese delivery: a ``.cpg`` naming the encoding (GBK by choice) and the DBF language byte
set to match, field names of at most 10 bytes (the field's first alias that fits — the DBF
names DOMAIN.md §8.2 lists — else the name cut), and a ``README.md`` in the zip mapping each
DBF name back to the field and its 中文 label. Re-importing the zip maps the columns back
through the same aliases.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyproj
import shapely
import sqlalchemy as sa
from pyogrio import raw

from geoapi.errors import BadRequestError
from geoapi.storage.model import Feature
from importers import offsets
from layers.spec import FieldSpec, LayerSpec

FORMATS = ("geojson", "gpkg", "shp", "csv")
MEDIA_TYPES = {"geojson": "application/geo+json", "gpkg": "application/geopackage+sqlite3",
               "shp": "application/zip", "csv": "text/csv; charset=utf-8"}
SUFFIXES = {"geojson": ".geojson", "gpkg": ".gpkg", "shp": ".zip", "csv": ".csv"}
DBF_NAME_BYTES = 10
_CHUNK = 5000
# DBF byte 29 (language driver id) for the encodings old GIS read from it rather than from .cpg.
_LDID = {"gbk": 0x4D, "cp936": 0x4D, "gb2312": 0x4D, "gb18030": 0x4D, "big5": 0x78, "cp950": 0x78}


@dataclass
class ExportResult:
    path: Path
    format: str
    count: int
    crs: str
    field_names: dict[str, str] = field(default_factory=dict)   # shapefile: field → DBF name


# -- reading -------------------------------------------------------------------------------------

def iter_features(store: Any, layer_id: str, chunk: int = _CHUNK) -> Iterator[list[Feature]]:
    """Every feature of a layer in id order, ``chunk`` at a time (keyset paging)."""
    t = store.table(layer_id)
    last = 0
    while True:
        stmt = sa.select(*store.select_columns(layer_id)).where(t.c.id > last).order_by(t.c.id).limit(chunk)
        with store.read() as conn:
            features = store.rows_to_features(layer_id, conn.execute(stmt))
        if not features:
            return
        yield features
        last = features[-1].id


# -- coordinates ---------------------------------------------------------------------------------

def geometry_mapper(crs: str | None):
    """A vectorised EPSG:4490 → ``crs`` for shapely arrays, and the CRS to declare in the file."""
    key = (crs or "EPSG:4490").strip().upper().replace("_", "-")
    if key in ("EPSG:4490", "CGCS2000", "4490", "EPSG:4326", "CRS84", "WGS84"):
        # CGCS2000 and WGS 84 agree to decimetres: no transformation, as docs/architecture.md says.
        return (lambda g: g), ("EPSG:4326" if key in ("EPSG:4326", "CRS84", "WGS84") else "EPSG:4490")
    if key in ("GCJ-02", "GCJ02", "BD-09", "BD09"):
        fwd = offsets.wgs84_to_gcj02 if key.startswith("GCJ") else offsets.wgs84_to_bd09

        def web(g: np.ndarray) -> np.ndarray:
            return shapely.transform(g, lambda c: np.column_stack(fwd(c[:, 0], c[:, 1])))
        return web, "EPSG:4326"
    try:
        target = pyproj.CRS.from_user_input(f"EPSG:{key}" if key.isdigit() else crs)
    except pyproj.exceptions.CRSError as exc:
        raise BadRequestError(f"unknown output CRS {crs!r}: use EPSG:nnnn (EPSG:4547 …), GCJ-02 or BD-09") from exc
    tr = pyproj.Transformer.from_crs(4490, target, always_xy=True)

    def project(g: np.ndarray) -> np.ndarray:
        def fn(c: np.ndarray) -> np.ndarray:
            out = c.copy()
            out[:, 0], out[:, 1] = tr.transform(c[:, 0], c[:, 1])
            return out
        return shapely.transform(g, fn, include_z=None)
    epsg = target.to_epsg()
    return project, f"EPSG:{epsg}" if epsg else target.to_wkt()


# -- values --------------------------------------------------------------------------------------

def _text(v: Any) -> Any:
    if v is None:
        return None
    if isinstance(v, dt.date | dt.datetime):
        return v.isoformat()
    if isinstance(v, list | dict):
        return json.dumps(v, ensure_ascii=False)
    return v


def _column(spec: FieldSpec, values: list[Any]) -> tuple[np.ndarray, np.ndarray | None]:
    """A field's values as a typed array and a null mask (GDAL writes masked entries as NULL)."""
    mask = np.array([v is None for v in values], dtype=bool)
    if spec.type == "int":
        return np.array([0 if v is None else int(v) for v in values], dtype="int64"), mask
    if spec.type == "float":
        return np.array([np.nan if v is None else float(v) for v in values], dtype="float64"), mask
    if spec.type == "bool":
        return np.array([bool(v) for v in values], dtype=bool), mask
    return np.array([_text(v) for v in values], dtype=object), mask


def dbf_field_names(layer: LayerSpec, encoding: str) -> dict[str, str]:
    """field → a unique DBF name of ≤ 10 bytes: the first alias that fits, else the name cut."""
    used: set[str] = set()
    out: dict[str, str] = {}
    for spec in layer.all_fields:
        candidates = [a for a in spec.aliases if _fits(a, encoding)] + [spec.name]
        name = next((c for c in candidates if c.upper() not in used), None)
        if name is None or not _fits(name, encoding):
            name = _cut(spec.name, encoding)
            stem, n = name, 1
            while name.upper() in used:
                suffix = str(n)
                name, n = _cut(stem, encoding, DBF_NAME_BYTES - len(suffix)) + suffix, n + 1
        used.add(name.upper())
        out[spec.name] = name
    return out


def _fits(name: str, encoding: str) -> bool:
    try:
        return len(name.encode(encoding)) <= DBF_NAME_BYTES
    except UnicodeEncodeError:
        return False


def _cut(name: str, encoding: str, limit: int = DBF_NAME_BYTES) -> str:
    out = ""
    for ch in name:
        if len((out + ch).encode(encoding, errors="replace")) > limit:
            break
        out += ch
    return out


# -- writing -------------------------------------------------------------------------------------

def export_layer(store: Any, layer_id: str, out: Path, fmt: str, *, crs: str | None = None,
                 encoding: str | None = None, chunks: Iterable[list[Feature]] | None = None) -> ExportResult:
    """Write the layer (or the given feature ``chunks``) to ``out`` in ``fmt``."""
    if fmt not in FORMATS:
        raise BadRequestError(f"format must be one of {', '.join(FORMATS)}; got {fmt!r}")
    layer = store.layer(layer_id)
    if encoding:
        try:
            "".encode(encoding)
        except LookupError as exc:
            raise BadRequestError(f"unknown encoding {encoding!r} (try gbk or utf-8)") from exc
    mapper, crs_out = geometry_mapper(crs)
    chunks = chunks if chunks is not None else iter_features(store, layer_id)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    writer = {"geojson": _write_geojson, "gpkg": _write_gpkg, "shp": _write_shapefile, "csv": _write_csv}[fmt]
    return writer(layer, chunks, out, mapper=mapper, crs=crs_out, encoding=encoding)


def _prepared(layer: LayerSpec, chunks: Iterable[list[Feature]], mapper) -> Iterator[tuple[list[Feature], np.ndarray]]:
    for features in chunks:
        if features:
            yield features, mapper(np.array([f.geometry for f in features], dtype=object))


def _write_geojson(layer, chunks, out: Path, *, mapper, crs: str, encoding: str | None) -> ExportResult:
    count = 0
    with open(out, "w", encoding="utf-8") as f:
        f.write('{"type":"FeatureCollection","name":' + json.dumps(layer.id))
        if crs not in ("EPSG:4326",):
            f.write(',"crs":{"type":"name","properties":{"name":' + json.dumps(_ogc_crs_name(crs)) + "}}")
        f.write(',"features":[')
        for features, geoms in _prepared(layer, chunks, mapper):
            for feat, g in zip(features, shapely.to_geojson(geoms), strict=True):
                props = {k: _text(v) for k, v in feat.props.items()}
                f.write(("," if count else "") + '{"type":"Feature","id":' + str(feat.id) + ',"properties":'
                        + json.dumps(props, ensure_ascii=False) + ',"geometry":' + g + "}")
                count += 1
        f.write("]}\n")
    return ExportResult(out, "geojson", count, crs)


def _ogc_crs_name(crs: str) -> str:
    return "urn:ogc:def:crs:" + crs.replace(":", "::") if crs.startswith("EPSG:") else crs


def _ogr_write(layer: LayerSpec, chunks, path: Path, *, mapper, crs: str, driver: str,
               names: dict[str, str], encoding: str | None) -> int:
    """Write through GDAL chunk by chunk (append after the first); returns the feature count."""
    specs = layer.all_fields
    gtype = layer.geometry + (" Z" if layer.has_z else "")
    count = 0
    for features, geoms in _prepared(layer, chunks, mapper):
        arrays, masks = zip(*[_column(s, [f.props.get(s.name) for f in features]) for s in specs], strict=True)
        raw.write(path, shapely.to_wkb(geoms, flavor="iso"), list(arrays), [names[s.name] for s in specs],
                  field_mask=list(masks), driver=driver, geometry_type=gtype, crs=crs, encoding=encoding,
                  layer=layer.id if driver == "GPKG" else None, promote_to_multi=False, append=count > 0)
        count += len(features)
    if count == 0:   # an empty layer still gets its schema
        raw.write(path, np.array([], dtype=object), [np.array([], dtype=object) for _ in specs],
                  [names[s.name] for s in specs], driver=driver, geometry_type=gtype, crs=crs, encoding=encoding,
                  layer=layer.id if driver == "GPKG" else None)
    return count


def _write_gpkg(layer, chunks, out: Path, *, mapper, crs: str, encoding: str | None) -> ExportResult:
    out.unlink(missing_ok=True)
    names = {s.name: s.name for s in layer.all_fields}
    count = _ogr_write(layer, chunks, out, mapper=mapper, crs=crs, driver="GPKG", names=names, encoding=None)
    return ExportResult(out, "gpkg", count, crs)


def _write_shapefile(layer, chunks, out: Path, *, mapper, crs: str, encoding: str | None) -> ExportResult:
    encoding = encoding or "UTF-8"
    names = dbf_field_names(layer, encoding)
    with tempfile.TemporaryDirectory(prefix="geoapi-export-") as tmp:
        shp = Path(tmp) / f"{layer.id}.shp"
        count = _ogr_write(layer, chunks, shp, mapper=mapper, crs=crs, driver="ESRI Shapefile", names=names,
                           encoding=encoding)
        shp.with_suffix(".cpg").write_text(encoding.upper(), encoding="ascii")
        ldid = _LDID.get(encoding.lower().replace("-", ""))
        if ldid is not None:
            with open(shp.with_suffix(".dbf"), "r+b") as dbf:
                dbf.seek(29)
                dbf.write(bytes([ldid]))
        readme = Path(tmp) / "README.md"
        readme.write_text(_field_map(layer, names, encoding, crs), encoding="utf-8")
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
            for part in sorted(Path(tmp).iterdir()):
                z.write(part, part.name)
    return ExportResult(out, "shp", count, crs, field_names=names)


def _field_map(layer: LayerSpec, names: dict[str, str], encoding: str, crs: str) -> str:
    lines = [f"# {layer.title} ({layer.id})", "",
             f"Shapefile exported by geoapi; DBF encoding {encoding} (see the .cpg), CRS {crs}.",
             "DBF field names are at most 10 bytes; this table maps them back.", "",
             "| DBF | field | 中文 |", "|---|---|---|"]
    lines += [f"| {names[s.name]} | {s.name} | {s.label} |" for s in layer.all_fields]
    return "\n".join(lines) + "\n"


def _write_csv(layer, chunks, out: Path, *, mapper, crs: str, encoding: str | None) -> ExportResult:
    """Points as two coordinate columns (lon/lat, or easting/northing when projected); else WKT."""
    encoding = encoding or "utf-8-sig"   # the BOM lets Excel open 中文 correctly
    points = layer.geometry == "Point"
    geographic = crs in ("EPSG:4490", "EPSG:4326")
    coord_cols = (["lon", "lat"] if geographic else ["easting", "northing"]) if points else ["wkt"]
    if points and layer.has_z:
        coord_cols.append("z")
    specs = layer.all_fields
    count = 0
    with open(out, "w", encoding=encoding, errors="replace", newline="") as f:
        w = csv.writer(f)
        w.writerow([*[s.name for s in specs], *coord_cols])
        for features, geoms in _prepared(layer, chunks, mapper):
            if points:
                xyz = shapely.get_coordinates(geoms, include_z=layer.has_z)
                coords = [[_num(v) for v in row] for row in xyz]
            else:
                coords = [[g] for g in shapely.to_wkt(geoms, rounding_precision=-1)]
            for feat, c in zip(features, coords, strict=True):
                w.writerow([*[_csv_value(feat.props.get(s.name)) for s in specs], *c])
                count += 1
    return ExportResult(out, "csv", count, crs)


def _num(v: float) -> str:
    return "" if np.isnan(v) else repr(float(v))


def _csv_value(v: Any) -> Any:
    v = _text(v)
    return "" if v is None else v
