"""Rolling back import batches restores the registry exactly, on both backends."""

from __future__ import annotations

import pytest
import shapely
import sqlalchemy as sa

from geoapi.storage import FeatureQuery, schema
from importers import ImportOptions
from importers.batches import get_batch, list_batches, rollback_batch, run_recorded_import
from importers.errors import RollbackConflictError

from .conftest import TO_4547, lonlat_points, projected

CODES = ["4108020103000001", "4108020103000002", "4108020103000003"]


def _state(store) -> dict[int, tuple]:
    """Everything a rollback must put back: values, geometry (WKB), batch id."""
    feats = store.query("manholes", FeatureQuery(limit=10_000)).features
    return {f.id: (f.props, shapely.to_wkb(f.geometry), f.meta["batch_id"]) for f in feats}


def _delivery(make_shapefile, name: str, codes: list[str], material: str, seed: int = 1):
    xy = shapely.points(projected(lonlat_points(len(codes), seed=seed), TO_4547))
    return make_shapefile(name, xy, {"BSM": codes, "YT": ["雨水"] * len(codes), "JGCZ": [material] * len(codes)})


def _touched_ids(store, batch_id: str) -> list[int]:
    h = schema.history
    with store.read() as conn:
        return conn.execute(sa.select(h.c.feature_id).where(h.c.batch_id == batch_id)).scalars().all()


def _import(store, path, **kw):
    report = run_recorded_import(store, path, ImportOptions(layer="manholes", actor="surveyor", **kw))
    assert report.state == "done", (report.message, report.rejected)
    return report


def test_rollback_of_an_append_deletes_what_it_inserted(store, make_shapefile):
    store.create("manholes", {"well_use": "污水", "cover_no": "OLD"}, shapely.Point(113.24, 35.22), actor="t")
    before = _state(store)
    report = _import(store, _delivery(make_shapefile, "a", CODES, "钢"))
    assert store.count("manholes") == 4
    result = rollback_batch(store, report.batch_id, actor="admin")
    assert (result.deleted, result.restored, result.reinserted) == (3, 0, 0)
    assert _state(store) == before
    batch = get_batch(store, report.batch_id)
    assert batch["state"] == "rolled_back" and batch["rolled_back_at"] is not None
    inserted = _touched_ids(store, report.batch_id)[0]
    assert [e.op for e in store.history("manholes", inserted)] == ["insert", "delete"]


def test_rollback_of_an_upsert_restores_the_old_values(store, make_shapefile):
    first = _import(store, _delivery(make_shapefile, "v1", CODES[:2], "钢"))
    before = _state(store)
    second = _import(store, _delivery(make_shapefile, "v2", CODES, "复合材料", seed=7), mode="upsert")
    assert (second.imported, second.updated) == (1, 2)
    assert {p["cover_material"] for p, _, _ in _state(store).values()} == {"复合材料"}
    result = rollback_batch(store, second.batch_id, actor="admin")
    assert (result.deleted, result.restored) == (1, 2)
    assert _state(store) == before
    assert {b for _, _, b in _state(store).values()} == {first.batch_id}


def test_rollback_of_a_replace_puts_the_old_rows_back_under_their_ids(store, make_shapefile):
    _import(store, _delivery(make_shapefile, "old", CODES[:2], "钢"))
    before = _state(store)
    replaced = _import(store, _delivery(make_shapefile, "new", CODES[2:], "玻璃钢", seed=3), mode="replace")
    assert store.count("manholes") == 1
    result = rollback_batch(store, replaced.batch_id, actor="admin")
    assert result.reinserted + result.restored == 2
    assert _state(store) == before
    for fid in before:   # inserted by the first import's run entry: found inside it
        assert store.get("manholes", fid).meta["created_by"] == "surveyor"
        history = store.history("manholes", fid)
        assert [(e.op, e.version) for e in history] == [("insert", 1), ("delete", 2), ("insert", 3)]


def test_later_edits_block_the_rollback_and_are_named(store, make_shapefile):
    report = _import(store, _delivery(make_shapefile, "a", CODES, "钢"))
    fid = min(_state(store))
    store.patch("manholes", fid, {"cover_material": "灰口铸铁"}, actor="inspector")
    before = _state(store)
    with pytest.raises(RollbackConflictError, match=rf"ids {fid}\b") as err:
        rollback_batch(store, report.batch_id, actor="admin")
    assert err.value.status == 409 and "inspector" in err.value.errors[0]["message"]
    assert _state(store) == before and get_batch(store, report.batch_id)["state"] == "done"


def test_batches_roll_back_newest_first(store, make_shapefile):
    first = _import(store, _delivery(make_shapefile, "v1", CODES[:2], "钢"))
    second = _import(store, _delivery(make_shapefile, "v2", CODES[:2], "复合材料"), mode="upsert")
    with pytest.raises(RollbackConflictError):
        rollback_batch(store, first.batch_id, actor="admin")     # the upsert changed its rows since
    rollback_batch(store, second.batch_id, actor="admin")
    rollback_batch(store, first.batch_id, actor="admin")        # the undone upsert no longer counts
    assert store.count("manholes") == 0
    assert [b["state"] for b in list_batches(store)] == ["rolled_back", "rolled_back"]


def test_dry_runs_cannot_be_rolled_back(store, make_shapefile):
    run_recorded_import(store, _delivery(make_shapefile, "d", CODES, "钢"), ImportOptions(layer="manholes", dry_run=True))
    with pytest.raises(RollbackConflictError, match="dry run"):
        rollback_batch(store, list_batches(store)[0]["id"], actor="admin")
