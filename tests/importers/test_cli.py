"""`geoapi import`, `geoapi imports …` and `geoapi export` against real databases."""

from __future__ import annotations

import shapely
from typer.testing import CliRunner

from geoapi.cli import _register_subcommands, app

from .conftest import ESRI_CM_114E, TO_4547, lonlat_points, projected

runner = CliRunner()
if not any(c.name == "import" for c in app.registered_commands):
    _register_subcommands()


def cli(*args: str):
    return runner.invoke(app, list(args))


def _delivery(make_shapefile, name="井盖", *, uses=("雨水", "污水", "给水"), **kw):
    n = len(uses)
    xy = shapely.points(projected(lonlat_points(n), TO_4547))
    return make_shapefile(name, xy, {"JCJBH": [f"C{i}" for i in range(n)], "YT": list(uses), "备注2": ["x"] * n},
                          encoding="GBK", cpg=False, **kw)


def test_import_prints_the_report_and_exits_0(settings, store, make_shapefile):
    shp = _delivery(make_shapefile, prj=ESRI_CM_114E)
    r = cli("import", str(shp.parent), "--layer", "manholes", "--db", settings.database_url, "--actor", "张工")
    assert r.exit_code == 0, r.output
    assert "done" in r.output and "imported 3" in r.output
    assert "CRS: EPSG:4547" in r.output and "encoding: gb18030" in r.output.lower()
    assert "备注2" in r.output                      # unmapped, kept in extra
    assert store.count("manholes") == 3
    listed = cli("imports", "list", "--db", settings.database_url)
    assert listed.exit_code == 0 and "manholes" in listed.output and "张工" in listed.output


def test_refused_import_exits_non_zero_and_says_why(settings, store, make_shapefile):
    r = cli("import", str(_delivery(make_shapefile, prj=False)), "--layer", "manholes", "--db", settings.database_url)
    assert r.exit_code == 1
    assert "import refused" in r.output and "no coordinate system" in r.output
    assert store.count("manholes") == 0


def test_rejected_rows_fail_the_import_and_land_in_a_csv(settings, store, make_shapefile, tmp_path):
    shp = _delivery(make_shapefile, uses=("雨水", "下水道", "污水"))
    out = tmp_path / "rejected.csv"
    r = cli("import", str(shp), "--layer", "manholes", "--db", settings.database_url, "--report-csv", str(out))
    assert r.exit_code == 1 and "failed" in r.output and "row 2" in r.output
    assert str(out) in r.output.replace("\n", "") and "下水道" in out.read_text(encoding="utf-8-sig")
    assert store.count("manholes") == 0
    skipped = cli("import", str(shp), "--layer", "manholes", "--db", settings.database_url, "--on-error", "skip",
                  "--report-csv", str(out))
    assert skipped.exit_code == 0 and store.count("manholes") == 2


def test_dry_run_and_bad_options(settings, store, make_shapefile):
    shp = _delivery(make_shapefile)
    r = cli("import", str(shp), "--layer", "manholes", "--db", settings.database_url, "--dry-run")
    assert r.exit_code == 0 and "dry_run" in r.output and store.count("manholes") == 0
    bad = cli("import", str(shp), "--layer", "manholes", "--db", settings.database_url, "--mode", "merge")
    assert bad.exit_code == 2 and "--mode must be one of" in bad.output
    unknown = cli("import", str(shp), "--layer", "nope", "--db", settings.database_url)
    assert unknown.exit_code == 1 and "unknown layer" in unknown.output


def test_rollback_command(settings, store, make_shapefile):
    assert cli("import", str(_delivery(make_shapefile)), "--layer", "manholes", "--db", settings.database_url).exit_code == 0
    listed = cli("imports", "list", "--db", settings.database_url).output.split()
    batch_id = next(word for word in listed if word.startswith("imp-"))
    r = cli("imports", "rollback", batch_id, "--db", settings.database_url)
    assert r.exit_code == 0 and "3 deleted" in r.output
    assert store.count("manholes") == 0
    again = cli("imports", "rollback", batch_id, "--db", settings.database_url)
    assert again.exit_code == 1 and "already rolled back" in again.output


def test_export_command_writes_the_file(settings, store, make_shapefile, tmp_path):
    assert cli("import", str(_delivery(make_shapefile)), "--layer", "manholes", "--db", settings.database_url).exit_code == 0
    out = tmp_path / "out" / "manholes.zip"
    r = cli("export", "manholes", str(out), "--encoding", "gbk", "--crs", "EPSG:4547", "--db", settings.database_url)
    assert r.exit_code == 0, r.output
    assert "wrote 3 features" in r.output and out.stat().st_size > 0
    bad = cli("export", "manholes", str(tmp_path / "x.kml"), "--db", settings.database_url)
    assert bad.exit_code == 2 and "--format" in bad.output
