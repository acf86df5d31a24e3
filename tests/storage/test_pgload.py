"""PostGIS initial loads build the layer's secondary indexes after the rows (geoapi.storage.pgload):
the indexes exist afterwards, and a failed load leaves table, indexes and history as they were."""

from __future__ import annotations

import numpy as np
import pytest
import sqlalchemy as sa
from shapely.geometry import Point

from geoapi.errors import ConflictError
from geoapi.storage import FeatureQuery, pgload


@pytest.fixture
def pg(pg_small_copies):
    return pg_small_copies


def points(n: int, seed: int = 1) -> list:
    rng = np.random.default_rng(seed)
    return [({"well_use": "雨水", "cover_no": f"P{seed}-{i}"},
             Point(113.24 + rng.uniform(-0.02, 0.02), 35.22 + rng.uniform(-0.02, 0.02))) for i in range(n)]


def index_definitions(store) -> set[str]:
    with store.engine.connect() as conn:
        return set(conn.execute(sa.text("SELECT indexdef FROM pg_indexes WHERE tablename = 'manholes'")).scalars())


def history_rows(store) -> int:
    """Features with a history entry (an insert entry covers a run of ids)."""
    with store.engine.connect() as conn:
        return conn.execute(sa.text("SELECT coalesce(sum(coalesce(last_feature_id, feature_id) - feature_id + 1), 0) FROM history")).scalar_one()


def exclusive_lock_held(store) -> bool:
    """Seen from another connection: does a transaction hold the layer table's ACCESS EXCLUSIVE lock?"""
    with store.engine.connect() as conn:
        return conn.execute(sa.text(
            "SELECT EXISTS (SELECT FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
            "WHERE c.relname = 'manholes' AND l.mode = 'AccessExclusiveLock' AND l.granted)")).scalar_one()


def watched(rows: list, seen: list, at: int = 40):
    """The rows, noting after ``at`` of them (two COPY statements in) whether the indexes are deferred."""
    for i, row in enumerate(rows):
        if i == at:
            seen.append(exclusive_lock_held(seen[0]))
        yield row


def test_an_initial_load_builds_the_secondary_indexes_after_the_rows(pg):
    before = index_definitions(pg)
    assert {d for d in before if "USING gist" in d} and {d for d in before if "UNIQUE" in d}
    seen = [pg]
    counts = pg.bulk_write("manholes", watched(points(60), seen), actor="t", validated=True)
    assert seen[1] is True          # the indexes were dropped for the load …
    assert counts["inserted"] == 60 == pg.count("manholes")
    assert index_definitions(pg) == before   # … and are all back
    assert history_rows(pg) == 60
    hits = pg.query("manholes", FeatureQuery(bbox=(113.22, 35.20, 113.24, 35.22), limit=100)).features
    assert hits and all(113.22 <= f.geometry.x <= 113.24 for f in hits)


@pytest.mark.parametrize(("expected", "deferred_by_row_9"), [(None, False), (12, True)])
def test_a_load_the_caller_announces_as_large_starts_as_an_initial_load_with_its_first_chunk(
        pg, expected, deferred_by_row_9):
    """12 rows, chunks of 7, COPY_ROWS 10: without a hint, 10 rows are never queued before the
    last chunk, so the write stays an ordinary one; announced (an import knows its file's row
    count), it becomes an initial load (lock, indexes dropped) with its first chunk, whose COPY
    then runs while the second is prepared."""
    seen = [pg]
    counts = pg.bulk_write("manholes", watched(points(12), seen, at=9), actor="t", validated=True,
                           expected_rows=expected)
    assert seen[1] is deferred_by_row_9
    assert counts["inserted"] == 12 == pg.count("manholes") and cell_totals(pg)[0]


@pytest.mark.parametrize("mode", ["append", "replace"])
def test_a_load_into_a_layer_with_rows_keeps_its_indexes(pg, mode):
    """Readers of a layer that has rows are never made to wait, even by a replace."""
    pg.bulk_write("manholes", points(3, seed=5), actor="t", validated=True)
    seen = [pg]
    pg.bulk_write("manholes", watched(points(60), seen), actor="t", validated=True, mode=mode)
    assert seen[1] is False and pg.count("manholes") == (63 if mode == "append" else 60)


def test_a_failed_load_leaves_table_indexes_and_history_unchanged(pg):
    before = index_definitions(pg)

    def failing():
        yield from points(60)
        raise RuntimeError("rejected rows")   # as the importer's strict mode raises at the end

    with pytest.raises(RuntimeError):
        pg.bulk_write("manholes", failing(), actor="t", validated=True)
    assert pg.count("manholes") == 0 and history_rows(pg) == 0
    assert index_definitions(pg) == before


def test_a_refused_copy_during_a_deferred_load_leaves_everything_as_it_was(pg):
    before = index_definitions(pg)
    code = "4108000102000007"
    rows = points(30) + [({"well_use": "污水", "obj_code": code}, Point(113.24, 35.22))] * 2 + points(20, seed=3)
    with pytest.raises(ConflictError):
        pg.bulk_write("manholes", rows, actor="t")
    assert pg.count("manholes") == 0 and history_rows(pg) == 0
    assert index_definitions(pg) == before
    assert pg.bulk_write("manholes", points(20, seed=2), actor="t")["inserted"] == 20


def test_an_error_caught_inside_the_transaction_still_leaves_the_indexes(pg):
    """The savepoint is rolled back before the error goes on: a caller that catches it and commits
    keeps the indexes (and none of the failed load's rows)."""
    before = index_definitions(pg)

    def failing():
        yield from points(60)
        raise RuntimeError("stop")

    with pg.transaction("t") as w:
        with pytest.raises(RuntimeError):
            w.write_many("manholes", failing(), validated=True)
        w.create("manholes", {"well_use": "雨水"}, Point(113.24, 35.22))
    assert index_definitions(pg) == before and pg.count("manholes") == 1


def test_a_load_that_cannot_take_the_lock_keeps_the_indexes(pg, monkeypatch):
    monkeypatch.setattr(pgload, "LOCK_TIMEOUT", "50ms")
    with pg.engine.connect() as reader:
        reader.execute(sa.text("SELECT count(*) FROM manholes"))   # holds ACCESS SHARE until it ends
        seen = [pg]
        pg.bulk_write("manholes", watched(points(60), seen), actor="t", validated=True)
        reader.rollback()
    assert seen[1] is False and pg.count("manholes") == 60


def cell_totals(store) -> tuple[dict, str]:
    with store.engine.connect() as conn:
        levels = dict(conn.execute(sa.text(
            "SELECT level, sum(n)::int FROM manholes_tile_cells GROUP BY level ORDER BY level")).all())
        enabled = conn.execute(sa.text("SELECT tgenabled FROM pg_trigger "
                                       "WHERE tgrelid = 'manholes'::regclass AND tgname = 'geoapi_cells_ins'")).scalar()
    return levels, enabled


def test_an_initial_load_counts_its_tile_cells_at_the_end_and_the_trigger_counts_on(pg):
    pg.bulk_write("manholes", points(60), actor="t", validated=True)
    levels, enabled = cell_totals(pg)
    assert levels and set(levels.values()) == {60} and enabled == "O"
    with pg.engine.connect() as conn:
        # the same cells as the trigger's: its delete subtracts every row's cells down to nothing
        conn.execute(sa.text("DELETE FROM manholes"))
        assert conn.execute(sa.text("SELECT count(*) FROM manholes_tile_cells")).scalar() == 0
        conn.rollback()
    pg.create("manholes", {"well_use": "雨水"}, Point(113.24, 35.22), actor="t")
    levels, _ = cell_totals(pg)
    assert set(levels.values()) == {61}


def test_the_cells_an_initial_load_counts_as_it_writes_are_the_cells_sql_counts(pg):
    """The writer counts an initial load's cells from the rows it prepares (tilecells.LoadTally);
    every column of every level must equal the SQL fill's count of the same rows."""
    from geoapi.storage import tilecells

    statuses = ["完好", "破损", "丢失", "占用", None]
    rows = [({**props, "status": statuses[i % 5], "is_smart": (True, False, None)[i % 3]}, geom)
            for i, (props, geom) in enumerate(points(300, seed=4))]
    rows.append(({"well_use": "雨水", "status": "完好"}, Point(113.24, 35.22)))   # two in one cell
    rows.append(({"well_use": "雨水", "status": "破损"}, Point(113.24, 35.22)))
    pg.bulk_write("manholes", rows, actor="t", validated=True)
    select = "SELECT * FROM manholes_tile_cells ORDER BY level, tx, ty, cx, cy"
    with pg.engine.connect() as conn:
        tallied = conn.execute(sa.text(select)).all()
        conn.execute(sa.text("DELETE FROM manholes_tile_cells"))
        tilecells._fill(conn, pg.layer("manholes"), "manholes")
        counted = conn.execute(sa.text(select)).all()
        conn.rollback()
    assert len({r.level for r in tallied}) > 1 and sum(r.n for r in tallied if r.level == tallied[0].level) == 302
    assert tallied == counted


def test_a_failed_initial_load_leaves_the_cell_trigger_enabled_and_no_cells(pg):
    def failing():
        yield from points(60)
        raise RuntimeError("rejected rows")

    with pytest.raises(RuntimeError):
        pg.bulk_write("manholes", failing(), actor="t", validated=True)
    assert cell_totals(pg) == ({}, "O")
