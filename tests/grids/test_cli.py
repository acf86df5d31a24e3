"""`geoapi grids …` on real shapefiles (written with pyogrio) and a SpatiaLite file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyproj
import pytest
import shapely
from pyogrio import raw
from typer.testing import CliRunner

from geoapi.cli import _register_subcommands, app
from geoapi.grids.build import all_features, validated
from geoapi.settings import Settings
from geoapi.storage import Store
from tests.grids.conftest import deg

runner = CliRunner()
_register_subcommands()


def write_shp(path: Path, geoms, fields: dict[str, list], *, crs: str = "EPSG:4490", encoding="UTF-8") -> Path:
    gtype = geoms[0].geom_type
    data = [np.array(v, dtype=object) for v in fields.values()]
    raw.write(path, shapely.to_wkb(np.array(geoms, dtype=object)), data, list(fields), geometry_type=gtype,
              crs=crs, encoding=encoding)
    return path


@pytest.fixture
def db(tmp_path, district) -> str:
    url = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    store = Store.open(Settings(database_url=url, data_dir=tmp_path))
    store.upgrade()
    store.bulk_write("districts", validated(store, "districts", [
        ({"admin_code": "410802", "name": "解放区", "level": "市辖区"}, district)]), actor="test")
    store.close()
    return url


def grids_cli(*args: str):
    return runner.invoke(app, ["grids", *args])


def stored(db: str, layer: str):
    store = Store.open(Settings(database_url=db))
    try:
        return all_features(store, layer)
    finally:
        store.close()


def test_segments_from_a_projected_gbk_shapefile_then_corridors_and_assign(tmp_path, db, roads) -> None:
    to_gk = pyproj.Transformer.from_crs(4490, 4547, always_xy=True)  # CGCS2000 / 3° GK CM 114E
    geoms = [shapely.transform(r.geometry, lambda c: np.column_stack(to_gk.transform(c[:, 0], c[:, 1])))
             for r in roads]
    shp = write_shp(tmp_path / "roads.shp", geoms, {"DLBM": [r.code for r in roads], "DLMC": [r.name for r in roads],
                                                    "DLDJ": [r.grade for r in roads]}, crs="EPSG:4547",
                    encoding="GBK")
    first = grids_cli("segments", "--roads", str(shp), "--db", db)
    assert first.exit_code == 0, first.output
    assert "road_segments: inserted 7, updated 0, deleted 0" in first.output
    again = grids_cli("segments", "--roads", str(shp), "--db", db)
    assert "road_segments: inserted 0, updated 7, deleted 0" in again.output
    segs = {f.props["segment_code"]: f.props for f in stored(db, "road_segments")}
    assert segs["R01-01"]["start_desc"] == "人民路西端" and segs["R01-01"]["road_grade"] == "主干路"

    out = grids_cli("corridors", "--db", db)
    assert out.exit_code == 0 and "road_corridors: inserted 7" in out.output

    store = Store.open(Settings(database_url=db))
    store.bulk_write("manholes", validated(store, "manholes", [({"well_use": "雨水"}, deg(shapely.Point(100, 10)))]),
                     actor="test")  # no enricher outside the API/CLI: stays unassigned
    store.close()
    out = grids_cli("assign", "--layer", "manholes", "--db", db)
    assert out.exit_code == 0, out.output
    assert "manholes: rows 1, grid 0, segment 1" in out.output
    assert stored(db, "manholes")[0].props["road_segment"] == "R01-01"


def test_a_missing_name_field_is_a_clear_error(tmp_path, db, roads) -> None:
    shp = write_shp(tmp_path / "roads.shp", [r.geometry for r in roads], {"FOO": ["x"] * len(roads)})
    out = grids_cli("segments", "--roads", str(shp), "--db", db)
    assert out.exit_code == 2
    assert "road name" in out.output and "FOO" in out.output


def test_unitgrids_for_a_district_from_a_communities_file(tmp_path, db, communities) -> None:
    shp = write_shp(tmp_path / "sq.shp", [c.geometry for c in communities],
                    {"SQDM": [c.code for c in communities], "SQMC": [c.name for c in communities]})
    out = grids_cli("unitgrids", "--district", "410802", "--communities", str(shp), "--db", db)
    assert out.exit_code == 0, out.output
    grids = stored(db, "unit_grids")
    assert len(grids) > 80 and all(len(g.props["grid_code"]) == 15 for g in grids)
    # regenerating from the stored grids' 社区 gives the same codes
    again = grids_cli("unitgrids", "--district", "410802", "--db", db)
    assert f"inserted 0, updated {len(grids)}, deleted 0" in again.output
    assert grids_cli("check", "--db", db).exit_code == 0


def test_unitgrids_needs_a_district_code(db) -> None:
    out = grids_cli("unitgrids", "--district", "4108", "--db", db)
    assert out.exit_code == 2 and "6-digit" in out.output


def test_check_reports_a_malformed_code_and_a_self_intersection(tmp_path) -> None:
    bowtie = deg(shapely.Polygon([(0, 0), (100, 100), (100, 0), (0, 100)]))
    square = deg(shapely.box(200, 0, 300, 100))
    shp = write_shp(tmp_path / "grids.shp", [bowtie, square], {"BGCODE": ["410802001001001", "4108020010"]})
    out = grids_cli("check", str(shp))
    assert out.exit_code == 1
    assert "self-intersects" in out.output and "'4108020010' is malformed" in out.output
    assert "2 grids checked: 2 errors" in out.output
