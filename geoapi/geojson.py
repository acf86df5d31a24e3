"""GeoJSON in and out: features to dicts, request bodies to shapely geometries."""

from __future__ import annotations

from typing import Any

import numpy as np
import shapely
from shapely.geometry import mapping, shape

from geoapi.errors import ValidationFailedError
from geoapi.storage.model import Feature

_NO_GEOMETRY = object()


def feature_to_geojson(f: Feature, *, properties: list[str] | None = None, system: bool = True,
                       geometry: Any = _NO_GEOMETRY) -> dict:
    """A GeoJSON Feature dict; dates stay Python dates (orjson writes them as ISO 8601).

    ``geometry`` replaces the stored one (already a GeoJSON mapping, e.g. in another CRS)."""
    props = dict(f.props) if properties is None else {k: v for k, v in f.props.items() if k in properties}
    if system:
        props["version"] = f.version
        props["updated_at"] = f.meta.get("updated_at")
    geom = mapping(f.geometry) if geometry is _NO_GEOMETRY else geometry
    return {"type": "Feature", "id": f.id, "geometry": geom, "properties": props}


def geometries_json(geoms) -> list:
    """GeoJSON geometry mappings of many geometries (None stays None), as ``mapping`` gives them.

    2D points, the bulk of a page (manholes), are built from one vectorised coordinate read:
    ≈ 5× faster than ``mapping`` per point. (GEOS' own GeoJSON writer, ``shapely.to_geojson``,
    prints 17 significant digits where orjson prints the shortest exact form: 113.29880730000001.)"""
    arr = np.asarray(geoms, dtype=object)
    if len(arr) and (shapely.get_type_id(arr) == 0).all() and not (shapely.has_z(arr) | shapely.is_empty(arr)).any():
        return [{"type": "Point", "coordinates": xy} for xy in shapely.get_coordinates(arr).tolist()]
    return [None if g is None else mapping(g) for g in arr]


def parse_feature(body: Any, *, geometry_required: bool = True) -> tuple[dict[str, Any], Any]:
    """A GeoJSON Feature body → (properties, shapely geometry | None); 422 naming the problem."""
    if not isinstance(body, dict):
        raise ValidationFailedError("the body must be a GeoJSON Feature object",
                                    [{"field": "body", "message": "not a JSON object"}])
    if body.get("type") not in ("Feature", None):
        raise ValidationFailedError(f"expected a GeoJSON Feature, got type {body.get('type')!r}",
                                    [{"field": "type", "message": "must be 'Feature'"}])
    props = body.get("properties") or {}
    if not isinstance(props, dict):
        raise ValidationFailedError("properties must be an object", [{"field": "properties", "message": "not an object"}])
    geom_json = body.get("geometry")
    if geom_json is None:
        if geometry_required:
            raise ValidationFailedError("the feature has no geometry", [{"field": "geometry", "message": "required"}])
        return props, None
    try:
        geom = shape(geom_json)
    except Exception as exc:  # shapely raises several types for malformed input
        raise ValidationFailedError(f"malformed GeoJSON geometry: {exc}",
                                    [{"field": "geometry", "message": f"malformed: {exc}"}]) from exc
    coords = shapely.get_coordinates(geom)
    if coords.size and ((abs(coords[:, 0]) > 180).any() or (abs(coords[:, 1]) > 90).any()):
        swapped = (abs(coords[:, 1]) <= 180).all() and (abs(coords[:, 0]) <= 90).all()
        message = "coordinates out of range: longitude must be within ±180 and latitude ±90" + (
            "; longitude and latitude look swapped (GeoJSON order is [lon, lat])" if swapped else "")
        raise ValidationFailedError(message, [{"field": "geometry", "message": message}])
    return props, geom
