"""SQL for grid and road-segment assignment and for per-grid / per-segment statistics.

The rules (which grid, which segment) are geometry and live in geoapi.grids.assign; this module
only fetches candidates through the spatial index, writes assignments and counts, the same way
on SpatiaLite and PostGIS.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import shapely
import sqlalchemy as sa
from sqlalchemy import func

from geoapi.storage.spatial import in_bbox

if TYPE_CHECKING:
    from geoapi.storage.store import Store

_EPS = 1e-7  # degrees, ~1 cm
ALARM_OPEN_STATES = ("open", "acknowledged")  # the alarm lifecycle: open → acknowledged → resolved
_ALARM_LAYER_COLS = ("layer", "layer_id")
_ALARM_FEATURE_COLS = ("feature_id", "asset_id", "fid")
_ALARM_STATE_COLS = ("state", "status")


def candidates(conn: sa.Connection, store: Store, layer_id: str, columns: tuple[str, ...],
               bounds: tuple[float, float, float, float]) -> list[tuple[tuple[Any, ...], Any]]:
    """Rows of ``layer_id`` whose geometry meets ``bounds``: ((column values…), shapely geometry)."""
    if layer_id not in store.registry:
        return []
    t = store.table(layer_id)
    # a point's bounds make a zero-area envelope, which neither backend intersects reliably
    x0, y0, x1, y1 = bounds
    padded = (x0 - _EPS, y0 - _EPS, x1 + _EPS, y1 + _EPS)
    stmt = sa.select(*(t.c[c] for c in columns), func.ST_AsBinary(t.c.geom).label("wkb")).where(
        in_bbox(store.dialect, t, padded))
    rows = conn.execute(stmt).all()
    geoms = shapely.from_wkb([bytes(r.wkb) for r in rows]) if rows else []
    return [(tuple(r[:-1]), g) for r, g in zip(rows, geoms, strict=True)]


def has_rows(conn: sa.Connection, store: Store, layer_id: str) -> bool:
    if layer_id not in store.registry:
        return False
    t = store.table(layer_id)
    return conn.execute(sa.select(t.c.id).limit(1)).first() is not None


def all_rows(store: Store, layer_id: str, columns: tuple[str, ...]) -> list[tuple[tuple[Any, ...], Any]]:
    """Every row of a (small) layer: grids, corridors, segments."""
    t = store.table(layer_id)
    with store.read() as conn:
        rows = conn.execute(sa.select(*(t.c[c] for c in columns), func.ST_AsBinary(t.c.geom).label("wkb"))
                            .order_by(t.c.id)).all()
    geoms = shapely.from_wkb([bytes(r.wkb) for r in rows]) if rows else []
    return [(tuple(r[:-1]), g) for r, g in zip(rows, geoms, strict=True)]


def iter_geometries(store: Store, layer_id: str, chunk: int = 5000) -> Iterator[tuple[list[int], Any]]:
    """(ids, geometry array) in id order, ``chunk`` rows at a time (keyset paging)."""
    t = store.table(layer_id)
    last = 0
    while True:
        with store.read() as conn:
            rows = conn.execute(sa.select(t.c.id, func.ST_AsBinary(t.c.geom).label("wkb"))
                                .where(t.c.id > last).order_by(t.c.id).limit(chunk)).all()
        if not rows:
            return
        last = rows[-1].id
        yield [r.id for r in rows], shapely.from_wkb([bytes(r.wkb) for r in rows])


def update_assignments(store: Store, layer_id: str, rows: list[dict[str, Any]], columns: tuple[str, ...]) -> int:
    """Set ``columns`` (grid_code / road_segment) by id from rows ``{"id", <column>: value}``.

    Derived columns, like an index rebuild: no new version or history entry.
    """
    if not rows or not columns:
        return 0
    t = store.table(layer_id)
    stmt = (t.update().where(t.c.id == sa.bindparam("_id"))
            .values({c: sa.bindparam(f"_{c}", type_=sa.String) for c in columns}))
    params = [{"_id": r["id"], **{f"_{c}": r[c] for c in columns}} for r in rows]
    with store.engine.connect().execution_options(geoapi_write=True) as conn, conn.begin():
        conn.execute(stmt, params)
    return len(rows)


def counts_by_status(store: Store, layer_ids: list[str], column: str, code: str) -> dict[str, dict[str, int]]:
    """{layer: {status: n}} of features whose ``column`` (grid_code / road_segment) equals ``code``."""
    out: dict[str, dict[str, int]] = {}
    with store.read() as conn:
        for layer_id in layer_ids:
            t = store.table(layer_id)
            rows = conn.execute(sa.select(t.c.status, func.count()).where(t.c[column] == code)
                                .group_by(t.c.status)).all()
            if rows:
                out[layer_id] = {(s or "未填"): n for s, n in rows}
    return out


def _pick(cols: set[str], names: tuple[str, ...]) -> str | None:
    return next((n for n in names if n in cols), None)


def open_alarm_counts(store: Store, layer_ids: list[str], column: str, code: str) -> dict[str, int] | None:
    """{layer: open alarms} of features with ``column`` = ``code``; None when there is no alarms table
    (or it has no layer / feature / state columns to join on)."""
    with store.read() as conn:
        insp = sa.inspect(conn)
        if not insp.has_table("alarms"):
            return None
        cols = {c["name"] for c in insp.get_columns("alarms")}
        layer_col, fid_col, state_col = (_pick(cols, _ALARM_LAYER_COLS), _pick(cols, _ALARM_FEATURE_COLS),
                                         _pick(cols, _ALARM_STATE_COLS))
        if not (layer_col and fid_col and state_col):
            return None
        alarms = sa.table("alarms", sa.column(layer_col), sa.column(fid_col), sa.column(state_col))
        out: dict[str, int] = {}
        for layer_id in layer_ids:
            t = store.table(layer_id)
            n = conn.execute(
                sa.select(func.count()).select_from(alarms.join(t, alarms.c[fid_col] == t.c.id))
                .where(alarms.c[layer_col] == layer_id, alarms.c[state_col].in_(ALARM_OPEN_STATES),
                       t.c[column] == code)).scalar_one()
            if n:
                out[layer_id] = n
        return out
