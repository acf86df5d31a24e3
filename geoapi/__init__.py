"""geoapi: GIS asset registry and geospatial API for Chinese city-management bureaus."""

__version__ = "0.1.0"
