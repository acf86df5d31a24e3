"""公示牌 rows for road segments: one sign per segment, at the roadside, with what it shows."""

from __future__ import annotations

import datetime as dt
import zlib
from typing import Any

import shapely
from shapely.geometry.base import BaseGeometry

from geoapi.grids.build import sorted_chiefs
from geoapi.grids.metric import Frame
from geoapi.storage.model import Feature

ALONG = 0.4  # signs stand 40 % along the segment …
SIDE_M = 12.0  # … this far right of the centreline (on the footway of most roads)


def chief_lines(chiefs: list[dict[str, Any]]) -> tuple[str | None, str | None]:
    """'区级路长 王伟；街道级路长 李娜' and the matching phones, as printed on the sign."""
    if not chiefs:
        return None, None
    names = "；".join(f"{c.get('level', '')} {c.get('name', '')}".strip() for c in chiefs)
    phones = "；".join(f"{c.get('name', '')} {c.get('phone', '')}".strip() for c in chiefs if c.get("phone"))
    return names[:300], (phones[:300] or None)


def _roadside(line_m: BaseGeometry, frame: Frame) -> BaseGeometry:
    line = max(shapely.get_parts(line_m), key=lambda g: g.length)
    d = line.length * ALONG
    p, q = line.interpolate(d), line.interpolate(min(line.length, d + 1.0))
    dx, dy = q.x - p.x, q.y - p.y
    norm = (dx * dx + dy * dy) ** 0.5 or 1.0
    side = min(SIDE_M, line.length / 4)
    return frame.to_deg(shapely.Point(p.x + dy / norm * side, p.y - dx / norm * side))


def signboard_rows(segments: list[Feature], *, installed: dt.date = dt.date(2019, 8, 1)) -> list[tuple[dict, BaseGeometry]]:
    if not segments:
        return []
    frame = Frame.around([f.geometry for f in segments])
    rows = []
    for f in segments:
        p = f.props
        chiefs = sorted_chiefs(p.get("chiefs"))
        names, phones = chief_lines(chiefs)
        # a stable, code-derived install date spread over the 路长制 roll-out (焦作: July 2019)
        day = installed + dt.timedelta(days=zlib.crc32(p["segment_code"].encode()) % 120)
        props = {"sign_no": f"{p['segment_code']}-P1", "segment_code": p["segment_code"],
                 "road_name": p.get("road_name") or p["segment_code"], "start_desc": p.get("start_desc"),
                 "end_desc": p.get("end_desc"), "chief_names": names, "chief_phones": phones,
                 "chiefs": chiefs or None, "supervise_phone": p.get("supervise_phone"), "duties": p.get("duties"),
                 "install_date": day.isoformat(), "admin_code": p.get("admin_code")}
        rows.append(({k: v for k, v in props.items() if v is not None}, _roadside(frame.to_m(f.geometry), frame)))
    return rows
