"""Storage: the only package that knows whether it runs on SpatiaLite or PostGIS."""

from geoapi.storage.model import ChangeSet, Feature, FeatureQuery, HistoryEntry, Page
from geoapi.storage.store import Store

__all__ = ["ChangeSet", "Feature", "FeatureQuery", "HistoryEntry", "Page", "Store"]
