"""PostGIS: the maintained cell table behind aggregated tiles stays exact on every write path.

After each kind of write the whole table is compared with the cells computed in numpy from the
points (tiles.aggregate.global_cells), and every aggregated tile read from the table is compared
with the tile counted from the points (the per-request SQL path) and with the numpy encoding.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter

import numpy as np
import pytest
import sqlalchemy as sa
from shapely import Point

from geoapi.storage import tilecells
from geoapi.storage.tilesql import render_tile
from tests.tiles.conftest import decode
from tiles.aggregate import CELL_BITS, aggregate_points, aggregated_zooms, global_cells
from tiles.filters import LayerFilter
from tiles.grid import TileId
from tiles.mvt import encode

# PostGIS only: the SpatiaLite variant of the ``backend`` fixture is not generated at all
pytestmark = [pytest.mark.postgis, pytest.mark.parametrize("backend", ["postgis"], indirect=True)]
LAYER = "manholes"
STATUS = ("完好", "破损", "丢失", "占用")
EVERYTHING = LayerFilter(updated_since=dt.datetime(1900, 1, 1, tzinfo=dt.UTC))  # forces per-request counting


@pytest.fixture
def pg(store):
    return store


def points(n: int, seed: int, spread: float = 0.15) -> list[tuple[dict, Point]]:
    rng = np.random.default_rng(seed)
    lon = np.clip(113.24 + rng.normal(0, spread, n), 112.6, 113.7)  # inside the city's bounds
    lat = np.clip(35.21 + rng.normal(0, spread * 0.8, n), 34.8, 35.5)
    smart = rng.integers(0, 3, n)  # true, false, unset
    return [({"well_use": "雨水", "status": STATUS[int(s)], **({"is_smart": bool(m)} if m < 2 else {})}, Point(x, y))
            for x, y, s, m in zip(lon, lat, rng.integers(0, len(STATUS), n), smart, strict=True)]


def stored_points(store, smart: bool = False) -> tuple:
    with store.engine.connect() as conn:
        rows = conn.exec_driver_sql(f"SELECT ST_X(geom), ST_Y(geom), status, is_smart FROM {LAYER}").all()
    return (np.array([r[0] for r in rows], dtype=float), np.array([r[1] for r in rows], dtype=float),
            [r[2] for r in rows], *([[r[3] is True for r in rows]] if smart else []))


def expected_cells(store) -> dict[tuple, tuple]:
    layer = store.registry[LAYER]
    lon, lat, status, smart = stored_points(store, smart=True)
    out: dict[tuple, list] = {}
    for level in tilecells.levels(layer):
        gx, gy = global_cells(lon, lat, level)
        for x, y, s, m in zip(gx.tolist(), gy.tolist(), status, smart, strict=True):
            row = out.setdefault((level, x >> CELL_BITS, y >> CELL_BITS, x, y), [0] * (2 + len(STATUS)))
            row[0] += 1
            if s in STATUS:
                row[1 + STATUS.index(s)] += 1
            row[-1] += m  # n_smart: is_smart true
    return {k: tuple(v) for k, v in out.items()}


def table_cells(store) -> dict[tuple, tuple]:
    cols = ", ".join([*(f'"count_{v}"' for v in STATUS), "n_smart"])
    with store.engine.connect() as conn:
        rows = conn.exec_driver_sql(f"SELECT level, tx, ty, cx, cy, n, {cols} FROM {LAYER}_tile_cells").all()
    return {tuple(r[:5]): tuple(r[5:]) for r in rows}


def features(data: bytes) -> dict[int, tuple]:
    layer = decode(data).get(LAYER, {"features": []}) if data else {"features": []}
    return {f["id"]: (tuple(f["geometry"]["coordinates"]), tuple(sorted(f["properties"].items())))
            for f in layer["features"]}


def check(store) -> None:
    """Table = numpy pyramid (every cell); at each aggregated zoom the densest and some sparse
    tiles read from the table = counted from the points = encoded from numpy's cells."""
    layer = store.registry[LAYER]
    want, got = expected_cells(store), table_cells(store)
    assert got == want
    with store.engine.connect() as conn:
        total = conn.exec_driver_sql(f"SELECT count(*) FROM {LAYER}").scalar()
    for level in tilecells.levels(layer):
        assert sum(v[0] for k, v in got.items() if k[0] == level) == total
    lon, lat, status = stored_points(store)
    checked = 0
    for z in aggregated_zooms(layer):
        assert tilecells.serves(store, layer, z)
        gx, gy = global_cells(lon, lat, z)
        per_tile = Counter(zip(gx.tolist(), gy.tolist(), strict=True))
        ranked = [t for t, _ in per_tile.most_common()]
        for x, y in ranked[:4] + ranked[4::max(1, len(ranked) // 4)][:4]:
            tile = TileId(z, x, y)
            from_cells = features(render_tile(store, [layer], tile, {}))
            counted = features(render_tile(store, [layer], tile, {LAYER: EVERYTHING}))
            in_numpy = features(encode([aggregate_points(tile, layer, lon, lat, status)]))
            assert from_cells == counted == in_numpy, tile
            assert sum(dict(p)["count"] for _, p in from_cells.values()) == per_tile[(x, y)]
            checked += 1
    assert checked or not total


def sql(store, statement: str) -> None:
    with store.engine.begin() as conn:
        conn.exec_driver_sql(statement)


def test_cells_follow_store_writes(pg):
    check(pg)  # empty
    pg.bulk_write(LAYER, points(400, 1), actor="test")  # COPY
    ids = [pg.create(LAYER, p, g, actor="test").id for p, g in points(5, 2)]
    check(pg)
    pg.patch(LAYER, ids[0], {}, Point(113.45, 35.35), actor="test")  # a move, far
    other = next(s for s in STATUS if s != pg.get(LAYER, ids[1]).props["status"])
    pg.patch(LAYER, ids[1], {"status": other}, actor="test")  # a status change
    pg.delete(LAYER, ids[2], actor="test")
    check(pg)
    pg.bulk_write(LAYER, points(150, 3), actor="test", mode="replace")
    check(pg)


def test_a_rolled_back_write_leaves_the_cells_as_they_were(pg):
    pg.bulk_write(LAYER, points(100, 4), actor="test")
    before = table_cells(pg)
    with pytest.raises(RuntimeError), pg.transaction("test") as w:
        w.create(LAYER, {"well_use": "雨水", "status": "破损"}, Point(113.3, 35.3))
        w.write_many(LAYER, points(50, 5))
        raise RuntimeError("abort")
    assert table_cells(pg) == before
    check(pg)


def test_cells_follow_direct_sql(pg):
    pg.bulk_write(LAYER, points(300, 6), actor="test")
    sql(pg, f"UPDATE {LAYER} SET geom = ST_Translate(geom, 0.01, -0.02) WHERE mod(id, 3) = 0")
    sql(pg, f"UPDATE {LAYER} SET status = '占用' WHERE mod(id, 5) = 0")
    sql(pg, f"UPDATE {LAYER} SET status = NULL WHERE mod(id, 11) = 0")  # counted, in no status column
    sql(pg, f"UPDATE {LAYER} SET is_smart = NOT coalesce(is_smart, true) WHERE mod(id, 4) = 1")  # n_smart only
    sql(pg, f"UPDATE {LAYER} SET well_use = '污水'")  # touches no cell
    check(pg)
    sql(pg, f"INSERT INTO {LAYER} (well_use, status, created_at, created_by, updated_at, updated_by, geom) "
            f"SELECT well_use, '破损', now(), 'psql', now(), 'psql', ST_Translate(geom, 0.003, 0.003) "
            f"FROM {LAYER} WHERE mod(id, 4) = 0")
    sql(pg, f"DELETE FROM {LAYER} WHERE mod(id, 7) = 0")
    check(pg)
    sql(pg, f"DELETE FROM {LAYER}")
    assert table_cells(pg) == {}
    check(pg)


def test_truncate_empties_the_cells(pg):
    pg.bulk_write(LAYER, points(100, 7), actor="test")
    assert table_cells(pg)
    sql(pg, f"TRUNCATE {LAYER} CASCADE")
    assert table_cells(pg) == {}
    sql(pg, f"TRUNCATE {LAYER}, {LAYER}_tile_cells")  # the trigger's own TRUNCATE then cannot run
    pg.bulk_write(LAYER, points(60, 8), actor="test")
    check(pg)


def test_upgrade_backfills_a_populated_table_and_is_idempotent(pg):
    pg.bulk_write(LAYER, points(300, 9), actor="test")
    with pg.engine.begin() as conn:  # as before this feature: no cell table, no triggers
        conn.exec_driver_sql(f"DROP TABLE {LAYER}_tile_cells")
        for suffix, *_ in tilecells.TRIGGERS:
            conn.exec_driver_sql(f"DROP TRIGGER geoapi_cells_{suffix} ON {LAYER}")
    layer = pg.registry[LAYER]
    z = aggregated_zooms(layer).start
    assert not tilecells.serves(pg, layer, z)  # not there yet: tiles still counted per request
    done = pg.upgrade()
    assert any(line.startswith(f"built {LAYER}_tile_cells") for line in done)
    check(pg)
    assert not [line for line in pg.upgrade() if "tile_cells" in line]  # nothing to do twice


def test_upgrade_rebuilds_a_table_of_another_shape(pg):
    pg.bulk_write(LAYER, points(120, 10), actor="test")
    sql(pg, f"COMMENT ON TABLE {LAYER}_tile_cells IS 'an older layer definition'")
    sql(pg, f"DELETE FROM {LAYER}_tile_cells WHERE level = 16")
    assert any(line.startswith(f"built {LAYER}_tile_cells") for line in pg.upgrade())
    check(pg)


def test_upgrade_rebuilds_after_writes_with_the_trigger_disabled(pg):
    pg.bulk_write(LAYER, points(80, 12), actor="test")
    sql(pg, f"ALTER TABLE {LAYER} DISABLE TRIGGER geoapi_cells_ins")
    pg.bulk_write(LAYER, points(40, 13), actor="test")  # missed by the cells
    assert table_cells(pg) != expected_cells(pg)
    assert any(line.startswith(f"built {LAYER}_tile_cells") for line in pg.upgrade())
    check(pg)


def test_layers_without_aggregation_have_no_cell_table(pg):
    with pg.engine.connect() as conn:
        tables = set(conn.execute(sa.text(
            "SELECT tablename FROM pg_tables WHERE tablename LIKE '%\\_tile\\_cells'")).scalars())
    want = {tilecells.table_name(layer) for layer in pg.registry if tilecells.levels(layer)}
    assert tables == want and f"{LAYER}_tile_cells" in want


def test_sql_and_numpy_cells_agree_bit_for_bit(pg):
    rng = np.random.default_rng(11)
    lon = np.concatenate([rng.uniform(-180, 180, 2000), 113.24 + rng.normal(0, 0.01, 2000),
                          [-180.0, 180.0, 0.0, 113.0]])
    lat = np.concatenate([rng.uniform(-89.9, 89.9, 2000), 35.21 + rng.normal(0, 0.01, 2000),
                          [-90.0, 90.0, 0.0, 85.0511287798066]])
    for level in (6, 16, 20, 28):
        gx, gy = tilecells.cell_sql("lon", "lat", level)
        with pg.engine.connect() as conn:
            rows = conn.execute(sa.text(f"SELECT {gx}, {gy} FROM unnest(CAST(:lon AS float8[]), "
                                        "CAST(:lat AS float8[])) AS p(lon, lat)"),
                                {"lon": lon.tolist(), "lat": lat.tolist()}).all()
        nx, ny = global_cells(lon, lat, level)
        assert [tuple(r) for r in rows] == list(zip(nx.tolist(), ny.tolist(), strict=True)), level
