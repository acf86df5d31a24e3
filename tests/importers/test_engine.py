"""The import engine end to end against a real Store (SpatiaLite always, PostGIS when reachable)."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pyproj
import pytest
import shapely
from shapely import LineString, Polygon

from geoapi.storage import FeatureQuery
from importers import ImportOptions, ImportRefusedError, run_import

from .conftest import ESRI_CM_114E, TO_4526, TO_4547, lonlat_points, projected

GEOD = pyproj.Geod(ellps="GRS80")
WELL_USES = ["雨水", "污水", "给水", "电力"]


def _all(store, layer):
    return store.query(layer, FeatureQuery(limit=10_000)).features


def _manhole_fields(n: int) -> dict:
    return {
        "JCJBH": [f"YS-{i:03d}" for i in range(n)],
        "窨井用途": [WELL_USES[i % 4] for i in range(n)],
        "井盖材质": ["球墨铸铁"] * n,
        "所在道路": ["人民路"] * n,
        "测量员": ["张三"] * n,         # no such field: kept in extra
    }


def _distances_m(geoms, truth: np.ndarray) -> np.ndarray:
    xy = shapely.get_coordinates(np.asarray(geoms, dtype=object))
    _, _, d = GEOD.inv(xy[:, 0], xy[:, 1], truth[:, 0], truth[:, 1])
    return np.abs(d)


def test_gbk_shapefile_without_cpg_imports_with_provenance(store, make_shapefile):
    truth = lonlat_points(6)
    shp = make_shapefile("gbk", shapely.points(projected(truth, TO_4547)), _manhole_fields(6),
                         encoding="GBK", cpg=False, prj=ESRI_CM_114E)
    seen = []
    report = run_import(store, shp.parent, ImportOptions(layer="manholes", actor="surveyor"),
                        progress=lambda done, total: seen.append((done, total)))
    assert report.state == "done", report.rejected
    assert (report.rows_read, report.imported, report.rejected) == (6, 6, [])
    assert report.provenance.encoding["reason"] == "fallback"
    assert report.provenance.crs["crs"] == "EPSG:4547"
    assert len(report.provenance.sha256) == 64 and report.provenance.file_size > 0
    assert report.unmapped_columns == ["测量员"]
    assert seen[-1] == (6, 6)
    feats = sorted(_all(store, "manholes"), key=lambda f: f.props["cover_no"])
    assert [f.props["well_use"] for f in feats[:4]] == WELL_USES
    assert feats[0].props["road_name"] == "人民路" and feats[0].props["cover_material"] == "球墨铸铁"
    assert feats[0].meta["src_crs"] == "EPSG:4547" and feats[0].meta["src_file"] == "gbk"
    assert feats[0].meta["batch_id"] == report.batch_id
    assert feats[0].meta["extra"] == {"测量员": "张三"}
    assert _distances_m([f.geometry for f in feats], truth[np.argsort([f"YS-{i:03d}" for i in range(6)])]).max() < 0.05


def test_zone_prefixed_eastings_land_within_5_cm(store, make_shapefile):
    """The .prj says CM 114E, the eastings carry zone 38 (38 430 806): read as EPSG:4526."""
    truth = lonlat_points(5, seed=3)
    xy = projected(truth, TO_4526)
    assert (xy[:, 0] > 38_000_000).all()
    shp = make_shapefile("zone38", shapely.points(xy), {"JCJBH": [f"Z{i}" for i in range(5)],
                                                      "YT": ["雨水"] * 5}, prj=ESRI_CM_114E)
    report = run_import(store, shp, ImportOptions(layer="manholes"))
    assert report.state == "done" and report.imported == 5
    assert report.provenance.crs["crs"] == "EPSG:4526"
    assert any("zone prefix" in n for n in report.notes)
    feats = sorted(_all(store, "manholes"), key=lambda f: f.props["cover_no"])
    assert _distances_m([f.geometry for f in feats], truth).max() < 0.05


def test_missing_prj_is_refused_then_accepted_with_crs(store, make_shapefile):
    truth = lonlat_points(3, seed=5)
    shp = make_shapefile("noprj", shapely.points(projected(truth, TO_4547)),
                         {"JCJBH": ["A", "B", "C"], "YT": ["污水"] * 3}, prj=False)
    with pytest.raises(ImportRefusedError, match="no coordinate system") as err:
        run_import(store, shp, ImportOptions(layer="manholes"))
    assert err.value.status == 422 and "EPSG:4547" in err.value.detail
    assert store.count("manholes") == 0
    report = run_import(store, shp, ImportOptions(layer="manholes", crs="EPSG:4547"))
    assert report.imported == 3 and report.provenance.crs["reason"] == "given"
    assert _distances_m([f.geometry for f in sorted(_all(store, "manholes"), key=lambda f: f.props["cover_no"])],
                        truth).max() < 0.05


def test_xy_swapped_csv_is_detected_by_the_city_bounds(store, tmp_path):
    """Headed X/Y but written GIS-style (X = easting): the survey reading falls outside the city."""
    truth = lonlat_points(4, seed=9)
    xy = projected(truth, TO_4547)
    p = tmp_path / "swapped.csv"
    lines = ["编号,X,Y,用途"] + [f"S{i},{e:.3f},{n:.3f},雨水" for i, (e, n) in enumerate(xy)]
    p.write_text("\n".join(lines), encoding="utf-8")
    report = run_import(store, p, ImportOptions(layer="manholes", crs="EPSG:4547",
                                                 mapping={"编号": "cover_no"}))
    assert report.state == "done" and report.imported == 4
    assert report.provenance.axes_swapped is True
    assert any("swapped" in n for n in report.notes)
    feats = sorted(_all(store, "manholes"), key=lambda f: f.props["cover_no"])
    assert _distances_m([f.geometry for f in feats], truth).max() < 0.05


def test_survey_convention_csv_is_not_swapped(store, tmp_path):
    truth = lonlat_points(2, seed=11)
    xy = projected(truth, TO_4547)
    p = tmp_path / "survey.csv"
    p.write_text("JCJBH,X,Y,YT\n" + "\n".join(f"P{i},{n:.3f},{e:.3f},给水" for i, (e, n) in enumerate(xy)),
                 encoding="utf-8")
    report = run_import(store, p, ImportOptions(layer="manholes", crs="EPSG:4547"))
    assert report.imported == 2 and report.provenance.axes_swapped is False


def test_strict_import_with_a_bad_row_leaves_the_registry_unchanged(store, make_shapefile):
    store.create("manholes", {"well_use": "雨水", "cover_no": "OLD-1"}, shapely.Point(113.24, 35.22), actor="t")
    fields = _manhole_fields(5)
    fields["窨井用途"][3] = "下水道"          # not an allowed value
    shp = make_shapefile("bad", shapely.points(projected(lonlat_points(5), TO_4547)), fields)
    report = run_import(store, shp, ImportOptions(layer="manholes"))
    assert report.state == "failed" and report.imported == 0
    assert [(r.row, r.reasons) for r in report.rejected] == [
        (4, ("well_use (窨井用途): '下水道' is not one of " + str(list(store.layer("manholes").field("well_use").values)),))]
    assert [f.props["cover_no"] for f in _all(store, "manholes")] == ["OLD-1"]


def test_on_error_skip_loads_the_good_rows_and_reports_the_rest(store, make_shapefile):
    fields = _manhole_fields(5)
    fields["窨井用途"][1] = ""                # required
    geoms = list(shapely.points(projected(lonlat_points(5), TO_4547)))
    geoms[4] = shapely.Point(0, 0)           # far outside the city
    shp = make_shapefile("skip", geoms, fields)
    report = run_import(store, shp, ImportOptions(layer="manholes", on_error="skip"))
    assert report.state == "done" and report.imported == 3
    assert [r.row for r in report.rejected] == [2, 5]
    assert "required" in report.rejected[0].reasons[0]
    assert "outside the city bounds" in report.rejected[1].reasons[0]
    body = json.loads(json.dumps(report.as_dict(), ensure_ascii=False))   # what the API will send
    assert body["rejected_count"] == 2 and body["rejected"][0]["row"] == 2
    rows = list(csv.reader(io.StringIO(report.rejected_csv().lstrip("\ufeff"))))
    assert rows[0][0].startswith("行号") and [r[0] for r in rows[1:]] == ["2", "5"]
    assert store.count("manholes") == 3


def test_duplicates_within_the_file_and_against_the_registry(store, make_shapefile):
    code = "4108020102000001"   # 410802 + 01 02 (污水井盖) + serial 1
    fields = {"BSM": [code, "4108020102000002", code], "YT": ["污水"] * 3}
    shp = make_shapefile("dups", shapely.points(projected(lonlat_points(3), TO_4547)), fields)
    report = run_import(store, shp, ImportOptions(layer="manholes", on_error="skip"))
    assert report.imported == 2
    assert [(r.row, r.code) for r in report.rejected] == [(3, code)]
    assert "duplicate" in report.rejected[0].reasons[0] and "row 1" in report.rejected[0].reasons[0]
    again = run_import(store, shp, ImportOptions(layer="manholes", on_error="skip"))
    assert again.imported == 0
    assert all("already in the registry" in r.reasons[-1] for r in again.rejected)
    assert store.count("manholes") == 2


def test_malformed_code_is_rejected(store, make_shapefile):
    fields = {"BSM": ["4108020101000001", "12345"], "YT": ["污水", "污水"]}   # 0101 is 给水, not 污水
    shp = make_shapefile("codes", shapely.points(projected(lonlat_points(2), TO_4547)), fields)
    report = run_import(store, shp, ImportOptions(layer="manholes", dry_run=True))
    assert [r.row for r in report.rejected] == [1, 2]
    assert "小类" in report.rejected[0].reasons[0] and "16 digits" in report.rejected[1].reasons[0]


def test_dry_run_writes_nothing(store, make_shapefile):
    shp = make_shapefile("dry", shapely.points(projected(lonlat_points(4), TO_4547)), _manhole_fields(4))
    report = run_import(store, shp, ImportOptions(layer="manholes", dry_run=True))
    assert report.state == "dry_run" and report.rows_read == 4 and report.imported == 0 and not report.rejected
    assert store.count("manholes") == 0


def test_upsert_updates_by_code(store, make_shapefile):
    codes = ["4108020103000001", "4108020103000002"]
    xy = shapely.points(projected(lonlat_points(2), TO_4547))
    first = make_shapefile("v1", xy, {"BSM": codes, "YT": ["雨水"] * 2, "JGCZ": ["钢", "钢"]})
    assert run_import(store, first, ImportOptions(layer="manholes")).imported == 2
    second = make_shapefile("v2", xy, {"BSM": codes, "YT": ["雨水"] * 2, "JGCZ": ["复合材料", "钢"]})
    report = run_import(store, second, ImportOptions(layer="manholes", mode="upsert"))
    assert (report.imported, report.updated) == (0, 2)
    by_code = {f.props["obj_code"]: f for f in _all(store, "manholes")}
    assert by_code[codes[0]].props["cover_material"] == "复合材料" and by_code[codes[0]].version == 2


def test_z_lines_keep_their_heights(store, make_shapefile):
    truth = lonlat_points(4, seed=21)
    xy = projected(truth, TO_4547)
    lines = [LineString([(*xy[0], 101.25), (*xy[1], 100.75)]), LineString([(*xy[2], 99.5), (*xy[3], 99.0)])]
    shp = make_shapefile("pipez", lines, {"GXDH": ["L1", "L2"], "GXLB": ["排水", "排水"]})
    report = run_import(store, shp, ImportOptions(layer="pipes"))
    assert report.state == "done" and report.imported == 2, report.rejected
    feats = sorted(_all(store, "pipes"), key=lambda f: f.props["segment_no"])
    coords = shapely.get_coordinates(np.array([f.geometry for f in feats], dtype=object), include_z=True)
    assert coords[:, 2].tolist() == [101.25, 100.75, 99.5, 99.0]   # surveyed heights untouched
    _, _, d = GEOD.inv(coords[:, 0], coords[:, 1], truth[:, 0], truth[:, 1])
    assert np.abs(d).max() < 0.05


def test_xian80_needs_the_bureaus_parameters(store, make_shapefile):
    truth = lonlat_points(2, seed=4)
    xy = projected(truth, TO_4547)   # pretend-Xian80 plane coordinates
    shp = make_shapefile("xian", shapely.points(xy), {"JCJBH": ["X1", "X2"], "YT": ["雨水"] * 2}, crs="EPSG:2383")
    with pytest.raises(ImportRefusedError, match="Xian 1980"):
        run_import(store, shp, ImportOptions(layer="manholes"))
    seven = "+towgs84=24.0,-123.0,-94.0,0.02,-0.25,-0.13,1.1"
    report = run_import(store, shp, ImportOptions(layer="manholes", transform=seven))
    assert report.imported == 2 and report.provenance.transform == seven
    assert report.provenance.crs["crs"] == "EPSG:2383"


def test_gcj02_points_are_corrected(store, tmp_path):
    from importers.offsets import wgs84_to_gcj02

    truth = lonlat_points(3, seed=8)
    glon, glat = wgs84_to_gcj02(truth[:, 0], truth[:, 1])
    p = tmp_path / "amap.csv"
    p.write_text("JCJBH,经度,纬度,YT\n" + "\n".join(f"G{i},{a:.9f},{b:.9f},雨水" for i, (a, b) in
                                                    enumerate(zip(glon, glat, strict=True))), encoding="utf-8")
    report = run_import(store, p, ImportOptions(layer="manholes", crs="GCJ-02"))
    assert report.imported == 3 and report.provenance.crs["crs"] == "GCJ-02"
    feats = sorted(_all(store, "manholes"), key=lambda f: f.props["cover_no"])
    assert _distances_m([f.geometry for f in feats], truth).max() < 0.5


def test_bow_tie_polygon(registry, tmp_path, make_shapefile):
    """Repairable into the layer's type (MultiPolygon): repaired; into a Polygon layer: rejected."""
    e, n = projected(lonlat_points(1), TO_4547)[0]
    bow = Polygon([(e, n), (e + 20, n + 20), (e + 20, n), (e, n + 20), (e, n)])
    ok = Polygon([(e, n), (e + 10, n), (e + 10, n + 10), (e, n)])
    shp = make_shapefile("bow", [bow, ok], {"WGBM": ["410802001001001", "410802001001002"]})
    grids = run_import(None, shp, ImportOptions(layer="unit_grids", dry_run=True), layer_spec=registry["unit_grids"])
    assert grids.rejected == [] and grids.repaired == 1
    bays = run_import(None, shp, ImportOptions(layer="parking_bays", dry_run=True), layer_spec=registry["parking_bays"])
    assert [r.row for r in bays.rejected] == [1]
    assert "Self-intersection" in bays.rejected[0].reasons[0]
