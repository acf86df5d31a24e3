"""Build segments, corridors and unit grids from what the Store holds, and write them back.

Every build is idempotent: rows are upserted by their code (keeping fields a person filled in,
such as a segment's 路长) and rows of the same scope the new build no longer produces are deleted.
"""

from __future__ import annotations

from typing import Any

import shapely
from shapely.geometry.base import BaseGeometry

from geoapi.errors import NotFoundError, ValidationFailedError
from geoapi.grids.corridors import DEFAULT_FRONTAGE_M, STEP_M, SegmentLine, build_corridors
from geoapi.grids.segments import MAX_SEGMENT_M, RoadLine, split_roads
from geoapi.grids.unitgrids import TARGET_M2, Community, generate_unit_grids
from geoapi.storage import FeatureQuery
from geoapi.storage.model import Feature
from layers.validate import conform_geometry, validate_properties

PAGE = 10_000
LEVEL_ORDER = ("市级", "区级", "街道级", "社区级", "总路长", "副总路长", "一级路长", "二级路长", "三级路长")


def all_features(store, layer_id: str, **filters: list[Any]) -> list[Feature]:
    out: list[Feature] = []
    while True:
        page = store.query(layer_id, FeatureQuery(filters=filters, limit=PAGE, offset=len(out), count=False))
        out += page.features
        if len(page.features) < PAGE:
            return out


def sorted_chiefs(chiefs: Any) -> list[dict[str, Any]]:
    """路长 from the highest level down; unknown levels last, in their given order."""
    if not isinstance(chiefs, list):
        return []
    items = [c for c in chiefs if isinstance(c, dict)]
    rank = {lv: i for i, lv in enumerate(LEVEL_ORDER)}
    return sorted(items, key=lambda c: rank.get(str(c.get("level", "")), len(rank)))


def validated(store, layer_id: str, rows: list[tuple[dict, BaseGeometry]],
              existing: set[str] | None = None, key: str | None = None) -> list[tuple[dict, BaseGeometry]]:
    """Rows checked against the layer file; rows updating ``existing`` codes get no defaults
    (a default would overwrite what a person entered, e.g. a local 监督电话)."""
    layer = store.layer(layer_id)
    out, problems = [], []
    for i, (props, geom) in enumerate(rows):
        partial = bool(existing) and key is not None and props.get(key) in existing
        clean, probs = validate_properties(layer, props, partial=partial)
        geom, gprobs = conform_geometry(layer, geom, store.bounds)
        problems += [{**p.as_dict(), "row": i} for p in probs + gprobs]
        out.append((clean, geom))
    if problems:
        raise ValidationFailedError(f"{len(problems)} problem(s) in the generated {layer.title}", problems[:50])
    return out


def _sync(store, layer_id: str, key: str, rows: list[tuple[dict, BaseGeometry]], stale: list[Feature],
          actor: str) -> dict[str, int]:
    """Upsert ``rows`` by ``key``; delete the ``stale`` features the new rows do not cover."""
    keep = {p[key] for p, _ in rows}
    rows = validated(store, layer_id, rows, {f.props.get(key) for f in stale}, key)
    with store.transaction(actor) as w:
        counts = w.write_many(layer_id, rows, mode="upsert")
        gone = [f for f in stale if f.props.get(key) not in keep]
        for f in gone:
            w.delete(layer_id, f.id)
    counts["deleted"] = len(gone)
    return counts


# -- segments ---------------------------------------------------------------------------------
def stored_roads(store) -> list[RoadLine]:
    """The registry's roads: stored segments merged per road_code (to re-cut them)."""
    roads: dict[str, RoadLine] = {}
    for f in all_features(store, "road_segments"):
        code = f.props.get("road_code") or f.props["segment_code"].rsplit("-", 1)[0]
        prev = roads.get(code)
        geom = f.geometry if prev is None else shapely.union(prev.geometry, f.geometry)
        roads[code] = RoadLine(code, f.props.get("road_name") or code, f.props.get("road_grade"), geom)
    return list(roads.values())


def write_segments(store, roads: list[RoadLine], *, actor: str,
                   max_length_m: float = MAX_SEGMENT_M) -> dict[str, int]:
    rows = split_roads(roads, max_length_m=max_length_m)
    codes = {r.code for r in roads}
    stale = [f for f in all_features(store, "road_segments") if f.props.get("road_code") in codes]
    return _sync(store, "road_segments", "segment_code", rows, stale, actor)


# -- corridors --------------------------------------------------------------------------------
def districts_by_code(store) -> dict[str, BaseGeometry]:
    if "districts" not in store.registry:
        return {}
    return {f.props["admin_code"]: f.geometry for f in all_features(store, "districts") if f.props.get("admin_code")}


def corridor_inputs(store, segments: list[Feature]) -> list[SegmentLine]:
    districts = districts_by_code(store)
    out = []
    for f in segments:
        p = f.props
        chiefs = sorted_chiefs(p.get("chiefs"))
        day_to_day = chiefs[-1] if chiefs else {}
        props = {"road_name": p.get("road_name"), "road_grade": p.get("road_grade"),
                 "admin_code": p.get("admin_code"), "street_code": p.get("street_code"),
                 "chief_name": day_to_day.get("name"), "chief_phone": day_to_day.get("phone")}
        out.append(SegmentLine(p["segment_code"], f.geometry, p.get("frontage_m"), districts.get(p.get("admin_code")),
                               {k: v for k, v in props.items() if v is not None}))
    return out


def write_corridors(store, *, actor: str, default_frontage_m: float = DEFAULT_FRONTAGE_M,
                    step_m: float = STEP_M) -> dict[str, int]:
    segments = all_features(store, "road_segments")
    rows = build_corridors(corridor_inputs(store, segments), default_frontage_m=default_frontage_m, step_m=step_m)
    return _sync(store, "road_corridors", "segment_code", rows, all_features(store, "road_corridors"), actor)


# -- unit grids -------------------------------------------------------------------------------
def stored_communities(store, admin_code: str) -> list[Community]:
    """社区 outlines dissolved from the stored grids of a district (to regenerate them)."""
    parts: dict[str, list[BaseGeometry]] = {}
    for f in all_features(store, "unit_grids", admin_code=[admin_code]):
        code = f.props.get("community_code") or (f.props.get("grid_code") or "")[:12]
        if len(code) == 12:
            parts.setdefault(code, []).append(f.geometry)
    return [Community(code, shapely.union_all(g)) for code, g in sorted(parts.items())]


def write_unit_grids(store, admin_code: str, *, actor: str, communities: list[Community] | None = None,
                     target_m2: float = TARGET_M2) -> dict[str, int]:
    district = districts_by_code(store).get(admin_code)
    if district is None:
        raise NotFoundError(f"no district {admin_code} in the districts layer: import or load it first")
    communities = communities if communities is not None else stored_communities(store, admin_code)
    if not communities:
        raise NotFoundError(f"no 社区 boundaries for district {admin_code}: pass a communities file "
                            "(12-digit 社区 codes), or load unit grids with community_code first")
    roads = [f.geometry for f in all_features(store, "road_segments")]
    rows = generate_unit_grids(communities, roads, district=district, target_m2=target_m2)
    stale = all_features(store, "unit_grids", admin_code=[admin_code])
    return _sync(store, "unit_grids", "grid_code", rows, stale, actor)
