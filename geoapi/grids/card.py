"""The 路长制公示牌 as a printable A4 HTML page (DOMAIN.md §4: 道路名称、起止点、路长姓名、
联系方式、监督电话、主要职责)."""

from __future__ import annotations

from html import escape
from typing import Any

_CSS = """
@page { size: A4 portrait; margin: 15mm; }
* { box-sizing: border-box; }
body { font-family: "Noto Sans CJK SC", "Source Han Sans SC", "Microsoft YaHei", "PingFang SC", sans-serif;
       margin: 0; color: #111; }
.sign { width: 180mm; min-height: 250mm; margin: 0 auto; border: 3mm solid #1a5fb4; padding: 10mm; }
h1 { text-align: center; font-size: 30pt; letter-spacing: 6pt; margin: 0 0 4mm; color: #1a5fb4; }
h2 { text-align: center; font-size: 22pt; margin: 0 0 8mm; }
table { width: 100%; border-collapse: collapse; font-size: 14pt; margin-bottom: 6mm; }
th, td { border: 0.4mm solid #333; padding: 3mm; text-align: left; vertical-align: top; }
th { background: #e8f0fb; width: 32mm; white-space: nowrap; }
.phone { font-size: 20pt; font-weight: bold; color: #c01c28; text-align: center; }
.foot { font-size: 10pt; color: #555; text-align: right; }
@media screen { body { background: #ddd; padding: 10mm 0; } .sign { background: #fff; } }
"""


def _e(value: Any) -> str:
    return escape(str(value)) if value not in (None, "") else "—"


def render_card(card: dict[str, Any], *, city: str = "") -> str:
    """HTML for one segment's 公示牌; every value is escaped."""
    chiefs = "".join(
        f"<tr><td>{_e(c.get('level'))}</td><td>{_e(c.get('name'))}</td><td>{_e(c.get('title'))}</td>"
        f"<td>{_e(c.get('phone'))}</td></tr>" for c in card.get("chiefs", []))
    if not chiefs:
        chiefs = '<tr><td colspan="4">（路长待公布）</td></tr>'
    duties = "".join(f"<li>{_e(d)}</li>" for d in str(card.get("duties") or "").split("、") if d.strip()) or "<li>—</li>"
    patrol = "；".join(f"{escape(str(k))}：{escape(str(v))}" for k, v in (card.get("patrol_rule") or {}).items())
    road = _e(card.get("road_name"))
    return f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<title>路长制公示牌 · {road} · {_e(card.get('segment_code'))}</title>
<style>{_CSS}</style></head>
<body><div class="sign">
<h1>{escape(city)}路长制公示牌</h1>
<h2>{road}</h2>
<table>
<tr><th>路段编号</th><td>{_e(card.get('segment_code'))}</td></tr>
<tr><th>起点</th><td>{_e(card.get('start_desc'))}</td></tr>
<tr><th>终点</th><td>{_e(card.get('end_desc'))}</td></tr>
</table>
<table>
<tr><th>路长级别</th><th>姓名</th><th>职务</th><th>联系电话</th></tr>
{chiefs}
</table>
<table>
<tr><th>主要职责</th><td><ul>{duties}</ul></td></tr>
<tr><th>巡查频次</th><td>{patrol or '—'}</td></tr>
<tr><th>监督电话</th><td class="phone">{_e(card.get('supervise_phone'))}</td></tr>
</table>
<p class="foot">欢迎社会各界监督 · 城市管理服务热线 12319</p>
</div></body></html>
"""
