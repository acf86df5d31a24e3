"""What keeps an import's memory flat: compact duplicate tracking, rows handed over in a bounded
queue by a reading thread, nothing kept per row once written."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import shapely

from importers import ImportOptions, run_import
from importers.prefetch import prefetched
from importers.seen import SeenCodes, code_key

from .conftest import TO_4547, lonlat_points, projected


def test_seen_codes_name_the_first_row_across_calls_and_within_one():
    seen = SeenCodes()
    assert seen.check(["A", "B", "A"], [1, 2, 3]) == [None, None, 1]
    assert seen.check(["C", "B", "C", "D"], [4, 5, 6, 7]) == [None, 2, 4, None]
    assert len(seen) == 4


def test_seen_codes_stay_exact_over_many_runs_and_long_codes():
    seen = SeenCodes()
    long_a, long_b = "X" * 40 + "a", "X" * 40 + "b"   # past 16 bytes: a digest, still told apart
    assert code_key(long_a) != code_key(long_b) and len(code_key(long_a)) == 16
    rows = 0
    for batch in range(40):   # runs merge as they grow
        codes = [f"{batch:03d}-{i:05d}" for i in range(250)]
        assert seen.check(codes, list(range(rows + 1, rows + 251))) == [None] * 250
        rows += 250
    assert seen.check(["000-00000", "039-00249", "nope", long_a], [0, 0, 0, 0]) == [1, 10_000, None, None]
    assert seen.check([long_b, long_a], [1, 2]) == [None, 0]
    assert len(seen._runs) <= 8


def test_prefetch_hands_items_over_in_order_and_raises_where_reached():
    def items():
        yield from range(5)
        raise ValueError("bad row")

    got = []
    with pytest.raises(ValueError, match="bad row"):
        for x in prefetched(items(), depth=1):
            got.append(x)
    assert got == list(range(5))


def test_closing_the_prefetch_early_stops_its_thread():
    produced = []

    def items():
        for i in range(1000):
            produced.append(i)
            yield i

    before = threading.active_count()
    it = prefetched(items(), depth=2, name="test-prefetch")
    assert next(it) == 0
    it.close()
    time.sleep(0.05)
    assert threading.active_count() == before
    assert len(produced) < 10   # stopped, not run to the end


def _fields(n: int) -> dict:
    return {"JCJBH": [f"S{i:05d}" for i in range(n)], "YT": ["雨水"] * n, "测量员": ["李四"] * n}


def test_duplicates_are_found_across_read_batches(store, make_shapefile):
    codes = [f"4108020102{i + 1:06d}" for i in range(30)]   # 部件标识码 of 污水 covers
    codes[25] = codes[3]     # in a later batch than its first
    codes[27] = codes[26]    # in the same batch
    fields = {"BSM": codes, "YT": ["污水"] * 30}
    shp = make_shapefile("dups", shapely.points(projected(lonlat_points(30), TO_4547)), fields)
    report = run_import(store, shp, ImportOptions(layer="manholes", on_error="skip", batch_size=7))
    assert [(r.row, r.code) for r in report.rejected] == [(26, codes[3]), (28, codes[26])]
    assert "row 4" in report.rejected[0].reasons[0] and "row 27" in report.rejected[1].reasons[0]
    assert report.imported == 28 == store.count("manholes")


def test_unmapped_columns_travel_with_their_rows(store, make_shapefile):
    shp = make_shapefile("extra", shapely.points(projected(lonlat_points(12), TO_4547)), _fields(12))
    report = run_import(store, shp, ImportOptions(layer="manholes", batch_size=5))
    assert report.imported == 12
    from geoapi.storage import FeatureQuery

    feats = store.query("manholes", FeatureQuery(limit=100)).features
    assert {f.meta["extra"]["测量员"] for f in feats} == {"李四"} and len(feats) == 12


def test_a_bulk_import_publishes_one_bounded_change(store, make_shapefile, monkeypatch):
    """A big import's ChangeSet holds its ids as runs and its geometries folded into tiles,
    not one entry per row."""
    from geoapi.storage import model

    monkeypatch.setattr(model, "KEEP_GEOMS", 50)
    heard = []
    store.subscribe(heard.append)
    pts = lonlat_points(400, seed=4)
    shp = make_shapefile("big", shapely.points(projected(pts, TO_4547)), _fields(400))
    report = run_import(store, shp, ImportOptions(layer="manholes", batch_size=64))
    assert report.imported == 400
    (change,) = [c for c in heard if c.layer == "manholes"]
    assert change.op == "insert" and len(change.ids) == 400 and len(change.ids.runs()) == 1
    assert len(change.old_geoms) + len(change.new_geoms) <= 50
    assert change.footprint is not None and change.footprint.count + len(change.new_geoms) == 400
    bounds = np.array(change.footprint.bounds)
    assert (bounds[:2] <= pts.min(axis=0) + 1e-6).all() and (bounds[2:] >= pts.max(axis=0) - 1e-6).all()
