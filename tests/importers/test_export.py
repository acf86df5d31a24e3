"""Exports (GeoJSON, GeoPackage, GBK shapefile, CSV) and their round trip through the importer."""

from __future__ import annotations

import csv
import io
import json
import zipfile

import numpy as np
import pyogrio
import pytest
import shapely

from geoapi.storage import FeatureQuery
from importers import ImportOptions, run_import
from importers.export import dbf_field_names, export_layer

from .conftest import lonlat_points

ROW_USES = ["雨水", "污水", "给水", "电力"]


@pytest.fixture
def loaded(store):
    """Four manholes with Chinese text, a float, a bool, a date and a null."""
    pts = lonlat_points(4, seed=4)
    for i, (lon, lat) in enumerate(pts):
        store.create("manholes", {"well_use": ROW_USES[i], "cover_no": f"省-{i}", "road_name": "塔南路",
                                  "cover_material": "球墨铸铁" if i % 2 else None, "well_depth_m": 1.5 + i,
                                  "on_blind_path": bool(i % 2), "or_date": "2023-05-0" + str(i + 1)},
                     shapely.Point(lon, lat), actor="t")
    return store


def _comparable(store) -> list[tuple]:
    feats = sorted(store.query("manholes", FeatureQuery(limit=100)).features, key=lambda f: f.props["cover_no"])
    keep = ("cover_no", "well_use", "road_name", "cover_material", "well_depth_m", "on_blind_path", "or_date",
            "obj_code", "status", "admin_code")
    return [(tuple(f.props[k] for k in keep), round(f.geometry.x, 7), round(f.geometry.y, 7)) for f in feats]


def test_gbk_shapefile_round_trip(loaded, tmp_path):
    before = _comparable(loaded)
    result = export_layer(loaded, "manholes", tmp_path / "manholes.zip", "shp", encoding="gbk", crs="EPSG:4547")
    assert result.count == 4
    with zipfile.ZipFile(result.path) as z:
        names = set(z.namelist())
        assert {"manholes.shp", "manholes.shx", "manholes.dbf", "manholes.prj", "manholes.cpg", "README.md"} <= names
        assert z.read("manholes.cpg").decode() == "GBK"
        assert z.read("manholes.dbf")[29] == 0x4D                    # CP936 for desktop GIS without .cpg
        readme = z.read("README.md").decode("utf-8")
        assert "| JCJBH | cover_no | 井盖编号 |" in readme
    assert all(len(n.encode("gbk")) <= 10 for n in result.field_names.values())
    for f in loaded.query("manholes", FeatureQuery(limit=100)).features:
        loaded.delete("manholes", f.id, actor="t")
    report = run_import(loaded, result.path, ImportOptions(layer="manholes"))
    assert report.state == "done" and report.imported == 4, (report.rejected, report.notes)
    assert report.provenance.encoding["encoding"].lower() in ("gbk", "cp936", "gb18030")
    assert report.unmapped_columns == []
    assert _comparable(loaded) == before


def test_dbf_names_are_unique_and_short(registry):
    for layer in registry:
        names = dbf_field_names(layer, "gbk")
        assert len(set(n.upper() for n in names.values())) == len(names), layer.id
        assert all(0 < len(n.encode("gbk")) <= 10 for n in names.values()), layer.id


def test_geopackage_and_geojson_keep_values_and_coordinates(loaded, tmp_path):
    gpkg = export_layer(loaded, "manholes", tmp_path / "m.gpkg", "gpkg")
    meta, _, geoms, fields = pyogrio.raw.read(gpkg.path)
    assert meta["crs"] == "EPSG:4490" and len(geoms) == 4
    cols = dict(zip(meta["fields"], fields, strict=True))
    assert sorted(cols["cover_no"]) == [f"省-{i}" for i in range(4)]
    gj = export_layer(loaded, "manholes", tmp_path / "m.geojson", "geojson", crs="EPSG:4326")
    doc = json.loads(gj.path.read_text(encoding="utf-8"))
    assert len(doc["features"]) == 4 and "crs" not in doc
    feat = min(doc["features"], key=lambda f: f["properties"]["cover_no"])
    assert feat["properties"]["road_name"] == "塔南路" and feat["properties"]["or_date"] == "2023-05-01"
    assert np.allclose(feat["geometry"]["coordinates"], lonlat_points(4, seed=4)[0])


def test_csv_has_lon_lat_and_re_imports(loaded, tmp_path):
    before = _comparable(loaded)
    out = export_layer(loaded, "manholes", tmp_path / "m.csv", "csv")
    raw = out.path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert len(rows) == 4 and {"lon", "lat", "well_use"} <= set(rows[0])
    for f in loaded.query("manholes", FeatureQuery(limit=100)).features:
        loaded.delete("manholes", f.id, actor="t")
    report = run_import(loaded, out.path, ImportOptions(layer="manholes"))
    assert report.imported == 4, report.rejected
    assert _comparable(loaded) == before


def test_items_download_over_http(client, loaded):
    r = client.get("/collections/manholes/items", params={"f": "shp"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    assert "manholes.zip" in r.headers["content-disposition"]
    assert "manholes.dbf" in zipfile.ZipFile(io.BytesIO(r.content)).namelist()
    r = client.get("/collections/manholes/items", params={"f": "csv", "well_use": "雨水"})
    lines = r.content.decode("utf-8-sig").strip().splitlines()
    assert r.status_code == 200 and len(lines) == 2 and "雨水" in lines[1]
    r = client.get("/collections/manholes/items", params={"f": "gpkg"})
    assert r.status_code == 200 and r.content[:16] == b"SQLite format 3\x00"
    assert client.get("/collections/manholes/items", params={"f": "kml"}).status_code == 400


def test_unknown_output_crs_is_a_clear_error(loaded, tmp_path):
    from geoapi.errors import BadRequestError

    with pytest.raises(BadRequestError, match="unknown output CRS"):
        export_layer(loaded, "manholes", tmp_path / "x.gpkg", "gpkg", crs="EPSG:999999")
