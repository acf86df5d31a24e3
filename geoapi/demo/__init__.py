"""The 焦作 demo data set: districts, streets and assets generated from a seed (no database)."""

from geoapi.demo.assets import AS_OF, generate
from geoapi.demo.table import FeatureTable

__all__ = ["AS_OF", "FeatureTable", "generate"]
