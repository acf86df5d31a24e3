"""Bulk writes: compact history, bounded change sets, the pipelined COPY and SpatiaLite's
set-based spatial index, on both backends."""

from __future__ import annotations

import json

import numpy as np
import pytest
import sqlalchemy as sa
from shapely.geometry import Point

from geoapi.errors import ConflictError
from geoapi.storage import FeatureQuery, model, pgcopy, schema, writer
from geoapi.storage.model import ChangeSet, IdSet
from tiles.grid import tiles_touching


def points(n: int, seed: int = 1, **props) -> list:
    rng = np.random.default_rng(seed)
    xy = np.column_stack([113.24 + rng.uniform(-0.02, 0.02, n), 35.22 + rng.uniform(-0.02, 0.02, n)])
    return [({"well_use": "雨水", "cover_no": f"P{seed}-{i}", **props}, Point(x, y)) for i, (x, y) in enumerate(xy)]


def test_id_sets_keep_runs_and_read_like_lists():
    ids = IdSet([5, 6, 7])
    ids.extend(range(8, 5000))
    ids.extend([1, 3, 2, 10_000])
    assert ids.runs() == [(1, 4), (5, 5000), (10_000, 10_001)]
    assert len(ids) == 3 + 4995 + 1 and ids[:4] == [1, 2, 3, 5] and ids[3] == 5 and ids[-1] == 10_000
    assert 4999 in ids and 4 not in ids and 10_001 not in ids
    assert IdSet([2, 1]) == [1, 2] and list(IdSet()) == []


def test_copy_body_lays_out_rows_of_tab_separated_values_and_the_constant_columns():
    assert pgcopy.copy_body([["1", "2"], ["雨水", "\\N"]], "x\ty") == "1\t雨水\tx\ty\n2\t\\N\tx\ty\n".encode()
    assert pgcopy.copy_body([["7", "8"]]) == b"7\n8\n" and pgcopy.copy_body([[]]) == b""
    with pytest.raises(ValueError):   # columns of different lengths
        pgcopy.copy_body([["1", "2"], ["a"]])


def test_a_change_set_folds_its_geometries_beyond_the_limit(monkeypatch):
    monkeypatch.setattr(model, "KEEP_GEOMS", 10)
    geoms = [g for _, g in points(25)]
    ch = ChangeSet(layer="manholes", op="insert", zooms=range(10, 17))
    ch.record([1], new=geoms[:1])
    assert ch.footprint is None and len(ch.new_geoms) == 1
    ch.record(range(2, 26), new=geoms[1:])
    assert ch.new_geoms == [] and ch.footprint.count == 25
    tiles, whole = tiles_touching(np.array(geoms), range(10, 17))
    assert set(ch.footprint.tiles()) == tiles and ch.footprint.whole == whole


def test_insert_entries_cover_runs_of_ids_store_no_snapshot_and_read_the_row_as_inserted(store):
    """A bulk write's inserts are one history entry per run of ids, without ``after``
    (geoapi.storage.writer, "History"): the API finds each feature in its run and reads the row
    while it is unchanged, then the next entry's ``before``; snapshots that are stored leave out
    NULL fields and come back with every field."""
    store.bulk_write("manholes", points(3), actor="t")
    store.bulk_write("manholes", [({"well_use": "污水", "well_depth_m": 2.5}, Point(113.25, 35.23))], actor="t",
                     mode="append")
    layer = store.layer("manholes")
    h = schema.history
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(h.c.feature_id, h.c.last_feature_id, h.c.op, h.c.after).order_by(h.c.id)).all()
    ids = sorted(f.id for f in store.query("manholes", FeatureQuery()).features)
    assert [tuple(r) for r in rows] == [(ids[0], ids[2], "insert", None), (ids[3], ids[3], "insert", None)]
    for fid in ids:
        (entry,) = store.history("manholes", fid)
        now = store.get("manholes", fid)
        assert entry.after["properties"] == {**{f.name: None for f in layer.all_fields}, **now.props}
        assert entry.after["geometry"]["coordinates"] == list(now.geometry.coords[0])
    f = store.query("manholes", FeatureQuery(filters={"well_use": ["污水"]})).features[0]
    store.patch("manholes", f.id, {"well_depth_m": None}, actor="t")
    insert, update = store.history("manholes", f.id)
    assert insert.after == update.before and insert.after["properties"]["well_depth_m"] == 2.5
    assert update.after["properties"]["well_depth_m"] is None
    with store.engine.connect() as conn:
        stored = conn.execute(sa.select(schema.history.c.before).where(schema.history.c.op == "update")).scalar_one()
    stored = json.loads(stored) if isinstance(stored, str) else stored
    assert None not in stored["properties"].values()   # NULL fields are not written
    store.delete("manholes", f.id, actor="t")
    insert, update, delete = store.history("manholes", f.id)   # the row is gone: the next entry holds it
    assert insert.after["properties"]["well_depth_m"] == 2.5 and delete.before == update.after
    store.patch("manholes", ids[1], {"well_use": "污水"}, actor="u")   # inside the run of three
    insert, update = store.history("manholes", ids[1])
    assert insert.after == update.before and insert.after["properties"]["well_use"] == "雨水"
    assert (insert.actor, update.actor) == ("t", "u") and [e.op for e in store.history("manholes", ids[0])] == ["insert"]


def test_a_failing_chunk_rolls_back_the_chunks_before_it(store, monkeypatch):
    """The COPY of one chunk runs while the next is prepared; an error in either still undoes all."""
    monkeypatch.setattr(writer, "CHUNK", 7)
    code = "4108000102000007"
    rows = points(20) + [({"well_use": "污水", "obj_code": code}, Point(113.24, 35.22))] * 2
    with pytest.raises(ConflictError):
        store.bulk_write("manholes", rows, actor="t")
    assert store.count("manholes") == 0
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM history")).scalar() == 0
    counts = store.bulk_write("manholes", points(20, seed=2), actor="t")
    assert counts["inserted"] == 20 == store.count("manholes")


def test_insert_entries_split_where_ids_are_not_consecutive(store):
    """Another session may take sequence values between ours: each run of ids gets its entry."""
    with store.transaction("t") as w:
        runs = w._insert_runs("manholes", [7, 8, 9, 12, 13, 20])
    assert [r[:5] for r in runs] == [(7, 9, "manholes", 1, "insert"), (12, 13, "manholes", 1, "insert"),
                                     (20, 20, "manholes", 1, "insert")]


def test_replace_reads_and_deletes_the_old_rows_a_chunk_at_a_time(store, monkeypatch):
    monkeypatch.setattr(writer, "CHUNK", 4)
    monkeypatch.setattr(model, "KEEP_GEOMS", 5)
    store.bulk_write("manholes", points(10), actor="t")
    heard = []
    store.subscribe(heard.append)
    counts = store.bulk_write("manholes", points(3, seed=9), actor="t", mode="replace")
    assert counts == {"inserted": 3, "updated": 0, "deleted": 10}
    deleted = next(c for c in heard if c.op == "delete")
    assert len(deleted.ids) == 10 and deleted.footprint is not None
    assert deleted.footprint.count + len(deleted.old_geoms) == 10 and len(deleted.old_geoms) <= 5
    with store.engine.connect() as conn:
        ops = conn.execute(sa.text("SELECT op, count(*), sum(coalesce(last_feature_id, feature_id) - feature_id + 1) "
                                   "FROM history GROUP BY op ORDER BY op")).all()
    assert [tuple(r) for r in ops] == [("delete", 10, 10), ("insert", 4, 13)]   # inserts: one entry per chunk of 4


def test_spatialite_bulk_insert_fills_the_spatial_index_and_keeps_its_triggers(store, backend, monkeypatch):
    if backend != "spatialite":
        pytest.skip("SpatiaLite's R*Tree")
    monkeypatch.setattr(writer, "CHUNK", 50)
    rows = points(120)
    store.bulk_write("manholes", rows, actor="t")
    single = store.create("manholes", {"well_use": "雨水"}, Point(113.2401, 35.2201), actor="t")   # by the trigger
    with store.engine.connect() as conn:
        triggers = {r[0] for r in conn.execute(sa.text(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'manholes'"))}
        indexed = conn.execute(sa.text("SELECT count(*) FROM idx_manholes_geom")).scalar()
        hits = {r[0] for r in conn.execute(sa.text(
            "SELECT id FROM manholes WHERE id IN (SELECT rowid FROM SpatialIndex WHERE f_table_name = 'manholes' "
            "AND search_frame = BuildMbr(113.22, 35.20, 113.24, 35.22, 4490))"))}
    assert {"gii_manholes_geom", "tmi_manholes_geom", "ggi_manholes_geom"} <= triggers
    assert indexed == 121
    inside = {f.id for f in store.query("manholes", FeatureQuery(bbox=(113.22, 35.20, 113.24, 35.22),
                                                                 limit=1000)).features}
    assert inside and hits == inside and single.id not in hits


def test_a_bulk_write_fills_admin_code_from_the_district_of_each_row(store):
    """One STRtree match per chunk: a point takes the district it lies in (the first listed
    where two overlap), a line its point on surface, a row outside every district the city's
    code, a row with an admin_code keeps it; the same as a single create."""
    from shapely.geometry import LineString, box

    west, east = box(113.20, 35.20, 113.24, 35.24), box(113.23, 35.20, 113.28, 35.24)   # overlap 113.23–113.24
    store.bulk_write("districts", [({"admin_code": "410802", "name": "解放区", "level": "市辖区"}, west),
                                   ({"admin_code": "410803", "name": "中站区", "level": "市辖区"}, east)], actor="t")
    manholes = [({"well_use": "雨水", "cover_no": n, **extra}, Point(x, 35.22))
                for n, x, extra in [("W", 113.21, {}), ("E", 113.27, {}), ("both", 113.235, {}), ("out", 113.30, {}),
                                    ("given", 113.21, {"admin_code": "410811"})]]
    store.bulk_write("manholes", manholes, actor="t")
    got = {f.props["cover_no"]: f.props["admin_code"] for f in store.query("manholes", FeatureQuery()).features}
    assert got == {"W": "410802", "E": "410803", "both": "410802", "out": store.city_admin_code, "given": "410811"}
    single = store.create("manholes", {"well_use": "雨水", "cover_no": "one"}, Point(113.27, 35.21), actor="t")
    assert single.props["admin_code"] == "410803"
    store.bulk_write("pipes", [({"pipe_class": "排水"}, LineString([(113.25, 35.21), (113.27, 35.23)]))], actor="t")
    assert store.query("pipes", FeatureQuery()).features[0].props["admin_code"] == "410803"
