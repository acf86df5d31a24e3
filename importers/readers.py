"""Open a delivery and read it in bounded batches.

Accepted: a zip or folder of shapefile parts, a ``.shp`` path, GeoPackage, GeoJSON, CSV and
XLSX with coordinate columns. GDAL (pyogrio's raw numpy API) reads the spatial formats; CSV
and XLSX are streamed in Python because their coordinates follow the Chinese survey
convention (X = northing, Y = easting; DOMAIN.md §7.1), which GDAL's CSV driver does not.

Every reader yields :class:`Batch` objects of at most ``size`` rows, so a 1M-row file never
sits in memory whole.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyogrio
import shapely
from pyogrio import raw as ogr_raw

from importers.archive import ArchiveLimits, extract_zip
from importers.encoding import (
    EncodingGuess,
    decode_field_name,
    detect_dbf_encoding,
    detect_text_encoding,
    read_dbf_field_names,
)
from importers.errors import ImportRefusedError

_FLOAT32, _FLOAT64 = pa.float32(), pa.float64()

Kind = Literal["shapefile", "gpkg", "geojson", "csv", "xlsx"]
XYOrder = Literal["survey", "gis"]

_SUFFIX_KIND: dict[str, Kind] = {".shp": "shapefile", ".gpkg": "gpkg", ".geojson": "geojson", ".json": "geojson",
                                 ".csv": "csv", ".txt": "csv", ".xlsx": "xlsx"}


@dataclass
class Batch:
    start: int                       # 0-based index of the first row in the file
    geoms: np.ndarray                # shapely geometries (None where missing), in the source CRS
    columns: dict[str, list[Any]]    # source column name → Python values

    def __len__(self) -> int:
        return len(self.geoms)


@dataclass
class ReadOptions:
    encoding: str | None = None                 # override the detected text encoding
    layer: str | None = None                    # GeoPackage layer / XLSX sheet / dataset in a folder
    xy_order: XYOrder = "survey"                # X/Y columns: survey = X northing, Y easting
    coord_columns: tuple[str, str] | None = None  # (easting or lon column, northing or lat column)
    limits: ArchiveLimits = field(default_factory=ArchiveLimits)


@dataclass
class Source:
    """One opened dataset: its columns, its CRS text, and a batch iterator."""

    path: Path
    kind: Kind
    columns: list[str]
    count: int | None
    crs_text: str | None
    encoding: EncodingGuess | None
    layer: str | None = None
    notes: list[str] = field(default_factory=list)

    def batches(self, size: int = 50_000) -> Iterator[Batch]:  # pragma: no cover - abstract
        raise NotImplementedError


# -- opening ------------------------------------------------------------------------------

@contextlib.contextmanager
def open_source(path: Path, options: ReadOptions | None = None) -> Iterator[Source]:
    """Open ``path`` (zip, folder, or file); temp files are removed when the block ends."""
    options = options or ReadOptions()
    path = Path(path)
    if not path.exists():
        raise ImportRefusedError(f"{path.name}: no such file or folder")
    with tempfile.TemporaryDirectory(prefix="geoapi-import-") as tmp:
        work = Path(tmp)
        if path.is_file() and path.suffix.lower() == ".zip":
            root = work / "zip"
            root.mkdir()
            extract_zip(path, root, options.limits)
            dataset = find_dataset(root, options.layer, label=path.name)
        elif path.is_dir():
            dataset = find_dataset(path, options.layer, label=path.name)
        else:
            dataset = path
        yield _open_dataset(dataset, options, work)


def find_dataset(root: Path, wanted: str | None, *, label: str) -> Path:
    """The one dataset in a folder; ``wanted`` (a file name or stem) picks among several."""
    found = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in _SUFFIX_KIND
                   and not p.name.startswith("._") and "__MACOSX" not in p.parts)
    if wanted:
        picked = [p for p in found if wanted in (p.name, p.stem)]
        if len(picked) == 1:
            return picked[0]
    if len(found) == 1:
        return found[0]
    names = [str(p.relative_to(root)) for p in found]
    if not found:
        raise ImportRefusedError(f"{label} holds no shapefile, GeoPackage, GeoJSON, CSV or XLSX")
    raise ImportRefusedError(f"{label} holds several datasets {names}; choose one with layer=")


def _open_dataset(path: Path, options: ReadOptions, work: Path) -> Source:
    kind = _SUFFIX_KIND.get(path.suffix.lower())
    if kind is None:
        raise ImportRefusedError(f"{path.name}: unsupported file type {path.suffix!r} "
                                 "(use a zip of shapefile parts, .gpkg, .geojson, .csv or .xlsx)")
    if kind == "shapefile":
        return open_shapefile(path, options, work)
    if kind in ("gpkg", "geojson"):
        return open_ogr(path, kind, options)
    if kind == "csv":
        return CsvSource.open(path, options)
    return XlsxSource.open(path, options)


# -- GDAL-backed ----------------------------------------------------------------------------

@dataclass
class OgrSource(Source):
    gdal_path: Path | None = None
    gdal_encoding: str | None = None
    gdal_names: list[str] = field(default_factory=list)   # names as GDAL sees them, same order

    def batches(self, size: int = 50_000) -> Iterator[Batch]:
        """The rows in batches, read through GDAL's Arrow stream: GDAL fills each batch without
        holding Python's GIL, so the import's writer thread runs meanwhile (pyogrio's row-wise
        ``read`` held it for ~5 s per million rows, a quarter of an import's GIL time)."""
        start = 0
        try:
            # The DBF encoding goes in as the Shapefile driver's ENCODING open option, which
            # belongs to this dataset: pyogrio's ``encoding=`` sets GDAL's process-wide
            # SHAPE_ENCODING for as long as the stream is open (other threads' reads and writes
            # picked it up).
            options = {"ENCODING": self.gdal_encoding} if self.kind == "shapefile" and self.gdal_encoding else {}
            with ogr_raw.open_arrow(self.gdal_path or self.path, layer=self.layer, batch_size=size,
                                    use_pyarrow=True, **options) as (meta, reader):
                geometry = meta["geometry_name"] or "wkb_geometry"
                while True:
                    try:
                        batch = reader.read_next_batch()
                    except StopIteration:
                        return
                    n = batch.num_rows
                    if n == 0:
                        continue
                    names = batch.schema.names
                    wkb = batch.column(geometry).to_numpy(zero_copy_only=False) if geometry in names else None
                    geoms = shapely.from_wkb(wkb, on_invalid="ignore") if wkb is not None else np.full(n, None)
                    fields = [name for name in names if name != geometry and name != meta["fid_column"]]
                    cols = {name: _values(batch.column(gdal))
                            for name, gdal in zip(self.columns, fields, strict=True)}
                    yield Batch(start, np.asarray(geoms, dtype=object), cols)
                    start += n
        except Exception as exc:  # pyogrio raises DataSourceError, UnicodeDecodeError, …
            raise ImportRefusedError(f"{self.path.name}: cannot read rows from {start + 1}: {exc}") from exc


def _values(column: Any) -> list[Any]:
    """An Arrow column as Python values, NULL as None (NaN too: a number GDAL could not read)."""
    values = column.to_pylist()
    if column.type in (_FLOAT32, _FLOAT64):
        return [None if v != v else v for v in values]
    return values


def open_shapefile(shp: Path, options: ReadOptions, work: Path) -> OgrSource:
    parts = {p.suffix.lower(): p for p in shp.parent.iterdir() if p.stem == shp.stem}
    missing = [s for s in (".shx", ".dbf") if s not in parts]
    if missing:
        raise ImportRefusedError(f"{shp.name}: the shapefile parts {missing} are missing "
                                 "(a shapefile needs .shp, .shx and .dbf together)")
    dbf = parts[".dbf"]
    guess = detect_dbf_encoding(dbf, options.encoding)
    raw_names = read_dbf_field_names(dbf)
    names = _unique([decode_field_name(n, guess.encoding) for n in raw_names])
    gdal_path, gdal_names = shp, names
    if any(b >= 0x80 for n in raw_names for b in n):
        # GDAL/pyogrio fail on names cut inside a multibyte character, so they get a copy of
        # the DBF with ASCII placeholder names; the decoded names above are the real ones.
        gdal_path = _ascii_named_copy(parts, work)
        gdal_names = [f"F_{i + 1}" for i in range(len(raw_names))]
    try:
        info = pyogrio.read_info(gdal_path, encoding=guess.encoding)
    except Exception as exc:
        raise ImportRefusedError(f"{shp.name}: not a readable shapefile: {exc}") from exc
    prj = parts.get(".prj")
    crs_text = prj.read_bytes().decode("utf-8", "replace").strip() if prj else None
    return OgrSource(path=shp, kind="shapefile", columns=names, count=int(info["features"]),
                     crs_text=crs_text or None, encoding=guess, gdal_path=gdal_path,
                     gdal_encoding=guess.encoding, gdal_names=gdal_names)


def _ascii_named_copy(parts: dict[str, Path], work: Path) -> Path:
    target = work / "dbf"
    target.mkdir(exist_ok=True)
    for suffix in (".shp", ".shx"):
        os.symlink(parts[suffix].resolve(), target / f"data{suffix}")
    with open(parts[".dbf"], "rb") as src, open(target / "data.dbf", "wb") as out:
        header = bytearray(src.read(32))
        header_len = int.from_bytes(header[8:10], "little")
        desc = bytearray(src.read(header_len - 32))
        i = 0
        for off in range(0, len(desc) - 31, 32):
            if desc[off] == 0x0D:
                break
            i += 1
            desc[off:off + 11] = f"F_{i}".encode("ascii").ljust(11, b"\x00")
        header[29] = 0  # the LDID is ours to interpret, not GDAL's
        out.write(header)
        out.write(desc)
        shutil.copyfileobj(src, out, 1 << 20)
    return target / "data.shp"


def open_ogr(path: Path, kind: Kind, options: ReadOptions) -> OgrSource:
    try:
        layers = pyogrio.list_layers(path)
    except Exception as exc:
        raise ImportRefusedError(f"{path.name}: not a readable {kind} file: {exc}") from exc
    spatial = [str(name) for name, gtype in layers if gtype]
    if options.layer and options.layer in [str(n) for n, _ in layers]:
        layer = options.layer
    elif len(spatial) == 1:
        layer = spatial[0]
    else:
        raise ImportRefusedError(f"{path.name} has {len(spatial)} geometry layers {spatial}; choose one with layer=")
    info = pyogrio.read_info(path, layer=layer)
    names = [str(n) for n in info["fields"]]
    return OgrSource(path=path, kind=kind, columns=names, count=int(info["features"]),
                     crs_text=info["crs"], encoding=EncodingGuess("utf-8", "format", f"{kind} is UTF-8"),
                     layer=layer, gdal_names=names)


def _unique(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for n in names:
        if n in seen:
            seen[n] += 1
            n = f"{n}_{seen[n]}"
        seen.setdefault(n, 0)
        out.append(n)
    return out


# -- tables with coordinate columns ------------------------------------------------------------

# Column names that hold coordinates, lower-cased. "x"/"y" follow the survey convention.
_LON = ("lon", "lng", "long", "longitude", "经度", "jd")
_LAT = ("lat", "latitude", "纬度", "wd")
_EAST = ("easting", "east", "e", "东坐标", "横坐标")
_NORTH = ("northing", "north", "n", "北坐标", "纵坐标")
_X = ("x", "xzb", "x坐标", "x_coord", "坐标x")
_Y = ("y", "yzb", "y坐标", "y_coord", "坐标y")


def coordinate_columns(columns: list[str], options: ReadOptions) -> tuple[str, str, str]:
    """(easting/lon column, northing/lat column, how they were chosen)."""
    if options.coord_columns:
        e, n = options.coord_columns
        absent = [c for c in (e, n) if c not in columns]
        if absent:
            raise ImportRefusedError(f"coordinate columns {absent} are not in the table (it has {columns})")
        return e, n, "given"
    lower = {c.strip().lower(): c for c in columns}

    def pick(cands: tuple[str, ...]) -> str | None:
        return next((lower[c] for c in cands if c in lower), None)

    lon, lat = pick(_LON), pick(_LAT)
    if lon and lat:
        return lon, lat, "longitude/latitude columns"
    east, north = pick(_EAST), pick(_NORTH)
    if east and north:
        return east, north, "easting/northing columns"
    x, y = pick(_X), pick(_Y)
    if x and y:
        if options.xy_order == "survey":
            return y, x, "X/Y columns, survey convention (X = northing, Y = easting)"
        return x, y, "X/Y columns, GIS convention (X = easting, Y = northing)"
    raise ImportRefusedError(
        f"no coordinate columns found among {columns}; expected X/Y (X = northing), 经度/纬度, "
        "lon/lat or easting/northing, or give coord_columns=")


def _points(east: list[Any], north: list[Any]) -> np.ndarray:
    e, n = _floats(east), _floats(north)
    pts = shapely.points(e, n)
    pts[~(np.isfinite(e) & np.isfinite(n))] = None
    return pts


def _floats(values: list[Any]) -> np.ndarray:
    out = np.full(len(values), np.nan)
    for i, v in enumerate(values):
        if v is None:
            continue
        try:
            out[i] = float(str(v).strip().replace(",", "")) if not isinstance(v, int | float) else float(v)
        except ValueError:
            pass
    return out


@dataclass
class _TableSource(Source):
    east_col: str = ""
    north_col: str = ""
    header: list[str] = field(default_factory=list)

    def _rows(self) -> Iterator[list[Any]]:  # pragma: no cover - abstract
        raise NotImplementedError

    def batches(self, size: int = 50_000) -> Iterator[Batch]:
        ie, in_ = self.header.index(self.east_col), self.header.index(self.north_col)
        keep = [(self.header.index(c), c) for c in self.columns]
        start, chunk = 0, []
        for row in self._rows():
            chunk.append(row)
            if len(chunk) == size:
                yield self._batch(start, chunk, ie, in_, keep)
                start, chunk = start + size, []
        if chunk:
            yield self._batch(start, chunk, ie, in_, keep)

    def _batch(self, start: int, rows: list[list[Any]], ie: int, in_: int, keep: list[tuple[int, str]]) -> Batch:
        def col(i: int) -> list[Any]:
            return [r[i] if i < len(r) else None for r in rows]
        cols = {name: col(i) for i, name in keep}
        return Batch(start, _points(col(ie), col(in_)), cols)


def _table_columns(header: list[str], options: ReadOptions) -> tuple[str, str, str, list[str]]:
    e, n, how = coordinate_columns(header, options)
    return e, n, how, [c for c in header if c not in (e, n) and c.strip()]


@dataclass
class CsvSource(_TableSource):
    delimiter: str = ","

    @classmethod
    def open(cls, path: Path, options: ReadOptions) -> CsvSource:
        guess = detect_text_encoding(path, options.encoding)
        with open(path, encoding=guess.encoding, newline="") as f:
            sample = f.read(64 * 1024)
        try:
            delimiter = csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
        except csv.Error:
            delimiter = ","
        header = next(csv.reader(io.StringIO(sample), delimiter=delimiter), [])
        header = _unique([h.strip() for h in header])
        e, n, how, cols = _table_columns(header, options)
        return cls(path=path, kind="csv", columns=cols, count=None, crs_text=None, encoding=guess,
                   notes=[f"coordinates from {e!r} (easting/lon) and {n!r} (northing/lat): {how}"],
                   east_col=e, north_col=n, header=header, delimiter=delimiter)

    def _rows(self) -> Iterator[list[Any]]:
        assert self.encoding is not None
        with open(self.path, encoding=self.encoding.encoding, newline="") as f:
            reader = csv.reader(f, delimiter=self.delimiter)
            next(reader, None)
            yield from reader


@dataclass
class XlsxSource(_TableSource):
    @classmethod
    def open(cls, path: Path, options: ReadOptions) -> XlsxSource:
        import openpyxl

        try:
            wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
        except Exception as exc:
            raise ImportRefusedError(f"{path.name}: not a readable XLSX workbook: {exc}") from exc
        try:
            sheet = options.layer if options.layer in wb.sheetnames else wb.sheetnames[0]
            ws = wb[sheet]
            first = next(ws.iter_rows(max_row=1, values_only=True), ())
            count = (ws.max_row - 1) if ws.max_row else None
        finally:
            wb.close()
        header = _unique([str(h).strip() if h is not None else "" for h in first])
        e, n, how, cols = _table_columns(header, options)
        return cls(path=path, kind="xlsx", columns=cols, count=count, crs_text=None,
                   encoding=EncodingGuess("utf-8", "format", "XLSX is Unicode"), layer=sheet,
                   notes=[f"coordinates from {e!r} (easting/lon) and {n!r} (northing/lat): {how}"],
                   east_col=e, north_col=n, header=header)

    def _rows(self) -> Iterator[list[Any]]:
        import openpyxl

        wb = openpyxl.load_workbook(self.path, read_only=True, data_only=True)
        try:
            rows = wb[self.layer].iter_rows(min_row=2, values_only=True)
            for row in rows:
                if any(v is not None for v in row):
                    yield list(row)
        finally:
            wb.close()
