"""Per-segment and per-grid statistics: assets by layer and status, open alarms, size, the card."""

from __future__ import annotations

from typing import Any

from geoapi.errors import BadRequestError, FeatureNotFoundError
from geoapi.grids.assign import assignable
from geoapi.grids.build import sorted_chiefs
from geoapi.grids.check import GRID_CODE
from geoapi.grids.metric import Frame
from geoapi.storage import FeatureQuery
from geoapi.storage import assign as sql
from geoapi.storage.model import Feature


def _one(store, layer_id: str, key: str, code: str) -> Feature | None:
    page = store.query(layer_id, FeatureQuery(filters={key: [code]}, limit=1, count=False))
    return page.features[0] if page.features else None


def _assets(store, column: str, code: str) -> dict[str, Any]:
    layers = [la for la in store.registry if assignable(la)]
    counts = sql.counts_by_status(store, [la.id for la in layers], column, code)
    by_layer = {la.id: {"title": la.title, "total": sum(counts[la.id].values()), "by_status": counts[la.id]}
                for la in layers if la.id in counts}
    alarms = sql.open_alarm_counts(store, [la.id for la in layers], column, code)
    return {"assets": by_layer, "asset_total": sum(v["total"] for v in by_layer.values()),
            "open_alarms": None if alarms is None else {"total": sum(alarms.values()), "by_layer": alarms}}


def _metres(geom, what: str) -> float:
    g = Frame.around([geom]).to_m(geom)
    return round(g.length if what == "length" else g.area, 1)


def segment_card(props: dict[str, Any]) -> dict[str, Any]:
    """What the 公示牌 shows (DOMAIN.md §4)."""
    return {"segment_code": props.get("segment_code"), "road_name": props.get("road_name"),
            "start_desc": props.get("start_desc"), "end_desc": props.get("end_desc"),
            "chiefs": sorted_chiefs(props.get("chiefs")), "supervise_phone": props.get("supervise_phone"),
            "duties": props.get("duties"), "patrol_rule": props.get("patrol_rule") or {}}


def road_segment(store, code: str) -> Feature:
    f = _one(store, "road_segments", "segment_code", code)
    if f is None:
        raise FeatureNotFoundError(f"no road segment with 路段编号 {code!r}")
    return f


def segment_summary(store, code: str) -> dict[str, Any]:
    seg = road_segment(store, code)
    p = seg.props
    corridor = _one(store, "road_corridors", "segment_code", code)
    out = {"segment_code": code, "id": seg.id, "road_code": p.get("road_code"), "road_name": p.get("road_name"),
           "road_grade": p.get("road_grade"), "admin_code": p.get("admin_code"), "street_code": p.get("street_code"),
           "length_m": p.get("length_m") or _metres(seg.geometry, "length"),
           "frontage_m": p.get("frontage_m"),
           "corridor_area_m2": (corridor.props.get("area_m2") or _metres(corridor.geometry, "area")) if corridor else None}
    return {**out, **_assets(store, "road_segment", code), "card": segment_card(p)}


def grid_summary(store, code: str) -> dict[str, Any]:
    if not GRID_CODE.match(code):
        raise BadRequestError(f"grid code {code!r} is malformed: 15 digits (6 区划 + 3 街道 + 3 社区 + 3 顺序码) "
                              "or 14 (legacy)")
    grid = _one(store, "unit_grids", "grid_code", code)
    if grid is None:
        raise FeatureNotFoundError(f"no unit grid with 单元网格标识码 {code}")
    p = grid.props
    out = {"grid_code": code, "id": grid.id, "admin_code": p.get("admin_code"), "street_code": p.get("street_code"),
           "community_code": p.get("community_code"), "area_m2": p.get("area_m2") or _metres(grid.geometry, "area"),
           "card": {"grid_code": code, "name": p.get("name"), "grid_leader": p.get("grid_leader"),
                    "grid_member": p.get("grid_member"), "phone": p.get("phone"),
                    "responsible_subject": p.get("responsible_subject")}}
    return {**out, **_assets(store, "grid_code", code)}
