"""A PostGIS import into an empty layer builds its indexes after the rows (geoapi.storage.pgload):
a strict import that fails leaves table, indexes and history as they were; one that succeeds
has every index and can be rolled back as a batch."""

from __future__ import annotations

import pytest
import shapely
import sqlalchemy as sa

from importers import ImportOptions
from importers.batches import rollback_batch, run_recorded_import

from .conftest import TO_4547, lonlat_points, projected


@pytest.fixture
def pg(pg_small_copies):
    return pg_small_copies


def _state(store) -> tuple[int, int, set[str]]:
    """Rows, features with a history entry and index definitions of the manholes layer."""
    with store.engine.connect() as conn:
        return (conn.execute(sa.text("SELECT count(*) FROM manholes")).scalar_one(),
                conn.execute(sa.text("SELECT coalesce(sum(coalesce(last_feature_id, feature_id) - feature_id + 1), 0) FROM history")).scalar_one(),
                set(conn.execute(sa.text("SELECT indexdef FROM pg_indexes WHERE tablename = 'manholes'")).scalars()))


def _delivery(make_shapefile, name: str, codes: list[str]):
    xy = shapely.points(projected(lonlat_points(len(codes), seed=3), TO_4547))
    return make_shapefile(name, xy, {"BSM": codes, "YT": ["雨水"] * len(codes), "JGCZ": ["钢"] * len(codes)})


def test_a_failed_strict_import_into_an_empty_layer_changes_nothing(pg, make_shapefile):
    before = _state(pg)
    assert before[:2] == (0, 0) and before[2]
    codes = [f"41080201030{i:05d}" for i in range(1, 40)] + ["NOT-A-CODE"]
    report = run_recorded_import(pg, _delivery(make_shapefile, "bad", codes),
                                 ImportOptions(layer="manholes", actor="surveyor"))
    assert report.state == "failed" and len(report.rejected) == 1
    assert _state(pg) == before


def test_an_initial_import_has_its_indexes_and_rolls_back_as_a_batch(pg, make_shapefile):
    indexes = _state(pg)[2]
    codes = [f"41080201030{i:05d}" for i in range(1, 41)]
    report = run_recorded_import(pg, _delivery(make_shapefile, "good", codes),
                                 ImportOptions(layer="manholes", actor="surveyor"))
    assert report.state == "done" and report.imported == 40 == pg.count("manholes")
    assert _state(pg) == (40, 40, indexes)
    result = rollback_batch(pg, report.batch_id, actor="admin")
    assert result.deleted == 40 and _state(pg) == (0, 80, indexes)


def test_an_initial_import_with_codes_read_in_small_batches_checks_them_without_waiting_on_its_own_lock(
        pg, make_shapefile, monkeypatch):
    """The registry check of a delivery's codes runs in the reading thread on its own connection;
    once the load holds the layer's lock (pgload), that connection must not be left waiting on it
    (it was: a delivery of 150,000 rows with codes hung)."""
    from importers import engine

    monkeypatch.setattr(engine, "_HANDOFF", 4)   # rows handed over at a time: the reader keeps close
    codes = [f"41080201030{i:05d}" for i in range(1, 61)]
    report = run_recorded_import(pg, _delivery(make_shapefile, "batched", codes),
                                 ImportOptions(layer="manholes", actor="surveyor", batch_size=8))
    assert report.state == "done" and report.imported == 60 == pg.count("manholes")
