"""Which unit grid and which road segment an asset belongs to.

- grid_code: the unit grid containing a point; for lines the grid holding most of the length,
  for polygons most of the area.
- road_segment: the corridor (路段责任区) holding the asset by the same rule — a corridor is
  the set of points nearest to its centreline within its frontage, so this is "the nearest
  centreline within frontage_m". Before corridors are built, the nearest centreline whose
  frontage_m reaches the asset's representative point is used directly.
- Once a district has unit grids (or segments), the computed value wins, None included: an
  asset moved off the road loses its segment. While the grid / segment layer is empty, the
  value a feature came with (an imported BGCODE, LDBM) is kept.

``install(store)`` registers the enricher that applies this on every insert, update and import;
``assign_all(store)`` does it in bulk for rows already stored.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from geoapi.grids.corridors import DEFAULT_FRONTAGE_M
from geoapi.grids.metric import Frame
from geoapi.storage import assign as sql
from layers import LayerSpec

GRIDS, CORRIDORS, SEGMENTS = "unit_grids", "road_corridors", "road_segments"
NOT_ASSIGNED = frozenset({GRIDS, CORRIDORS, SEGMENTS, "districts"})
FALLBACK_REACH_M = 200.0  # how far the pre-corridor fallback looks for a centreline


def assignable(layer: LayerSpec) -> bool:
    return layer.kind in ("asset", "network") and layer.id not in NOT_ASSIGNED


def _measure(geoms: np.ndarray, polys: np.ndarray) -> np.ndarray:
    """How much of each geometry lies in its paired polygon: 1 for points, length, or area."""
    dims = shapely.get_dimensions(geoms)
    out = np.ones(len(geoms))
    lines, areas = dims == 1, dims == 2
    if lines.any():
        out[lines] = shapely.length(shapely.intersection(geoms[lines], polys[lines]))
    if areas.any():
        out[areas] = shapely.area(shapely.intersection(geoms[areas], polys[areas]))
    return out


def majority(geoms: np.ndarray, polys: np.ndarray, codes: list[str]) -> list[str | None]:
    """For each geometry, the code of the polygon holding it (most of it, for lines and areas)."""
    out: list[str | None] = [None] * len(geoms)
    if len(polys) == 0 or len(geoms) == 0:
        return out
    gi, pi = shapely.STRtree(polys).query(geoms, predicate="intersects")
    if len(gi) == 0:
        return out
    m = _measure(geoms[gi], polys[pi])
    keep = m > 0
    gi, pi, m = gi[keep], pi[keep], m[keep]
    order = np.lexsort((pi, -m, gi))  # per geometry: largest share first, lowest index on ties
    gi, pi = gi[order], pi[order]
    first = np.r_[True, gi[1:] != gi[:-1]]
    for g, p in zip(gi[first].tolist(), pi[first].tolist(), strict=True):
        out[g] = codes[p]
    return out


def nearest_within(geoms: np.ndarray, lines: np.ndarray, codes: list[str], reach_m: np.ndarray) -> list[str | None]:
    """For each geometry, the nearest line whose own reach (m) covers its representative point."""
    out: list[str | None] = [None] * len(geoms)
    if len(lines) == 0 or len(geoms) == 0:
        return out
    frame = Frame.around(np.concatenate([geoms, lines]))
    pts = frame.to_m(shapely.point_on_surface(geoms))
    lines_m = frame.to_m(lines)
    gi, li = shapely.STRtree(lines_m).query_nearest(pts, max_distance=float(reach_m.max()), all_matches=False)
    d = shapely.distance(pts[gi], lines_m[li])
    for g, k, dist in zip(gi.tolist(), li.tolist(), d.tolist(), strict=True):
        if dist <= reach_m[k] + 1e-6:
            out[g] = codes[k]
    return out


def _reach(values) -> np.ndarray:
    return np.array([float(v) if v else DEFAULT_FRONTAGE_M for v in values])


def _pad(bounds: tuple[float, float, float, float], metres: float) -> tuple[float, float, float, float]:
    dlat = metres / 110_574
    dlon = metres / (111_320 * max(0.1, math.cos(math.radians((bounds[1] + bounds[3]) / 2))))
    return bounds[0] - dlon, bounds[1] - dlat, bounds[2] + dlon, bounds[3] + dlat


def make_enricher(store):
    """The Store enricher: fills props["grid_code"] and props["road_segment"] inside the write.

    ``enrich.many(conn, layer, items)`` does the same for a whole chunk of ``(props, geom)``
    (bulk writes and imports): the reference layers are checked and read once per chunk and
    matched with one STRtree query, instead of two to four queries per row.
    """

    def segment_fallback(conn, geom: BaseGeometry) -> str | None:
        cands = sql.candidates(conn, store, SEGMENTS, ("segment_code", "frontage_m"),
                               _pad(geom.bounds, FALLBACK_REACH_M))
        return nearest_within(np.array([geom], dtype=object), np.array([g for _, g in cands], dtype=object),
                              [c[0] for c, _ in cands], _reach(c[1] for c, _ in cands))[0] if cands else None

    def by_majority(conn, layer_id: str, column: str, geoms: np.ndarray) -> list[str | None]:
        cands = sql.candidates(conn, store, layer_id, (column,), tuple(shapely.total_bounds(geoms)))
        return majority(geoms, np.array([g for _, g in cands], dtype=object), [c[0] for c, _ in cands])

    def enrich(conn, layer: LayerSpec, props: dict[str, Any], geom: BaseGeometry) -> None:
        if not assignable(layer) or geom is None or geom.is_empty:
            return
        one = np.array([geom], dtype=object)
        if sql.has_rows(conn, store, GRIDS):
            props["grid_code"] = by_majority(conn, GRIDS, "grid_code", one)[0]
        if not sql.has_rows(conn, store, SEGMENTS):
            return
        if sql.has_rows(conn, store, CORRIDORS):
            props["road_segment"] = by_majority(conn, CORRIDORS, "segment_code", one)[0]
        else:
            props["road_segment"] = segment_fallback(conn, geom)

    def many(conn, layer: LayerSpec, items: list[tuple[dict[str, Any], BaseGeometry]]) -> None:
        if not assignable(layer) or not items:
            return
        geoms = np.array([g for _, g in items], dtype=object)
        keep = np.flatnonzero(~(shapely.is_missing(geoms) | shapely.is_empty(geoms)))
        if keep.size == 0:
            return
        todo, geoms = [items[i] for i in keep.tolist()], geoms[keep]
        if sql.has_rows(conn, store, GRIDS):
            for (props, _), code in zip(todo, by_majority(conn, GRIDS, "grid_code", geoms), strict=True):
                props["grid_code"] = code
        if not sql.has_rows(conn, store, SEGMENTS):
            return
        if sql.has_rows(conn, store, CORRIDORS):
            segs = by_majority(conn, CORRIDORS, "segment_code", geoms)
        else:   # nearest centreline: candidates depend on each row's own surroundings
            segs = [segment_fallback(conn, geom) for _, geom in todo]
        for (props, _), seg in zip(todo, segs, strict=True):
            props["road_segment"] = seg

    enrich.geoapi_grids = True  # type: ignore[attr-defined]
    enrich.many = many  # type: ignore[attr-defined]
    return enrich


def install(store) -> None:
    """Register the enricher once (the API startup and the CLI both call this)."""
    if not any(getattr(e, "geoapi_grids", False) for e in store.enrichers):
        store.enrichers.append(make_enricher(store))


def assign_all(store, layer_ids: list[str] | None = None, chunk: int = 5000) -> dict[str, dict[str, int]]:
    """Fill grid_code / road_segment of every stored asset; {layer: {rows, grid, segment}}.

    A column is only rewritten when its reference layer (unit_grids; road_corridors or
    road_segments) has rows, as on insert.
    """
    grids = sql.all_rows(store, GRIDS, ("grid_code",))
    grid_polys, grid_codes = np.array([g for _, g in grids], dtype=object), [c[0] for c, _ in grids]
    corridors = sql.all_rows(store, CORRIDORS, ("segment_code",))
    segments = [] if corridors else sql.all_rows(store, SEGMENTS, ("segment_code", "frontage_m"))
    seg_geoms = np.array([g for _, g in (corridors or segments)], dtype=object)
    seg_codes = [c[0] for c, _ in (corridors or segments)]
    reach = _reach(c[1] for c, _ in segments)
    columns = (("grid_code",) if grids else ()) + (("road_segment",) if len(seg_geoms) else ())
    layers = [store.layer(i) for i in layer_ids] if layer_ids else [la for la in store.registry if assignable(la)]
    report: dict[str, dict[str, int]] = {}
    for layer in layers:
        counts = {"rows": 0, "grid": 0, "segment": 0}
        for ids, geoms in sql.iter_geometries(store, layer.id, chunk):
            grid = majority(geoms, grid_polys, grid_codes)
            seg = (majority(geoms, seg_geoms, seg_codes) if corridors
                   else nearest_within(geoms, seg_geoms, seg_codes, reach))
            rows = [{"id": i, "grid_code": g, "road_segment": s} for i, g, s in zip(ids, grid, seg, strict=True)]
            sql.update_assignments(store, layer.id, rows, columns)
            counts["rows"] += len(ids)
            counts["grid"] += sum(1 for g in grid if g)
            counts["segment"] += sum(1 for s in seg if s)
        report[layer.id] = counts
    return report
