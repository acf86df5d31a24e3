"""Opening deliveries: shapefile folders and zips, GeoPackage, GeoJSON, CSV and XLSX, in batches."""

from __future__ import annotations

import zipfile

import numpy as np
import openpyxl
import pytest
import shapely
from pyogrio import raw

from importers.errors import ImportRefusedError
from importers.readers import ReadOptions, open_source

from .conftest import TO_4547, lonlat_points, projected


def test_batches_stay_bounded_and_cover_every_row(make_shapefile):
    xy = projected(lonlat_points(23), TO_4547)
    shp = make_shapefile("many", shapely.points(xy), {"JCJBH": [f"J{i}" for i in range(23)]})
    with open_source(shp) as src:
        assert src.count == 23
        batches = list(src.batches(size=10))
    assert [len(b) for b in batches] == [10, 10, 3]
    assert [b.start for b in batches] == [0, 10, 20]
    assert batches[2].columns["JCJBH"] == ["J20", "J21", "J22"]
    np.testing.assert_allclose(shapely.get_coordinates(batches[1].geoms), xy[10:20])


def test_zip_with_a_folder_inside(make_shapefile, tmp_path):
    shp = make_shapefile("inzip", shapely.points(projected(lonlat_points(2), TO_4547)), {"JCJBH": ["A", "B"]})
    z = tmp_path / "delivery.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for part in shp.parent.iterdir():
            zf.write(part, f"成果/{part.name}")
    with open_source(z) as src:
        assert src.kind == "shapefile" and src.path.name == "inzip.shp"
        assert src.crs_text and "114" in src.crs_text
        assert next(src.batches()).columns["JCJBH"] == ["A", "B"]


def test_several_datasets_need_a_choice(make_shapefile, tmp_path):
    g = shapely.points(projected(lonlat_points(1), TO_4547))
    make_shapefile("a", g, {"N": ["1"]})
    make_shapefile("b", g, {"N": ["2"]})
    with pytest.raises(ImportRefusedError, match="several datasets"):
        with open_source(tmp_path):
            pass
    with open_source(tmp_path, ReadOptions(layer="b")) as src:
        assert next(src.batches()).columns["N"] == ["2"]


def test_shapefile_without_dbf_is_refused_clearly(make_shapefile):
    shp = make_shapefile("nodbf", shapely.points(projected(lonlat_points(1), TO_4547)), {"N": ["1"]})
    shp.with_suffix(".dbf").unlink()
    with pytest.raises(ImportRefusedError, match=r"\.dbf"):
        with open_source(shp):
            pass


def test_geopackage_and_geojson(tmp_path):
    pts = shapely.points(lonlat_points(3))
    for name, driver in (("a.gpkg", "GPKG"), ("a.geojson", "GeoJSON")):
        raw.write(tmp_path / name, shapely.to_wkb(pts), [np.array(["雨水", "污水", "给水"], dtype=object)],
                  ["窨井用途"], driver=driver, geometry_type="Point", crs="EPSG:4490")
        with open_source(tmp_path / name) as src:
            assert src.columns == ["窨井用途"]
            assert src.crs_text in ("EPSG:4490", "EPSG:4326")   # GeoJSON is lon/lat by RFC 7946
            b = next(src.batches())
            assert b.columns["窨井用途"] == ["雨水", "污水", "给水"]


def test_csv_x_is_northing_by_default(tmp_path):
    p = tmp_path / "points.csv"
    p.write_bytes("点号,X,Y,用途\nP1,3899265.0,430806.0,雨水\n".encode("gbk"))
    with open_source(p) as src:
        assert src.columns == ["点号", "用途"]
        assert src.encoding.encoding == "gb18030"
        b = next(src.batches())
    assert shapely.get_coordinates(b.geoms).tolist() == [[430806.0, 3899265.0]]   # (easting, northing)
    assert b.columns["用途"] == ["雨水"]


def test_csv_xy_order_can_be_gis(tmp_path):
    p = tmp_path / "points.csv"
    p.write_text("x,y\n430806,3899265\n", encoding="utf-8")
    with open_source(p, ReadOptions(xy_order="gis")) as src:
        assert shapely.get_coordinates(next(src.batches()).geoms).tolist() == [[430806.0, 3899265.0]]


def test_csv_longitude_latitude_and_semicolons(tmp_path):
    p = tmp_path / "ll.csv"
    p.write_text("名称;经度;纬度\n公厕;113.24;35.22\n坏行;;\n", encoding="utf-8")
    with open_source(p) as src:
        b = next(src.batches())
    assert shapely.get_coordinates(b.geoms[:1]).tolist() == [[113.24, 35.22]]
    assert b.geoms[1] is None   # no coordinates: no geometry, the engine reports it


def test_csv_without_coordinates_is_refused(tmp_path):
    p = tmp_path / "none.csv"
    p.write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(ImportRefusedError, match="no coordinate columns"):
        with open_source(p):
            pass


def test_xlsx_with_xzb_yzb(tmp_path):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["JCJBH", "XZB", "YZB"])
    ws.append(["J1", 3899265.0, 430806.0])
    ws.append(["J2", 3899300.0, 430900.0])
    wb.save(tmp_path / "t.xlsx")
    with open_source(tmp_path / "t.xlsx") as src:
        assert src.columns == ["JCJBH"] and src.count == 2
        b = next(src.batches())
    assert b.columns["JCJBH"] == ["J1", "J2"]
    assert shapely.get_coordinates(b.geoms).tolist() == [[430806.0, 3899265.0], [430900.0, 3899300.0]]
