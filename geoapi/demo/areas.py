"""街道, 社区 and 单元网格 for the demo city centre.

Street (街道) and community (社区) boundaries are not public, so they are synthetic: Voronoi
cells of seed points inside each urban district (街道 named after real 焦作 街道, 社区 after an
illustrative pool). Unit grids are 100 m × 100 m cells cut at community boundaries, so a grid
never crosses a community, street or district; slivers under 2,000 m² join the neighbour
they share the longest edge with. Codes follow DB11/T 2157-2023 (DOMAIN.md §1.5): 6 区划 +
3 街道 + 3 社区 + 3 顺序码, the sequence running west→east, north→south within the 社区.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from geoapi.demo.geo import URBAN_CODES, geom_to_xy, load_districts
from geoapi.demo.streets import build_roads

CELL_M = 100.0
SLIVER_M2 = 2000.0
COMMUNITY_KM2 = 1.6  # rough size of one 社区 in the centre

STREET_NAMES: dict[str, tuple[str, ...]] = {
    "410802": ("焦西", "焦南", "焦北", "七百间", "新华", "民生", "民主", "上白作", "王褚"),
    "410803": ("李封", "王封", "朱村", "冯封", "龙洞", "月山", "许衡", "府城"),
    "410804": ("马村", "待王", "冯营", "九里山", "演马", "安阳城"),
    "410811": ("东方红", "焦东", "百间房", "光亚", "艺新", "定和", "太行", "中星", "新城"),
}
COMMUNITY_WORDS = (
    "东苑", "西苑", "南园", "北园", "和平", "胜利", "幸福", "团结", "建设", "光明", "友谊", "红旗",
    "新村", "丰收", "阳光", "锦华", "翠园", "康乐", "育才", "花园", "文苑", "春晖", "桃李", "枫叶",
    "怡馨", "龙泉", "怀府", "山阳", "太行", "月季", "沁园", "鑫源", "瑞丰", "广厦", "振兴", "和顺",
)


def _community_name(k: int) -> str:
    """和平社区 …, then 和平东社区, 和平西社区 … once the pool is used up."""
    base, lap = COMMUNITY_WORDS[k % len(COMMUNITY_WORDS)], k // len(COMMUNITY_WORDS)
    return base + ("", "东", "西", "南", "北", "中", "新", "前", "后")[lap % 9] + "社区"


@dataclass(frozen=True)
class Area:
    code: str
    name: str
    geometry_xy: BaseGeometry = field(repr=False)


@dataclass(frozen=True, eq=False)
class CityAreas:
    streets: tuple[Area, ...]          # code = 9 digits
    communities: tuple[Area, ...]      # code = 12 digits
    grids: tuple[Area, ...]            # code = 15 digits, name = 网格 name
    grid_community: np.ndarray = field(repr=False)   # community index of each grid

    def locate(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(street index, grid index) of each local-metre point; -1 where there is none."""
        return _locate(self, x, y)


def _voronoi_parts(region: BaseGeometry, seeds: np.ndarray) -> list[BaseGeometry]:
    """Voronoi cells of ``seeds`` clipped to ``region``, ordered north→south, west→east of seed."""
    if len(seeds) == 1:
        return [region]
    cells = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(seeds), extend_to=region))
    pts = shapely.points(seeds)
    # voronoi_polygons does not return cells in seed order: match them back.
    order = [int(np.flatnonzero(shapely.contains(c, pts))[0]) for c in cells]
    by_seed = dict(zip(order, cells, strict=True))
    rank = np.lexsort((seeds[:, 0], -np.round(seeds[:, 1], -2)))
    parts = [shapely.intersection(by_seed[i], region) for i in rank]
    return [p for p in parts if not p.is_empty and p.area > 1.0]


def _seeds_in(region: BaseGeometry, n: int, rng: np.random.Generator) -> np.ndarray:
    x0, y0, x1, y1 = region.bounds
    out: list[np.ndarray] = []
    shapely.prepare(region)
    while sum(len(o) for o in out) < n:
        cand = np.column_stack([rng.uniform(x0, x1, 4 * n), rng.uniform(y0, y1, 4 * n)])
        out.append(cand[shapely.contains_xy(region, cand[:, 0], cand[:, 1])])
    return np.concatenate(out)[:n]


def grid_extent_xy() -> BaseGeometry:
    """Where unit grids are drawn: 300 m around the demo roads, inside the urban districts."""
    roads = shapely.union_all([r.line_xy for r in build_roads()])
    x0, y0, x1, y1 = roads.bounds
    return shapely.box(x0 - 300, y0 - 300, x1 + 300, y1 + 300)


@cache
def build_areas() -> CityAreas:
    rng = np.random.default_rng(410800)
    extent = grid_extent_xy()
    streets: list[Area] = []
    communities: list[Area] = []
    word = 0
    for d in load_districts():
        if d.admin_code not in URBAN_CODES:
            continue
        district = geom_to_xy(d.geometry)
        names = STREET_NAMES[d.admin_code]
        core = district.intersection(extent)
        # most 街道 sit in the centre; one or two take the district's outskirts
        n_core = max(1, len(names) - 2)
        seeds = np.concatenate([_seeds_in(core, n_core, rng), _seeds_in(district, len(names) - n_core, rng)])
        for k, part in enumerate(_voronoi_parts(district, seeds)):
            code = f"{d.admin_code}{k + 1:03d}"
            name = names[k] + "街道"
            streets.append(Area(code, name, part))
            inner = part.intersection(extent)
            if inner.area < 1e4:
                continue
            m = max(1, int(round(inner.area / (COMMUNITY_KM2 * 1e6))))
            for j, cpart in enumerate(_voronoi_parts(inner, _seeds_in(inner, m, rng))):
                cname = _community_name(word)
                word += 1
                communities.append(Area(f"{code}{j + 1:03d}", cname, cpart))
    grids, owner = _unit_grids(communities)
    return CityAreas(tuple(streets), tuple(communities), grids, owner)


def _unit_grids(communities: list[Area]) -> tuple[tuple[Area, ...], np.ndarray]:
    polys = np.array([c.geometry_xy for c in communities], dtype=object)
    x0, y0, x1, y1 = shapely.total_bounds(polys)
    xs = np.arange(np.floor(x0 / CELL_M) * CELL_M, x1, CELL_M)
    ys = np.arange(np.floor(y0 / CELL_M) * CELL_M, y1, CELL_M)
    gx, gy = np.meshgrid(xs, ys)
    cells = shapely.box(gx.ravel(), gy.ravel(), gx.ravel() + CELL_M, gy.ravel() + CELL_M)
    ci, pi = shapely.STRtree(polys).query(cells, predicate="intersects")
    pieces = shapely.intersection(cells[ci], polys[pi])
    keep = shapely.area(pieces) > 0.01
    pieces, ci, pi = pieces[keep], ci[keep], pi[keep]
    pieces = _merge_slivers(pieces, pi)
    alive = np.array([p is not None for p in pieces])
    pieces, ci, pi = pieces[alive], ci[alive], pi[alive]
    # sequence per community: rows north→south, then columns west→east (by the cell's corner)
    row = (len(ys) - 1) - ci // len(xs)
    col = ci % len(xs)
    order = np.lexsort((col, row, pi))
    grids: list[Area] = []
    owners: list[int] = []
    seq_in = {}
    for k in order.tolist():
        comm = communities[pi[k]]
        seq = seq_in.get(pi[k], 0) + 1
        seq_in[pi[k]] = seq
        geom = shapely.normalize(shapely.multipolygons(shapely.get_parts(pieces[k])))
        grids.append(Area(f"{comm.code}{seq:03d}", f"{comm.name}{seq:03d}网格", geom))
        owners.append(int(pi[k]))
    return tuple(grids), np.array(owners)


def _merge_slivers(pieces: np.ndarray, community: np.ndarray) -> np.ndarray:
    """Join each piece under SLIVER_M2 to the same-community neighbour it shares most edge with."""
    pieces = pieces.copy()
    small = np.flatnonzero(shapely.area(pieces) < SLIVER_M2)
    tree = shapely.STRtree(pieces)
    for i in small.tolist():
        if pieces[i] is None:
            continue
        cand = [j for j in tree.query(pieces[i], predicate="touches").tolist()
                if j != i and community[j] == community[i] and pieces[j] is not None]
        if not cand:
            continue
        shared = [shapely.length(shapely.intersection(pieces[i].boundary, pieces[j].boundary)) for j in cand]
        j = cand[int(np.argmax(shared))]
        if max(shared) <= 0:
            continue
        pieces[j] = shapely.union(pieces[j], pieces[i])
        pieces[i] = None
    return pieces


@cache
def _grid_lookup() -> tuple[float, float, int, int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Which grid owns each 100 m cell (-2: several, -1: none), plus trees for the rest."""
    areas = build_areas()
    grids = np.array([g.geometry_xy for g in areas.grids], dtype=object)
    x0, y0, x1, y1 = shapely.total_bounds(grids)
    x0, y0 = np.floor(x0 / CELL_M) * CELL_M, np.floor(y0 / CELL_M) * CELL_M
    ncol, nrow = int(np.ceil((x1 - x0) / CELL_M)), int(np.ceil((y1 - y0) / CELL_M))
    gx, gy = np.meshgrid(x0 + CELL_M * np.arange(ncol), y0 + CELL_M * np.arange(nrow))
    cells = shapely.box(gx.ravel(), gy.ravel(), gx.ravel() + CELL_M, gy.ravel() + CELL_M)
    gi, ci = shapely.STRtree(cells).query(grids, predicate="intersects")
    real = shapely.area(shapely.intersection(grids[gi], cells[ci])) > 1e-6
    gi, ci = gi[real], ci[real]
    owner = np.full(len(cells), -1, dtype=np.int64)
    count = np.bincount(ci, minlength=len(cells))
    owner[ci] = gi
    owner[count > 1] = -2
    streets = np.array([s.geometry_xy for s in areas.streets], dtype=object)
    street_pos = {s.code: i for i, s in enumerate(areas.streets)}
    street_of_grid = np.array([street_pos[g.code[:9]] for g in areas.grids])
    return float(x0), float(y0), ncol, nrow, owner, grids, streets, street_of_grid


def _first_hit(tree_geoms: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    out = np.full(len(x), -1, dtype=np.int64)
    if len(x) == 0:
        return out
    pts, hits = shapely.STRtree(tree_geoms).query(shapely.points(x, y), predicate="intersects")
    first_pts, first = np.unique(pts, return_index=True)
    out[first_pts] = hits[first]
    return out


def _locate(areas: CityAreas, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x0, y0, ncol, nrow, owner, grids, streets, street_of_grid = _grid_lookup()
    col = np.floor((x - x0) / CELL_M).astype(np.int64)
    row = np.floor((y - y0) / CELL_M).astype(np.int64)
    inside = (col >= 0) & (col < ncol) & (row >= 0) & (row < nrow)
    grid = np.full(len(x), -1, dtype=np.int64)
    grid[inside] = owner[row[inside] * ncol + col[inside]]
    shared = np.flatnonzero(grid == -2)
    grid[shared] = _first_hit(grids, x[shared], y[shared])
    street = np.where(grid >= 0, street_of_grid[np.maximum(grid, 0)], -1)
    rest = np.flatnonzero(street < 0)
    street[rest] = _first_hit(streets, x[rest], y[rest])
    return street, grid
