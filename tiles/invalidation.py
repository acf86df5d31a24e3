"""Exact invalidation: a committed change purges the tiles its old and new geometries touch, at
every zoom the layer serves (aggregated zooms included), and is announced on the feed.

A large change (an import) arrives with its geometries already folded into a
:class:`tiles.footprint.TileFootprint`, chunk by chunk, so neither the writer nor this listener
holds a million geometries; zooms where it touches more tiles than the footprint lists are
purged whole.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import shapely

from layers.registry import LayerRegistry
from tiles.cache import Purge, TileCache
from tiles.feed import ChangeFeed, Notice
from tiles.footprint import TileFootprint

log = logging.getLogger(__name__)
MAX_NOTICE_BOXES = 50  # more changed geometries than this are announced as one bbox
NOTICE_IDS = 100       # ids listed in a notice


class Change(Protocol):
    """What geoapi.storage's ChangeSet carries (geometries in EPSG:4490, None where absent).

    It may also carry ``footprint``: the geometries it no longer lists, folded (TileFootprint).
    """

    layer: str
    ids: Sequence[int]
    old_geoms: Sequence[Any]
    new_geoms: Sequence[Any]


class TileInvalidator:
    def __init__(self, registry: LayerRegistry, cache: TileCache, feed: ChangeFeed):
        self.registry = registry
        self.cache = cache
        self.feed = feed

    def __call__(self, change: Change) -> None:
        """The store listener. Never raises: a failing purge must not fail the write, so it
        clears the whole cache instead (correct, only slower)."""
        try:
            self.apply(change)
        except Exception:
            log.exception("tile invalidation failed for %s; clearing the tile cache", change.layer)
            self.cache.clear()

    def apply(self, change: Change) -> Purge | None:
        layer = self.registry.get(change.layer)
        if layer is None:
            return None
        zooms = range(layer.tiles.minzoom, layer.tiles.maxzoom + 1)
        ids = list(change.ids[:NOTICE_IDS])
        geoms = np.array([g for g in (*change.old_geoms, *change.new_geoms) if g is not None and not g.is_empty],
                         dtype=object)
        folded: TileFootprint | None = getattr(change, "footprint", None)
        footprint = TileFootprint(zooms)
        footprint.add(geoms)
        if folded:
            footprint.merge(folded)
        if not footprint:
            # ids without geometries (e.g. a bare status change the store could not place):
            # every zoom of the layer.
            purge = Purge(frozenset(), frozenset((layer.id, z) for z in zooms))
            self.cache.purge(purge)
            self.feed.publish([_notice(layer.id, ids, None, zooms)])
            return purge
        purge = Purge(frozenset((layer.id, t.z, t.x, t.y) for t in footprint.tiles()),
                      frozenset((layer.id, z) for z in footprint.whole))
        self.cache.purge(purge)
        if folded:
            notices = [_notice(layer.id, ids, [round(v, 7) for v in footprint.bounds or ()], zooms)]
        else:
            notices = _notices(layer.id, ids, geoms, zooms)
        self.feed.publish(notices)
        return purge


def _notices(layer: str, ids: list[int], geoms: np.ndarray, zooms: range) -> list[Notice]:
    bounds = shapely.bounds(geoms)
    if len(bounds) > MAX_NOTICE_BOXES:
        bounds = np.array([[bounds[:, 0].min(), bounds[:, 1].min(), bounds[:, 2].max(), bounds[:, 3].max()]])
    # One notice per distinct box: a move is two places, not the box spanning both.
    boxes = {tuple(round(float(v), 7) for v in b) for b in bounds}
    return [_notice(layer, ids, list(b), zooms) for b in sorted(boxes)]


def _notice(layer: str, ids: list[int], bbox: list[float] | None, zooms: range) -> Notice:
    return {"layer": layer, "ids": ids[:NOTICE_IDS], "bbox": bbox, "minzoom": zooms.start, "maxzoom": zooms.stop - 1,
            "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
