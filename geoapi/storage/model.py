"""Plain data passed in and out of the Store."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from shapely.geometry.base import BaseGeometry


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


@dataclass
class ChangeSet:
    """What one committed write changed in one layer: for tile invalidation and event feeds."""

    layer: str
    ids: list[int]
    old_geoms: list[BaseGeometry]
    new_geoms: list[BaseGeometry]
    op: str  # insert | update | delete | bulk
    batch_id: str | None = None
    status_changed: bool = False
