"""Put many points along the demo roads at once: (road, metres along, metres to the left) → x, y.

All roads' vertices sit in one array with one running distance, so a million placements are
a searchsorted and a few array operations, no Python loop per point.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import shapely

from geoapi.demo.streets import build_roads

ROAD_GAP = 1.0  # metres of running distance between one road's end and the next road's start


@dataclass(frozen=True)
class RoadFrame:
    verts: np.ndarray      # (N, 2) every road's vertices, road after road
    run: np.ndarray        # (N,) running distance of each vertex
    base: np.ndarray       # (R,) running distance of each road's start
    length: np.ndarray     # (R,) road lengths
    last_seg: np.ndarray   # (R,) index of each road's last segment's first vertex

    def place(self, road: np.ndarray, pos: np.ndarray, left: np.ndarray | float = 0.0
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """x, y of the points and the unit tangent (tx, ty) of the road there."""
        road = np.asarray(road, dtype=np.int64)
        s = self.base[road] + np.clip(pos, 0.0, self.length[road])
        k = np.searchsorted(self.run, s, side="right") - 1
        k = np.minimum(k, self.last_seg[road])
        d = self.verts[k + 1] - self.verts[k]
        seg_len = np.hypot(d[:, 0], d[:, 1])
        t = d / seg_len[:, None]
        along = (s - self.run[k])[:, None]
        p = self.verts[k] + t * along
        left = np.broadcast_to(np.asarray(left, dtype=float), s.shape)
        x = p[:, 0] - t[:, 1] * left
        y = p[:, 1] + t[:, 0] * left
        return x, y, t[:, 0], t[:, 1]

    def sample(self, rng: np.random.Generator, n: int, weights: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """n random (road, pos) pairs, uniform along the length of the roads (times ``weights``)."""
        w = self.length * (1.0 if weights is None else weights)
        cum = np.cumsum(w)
        u = rng.random(n) * cum[-1]
        road = np.searchsorted(cum, u, side="right")
        road = np.minimum(road, len(w) - 1)
        start = cum[road] - w[road]
        pos = (u - start) / np.maximum(w[road], 1e-9) * self.length[road]
        return road, pos


@cache
def road_frame() -> RoadFrame:
    verts, run, base, length, last = [], [], [], [], []
    offset = 0.0
    n = 0
    for r in build_roads():
        c = shapely.get_coordinates(r.line_xy)
        seg = np.hypot(*np.diff(c, axis=0).T)
        keep = np.concatenate([[True], seg > 1e-6])  # drop repeated vertices
        c = c[keep]
        cum = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(c, axis=0).T))])
        verts.append(c)
        run.append(offset + cum)
        base.append(offset)
        length.append(cum[-1])
        last.append(n + len(c) - 2)
        n += len(c)
        offset += cum[-1] + ROAD_GAP
    return RoadFrame(np.concatenate(verts), np.concatenate(run), np.array(base), np.array(length), np.array(last))


def ground_elevation(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """A smooth ground surface (1985 datum, m): higher towards 太行山 in the north, 90–110 m."""
    z = 100.0 + 6.0 * (y / 5000.0) + 3.0 * np.sin(x / 2300.0) + 2.0 * np.cos(y / 1700.0 + x / 4100.0)
    return np.clip(z, 90.0, 110.0)
