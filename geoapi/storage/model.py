"""Plain data passed in and out of the Store."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from shapely.geometry.base import BaseGeometry

from tiles.footprint import TileFootprint


@dataclass
class Feature:
    layer: str
    id: int
    props: dict[str, Any]
    geometry: BaseGeometry
    version: int
    meta: dict[str, Any] = field(default_factory=dict)  # created/updated at/by, src_*, batch_id, extra

    @property
    def etag(self) -> str:
        return f'"{self.layer}-{self.id}-v{self.version}"'


@dataclass
class FeatureQuery:
    bbox: tuple[float, float, float, float] | None = None  # EPSG:4490 lon/lat
    intersects: BaseGeometry | None = None  # EPSG:4490
    filters: dict[str, list[Any]] = field(default_factory=dict)  # field -> accepted values (IN)
    updated_since: dt.datetime | None = None
    limit: int = 100
    offset: int = 0
    sortby: list[tuple[str, bool]] = field(default_factory=list)  # (field, descending)
    ids: list[int] | None = None
    count: bool = True
    conditions: list = field(default_factory=list)  # extra SQLAlchemy conditions (CQL2, radius …), from storage code


@dataclass
class Page:
    features: list[Feature]
    number_matched: int | None


@dataclass
class HistoryEntry:
    version: int
    op: str
    actor: str
    at: dt.datetime
    batch_id: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class IdSet(Sequence[int]):
    """Feature ids kept as sorted runs ``[start, stop)``: an import's ids are a few blocks, so a
    million of them take a few numbers, not a million Python ints. Iterates in id order."""

    __slots__ = ("_starts", "_stops", "_pending")

    def __init__(self, ids: Iterable[int] = ()):
        self._starts = np.empty(0, dtype=np.int64)
        self._stops = np.empty(0, dtype=np.int64)
        self._pending: list[int] = []
        self.extend(ids)

    def extend(self, ids: Iterable[int]) -> None:
        self._pending.extend(ids)
        if len(self._pending) >= 4096:
            self._settle()

    def append(self, fid: int) -> None:
        self.extend((fid,))

    def runs(self) -> list[tuple[int, int]]:
        self._settle()
        return list(zip(self._starts.tolist(), self._stops.tolist(), strict=True))

    def _settle(self) -> None:
        if not self._pending:
            return
        new = np.unique(np.asarray(self._pending, dtype=np.int64))
        self._pending = []
        cut = np.flatnonzero(np.diff(new) != 1) + 1
        starts = np.concatenate([self._starts, new[np.r_[0, cut]]])
        stops = np.concatenate([self._stops, new[np.r_[cut - 1, len(new) - 1]] + 1])
        order = np.argsort(starts, kind="stable")
        starts, stops = starts[order], np.maximum.accumulate(stops[order])
        # merge runs that overlap or touch
        keep = np.r_[True, starts[1:] > stops[:-1]]
        group = np.cumsum(keep) - 1
        self._starts = starts[keep]
        self._stops = np.zeros(len(self._starts), dtype=np.int64)
        np.maximum.at(self._stops, group, stops)

    def __len__(self) -> int:
        self._settle()
        return int((self._stops - self._starts).sum())

    def __iter__(self) -> Iterator[int]:
        for a, b in self.runs():
            yield from range(a, b)

    def __contains__(self, fid: object) -> bool:
        if not isinstance(fid, int | np.integer):
            return False
        self._settle()
        i = int(np.searchsorted(self._starts, fid, side="right")) - 1
        return i >= 0 and fid < self._stops[i]

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):   # a head (feed notices list the first 100)
            start, stop, step = index.indices(len(self))
            if step != 1 or start != 0:
                return list(self)[index]
            return list(itertools.islice(iter(self), stop))
        n = len(self)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(index)
        for a, b in self.runs():
            if index < b - a:
                return a + index
            index -= b - a
        raise IndexError(index)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, IdSet | list | tuple | range):
            return list(self) == list(other)
        return NotImplemented

    def __repr__(self) -> str:
        return f"IdSet({self.runs()!r})"


KEEP_GEOMS = 1000  # geometries a ChangeSet lists as they are; beyond, they are folded into a footprint


@dataclass
class ChangeSet:
    """What one committed write changed in one layer: for tile invalidation and event feeds.

    Bounded whatever the size of the write: ids are an IdSet (runs), and once more than
    KEEP_GEOMS geometries were recorded they are folded into ``footprint`` (the tiles they
    touch at ``zooms``, tiles.footprint) and the lists are emptied. Listeners read the lists
    and the footprint together.
    """

    layer: str
    op: str  # insert | update | delete | bulk
    batch_id: str | None = None
    status_changed: bool = False
    zooms: range = range(0)   # the layer's tile zooms, for folding
    ids: IdSet = field(default_factory=IdSet)
    old_geoms: list[BaseGeometry] = field(default_factory=list)
    new_geoms: list[BaseGeometry] = field(default_factory=list)
    footprint: TileFootprint | None = None

    def record(self, ids: Iterable[int], old: Iterable[Any] = (), new: Iterable[Any] = ()) -> None:
        self.ids.extend(ids)
        self.old_geoms.extend(old)
        self.new_geoms.extend(new)
        if len(self.old_geoms) + len(self.new_geoms) > KEEP_GEOMS:
            if self.footprint is None:
                self.footprint = TileFootprint(self.zooms)
            self.footprint.add([*self.old_geoms, *self.new_geoms])
            self.old_geoms, self.new_geoms = [], []
