"""Feature pages with extra SQL conditions (CQL2, radius, corridor) on top of a FeatureQuery."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import func

from geoapi.storage.model import FeatureQuery, Page
from geoapi.storage.store import Store


def query(store: Store, layer_id: str, q: FeatureQuery, extra: list | tuple = ()) -> Page:
    """Like ``Store.query`` with ``extra`` conditions ANDed in; numberMatched counts them too."""
    t = store.table(layer_id)
    conds = [*store.where(layer_id, q), *extra]
    order = [sa.desc(t.c[n]) if desc else sa.asc(t.c[n]) for n, desc in q.sortby] + [t.c.id]
    stmt = (sa.select(*store.select_columns(layer_id)).where(*conds).order_by(*order)
            .limit(q.limit).offset(q.offset))
    with store.read() as conn:
        features = store.rows_to_features(layer_id, conn.execute(stmt))
        matched = None
        if q.count:
            if len(features) < q.limit and (features or q.offset == 0):
                matched = q.offset + len(features)
            else:
                matched = conn.execute(sa.select(func.count()).select_from(t).where(*conds)).scalar_one()
    return Page(features=features, number_matched=matched)
