"""`geoapi db optimize`: layer tables rewritten in spatial order, nothing else changed."""

from __future__ import annotations

import numpy as np
import pytest
import sqlalchemy as sa
from shapely.geometry import Point

from geoapi.errors import LayerNotFoundError
from geoapi.storage import FeatureQuery
from geoapi.storage.maintenance import optimize

BOX = (113.235, 35.215, 113.245, 35.225)


def scattered_grid(n: int = 30) -> list:
    """n×n points on a 0.04° square, written in random order (as a city-wide survey arrives)."""
    xs = np.linspace(113.22, 113.26, n)
    ys = np.linspace(35.20, 35.24, n)
    pts = [(x, y) for x in xs for y in ys]
    order = np.random.default_rng(7).permutation(len(pts))
    return [({"well_use": "雨水", "cover_no": f"G-{i}"}, Point(*pts[i])) for i in order]


def pages_read(store) -> int:
    """PostGIS: how many heap pages hold the rows of a small box (what a bbox page reads)."""
    with store.engine.connect() as conn:
        return conn.execute(sa.text(
            "SELECT count(DISTINCT (ctid::text::point)[0]) FROM manholes "
            "WHERE geom && ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4490)"),
            dict(zip(["x0", "y0", "x1", "y1"], BOX, strict=True))).scalar_one()


def test_bulk_write_stores_its_rows_in_spatial_order(store):
    """A chunk's rows are written in Z-order (geoapi.storage.zorder): a small box's rows get
    ids in a few runs and, on PostGIS, sit on a few heap pages, whatever the file's order."""
    store.bulk_write("manholes", scattered_grid(), actor="test")
    ids = sorted(f.id for f in store.query("manholes", FeatureQuery(bbox=BOX, limit=1000)).features)
    runs = 1 + sum(1 for a, b in zip(ids, ids[1:], strict=False) if b != a + 1)
    assert len(ids) > 50 and runs <= len(ids) / 4
    if store.dialect == "postgis":
        assert pages_read(store) <= 6


def test_optimize_keeps_every_row_and_on_postgis_stores_them_in_spatial_order(store):
    rows = scattered_grid()
    for i in range(0, len(rows), 30):   # 30 writes: each in Z-order, together scattered
        store.bulk_write("manholes", rows[i:i + 30], actor="test")
    before = store.query("manholes", FeatureQuery(bbox=BOX, limit=1000))
    pages_before = pages_read(store) if store.dialect == "postgis" else None
    with store.engine.connect() as conn:
        history_before = conn.execute(sa.text("SELECT count(*) FROM history")).scalar_one()

    done = optimize(store, ["manholes", "toilets"])

    assert [(o.layer, o.rows) for o in done] == [("manholes", 900), ("toilets", 0)]
    assert [o.clustered for o in done] == [store.dialect == "postgis", False]
    after = store.query("manholes", FeatureQuery(bbox=BOX, limit=1000))
    assert after.number_matched == before.number_matched > 0
    assert sorted((f.id, f.props["cover_no"], f.geometry.wkt) for f in after.features) == \
        sorted((f.id, f.props["cover_no"], f.geometry.wkt) for f in before.features)
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM history")).scalar_one() == history_before
    if store.dialect == "postgis":
        # neighbours on the ground are neighbours on disk: the box's rows sit on far fewer pages
        assert pages_read(store) < pages_before / 3
        with store.engine.connect() as conn:  # the ordering index was temporary
            names = conn.execute(sa.text("SELECT indexrelname FROM pg_stat_user_indexes "
                                         "WHERE relname = 'manholes'")).scalars().all()
        assert "idx_manholes_geom" in names and not [n for n in names if "optimize" in n]


def test_optimize_refuses_an_unknown_layer_before_touching_any(store):
    with pytest.raises(LayerNotFoundError, match="nope"):
        optimize(store, ["manholes", "nope"])
