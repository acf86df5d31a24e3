"""Minimal HTML views of the OGC API pages (OGC API - Features Part 1 /conf/html).

Plain server-rendered tables, every value escaped; no scripts. Browsers get them by ``f=html``
or by asking for ``text/html`` first in ``Accept``.
"""

from __future__ import annotations

from html import escape
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse

from geoapi.errors import BadRequestError

_STYLE = ("body{font-family:system-ui,'PingFang SC','Microsoft YaHei',sans-serif;margin:1.5rem;color:#222}"
          "table{border-collapse:collapse;font-size:.9rem}td,th{border:1px solid #ccc;padding:.25rem .5rem;"
          "text-align:left;vertical-align:top}th{background:#f3f3f3}nav a{margin-right:1rem}")


def wants_html(request: Request, f: str | None, allowed: tuple[str, ...] = ("json", "geojson", "html")) -> bool:
    """True for f=html, or no f and a browser's Accept (text/html before any JSON type)."""
    if f is not None:
        if f not in allowed:
            raise BadRequestError(f"f must be one of {', '.join(allowed)}; got {f!r}")
        return f == "html"
    accept = request.headers.get("accept", "")
    html_at = accept.find("text/html")
    if html_at < 0:
        return False
    json_at = min((i for i in (accept.find("json"),) if i >= 0), default=len(accept))
    return html_at < json_at


def _page(title: str, body: str, links: list[dict] | None = None) -> HTMLResponse:
    nav = "".join(f'<a href="{escape(link["href"])}">{escape(link.get("title") or link["rel"])}</a>'
                  for link in links or [])
    doc = (f'<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>{escape(title)}</title>'
           f"<style>{_STYLE}</style></head><body><nav>{nav}</nav><h1>{escape(title)}</h1>{body}</body></html>")
    return HTMLResponse(doc)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return escape(f"{value:.6g}")
    return escape(str(value))


def landing_page(doc: dict) -> HTMLResponse:
    items = "".join(f'<li><a href="{escape(link["href"])}">{escape(link.get("title") or link["rel"])}</a></li>'
                    for link in doc["links"])
    return _page(doc["title"], f"<p>{escape(doc.get('description', ''))}</p><ul>{items}</ul>")


def collections_page(doc: dict, base: str) -> HTMLResponse:
    rows = "".join(
        f'<tr><td><a href="{escape(c["links"][0]["href"])}?f=html">{escape(c["id"])}</a></td>'
        f'<td>{escape(c["title"])}</td><td>{escape(c.get("description") or "")}</td>'
        f'<td><a href="{escape(c["links"][1]["href"])}?f=html">要素 items</a></td></tr>'
        for c in doc["collections"])
    body = f"<table><tr><th>id</th><th>名称</th><th>说明</th><th></th></tr>{rows}</table>"
    return _page("图层 Collections", body, [{"href": f"{base}/?f=html", "rel": "home", "title": "首页"}])


def collection_page(doc: dict, base: str) -> HTMLResponse:
    items = doc["links"][1]["href"]
    body = (f"<p>{escape(doc.get('description') or '')}</p><p>CRS: {escape(', '.join(doc['crs']))}</p>"
            f'<p><a href="{escape(items)}?f=html">要素 items</a></p>')
    return _page(f"{doc['title']} ({doc['id']})", body,
                 [{"href": f"{base}/collections?f=html", "rel": "collections", "title": "图层"}])


def items_page(title: str, body: dict, base: str, layer_id: str) -> HTMLResponse:
    features = body["features"]
    names: list[str] = []
    for f in features:
        for k in f["properties"]:
            if k not in names:
                names.append(k)
    head = "".join(f"<th>{escape(n)}</th>" for n in ["id", *names, "geometry"])
    rows = "".join(
        "<tr>" + f"<td>{_cell(f['id'])}</td>" + "".join(f"<td>{_cell(f['properties'].get(n))}</td>" for n in names)
        + f"<td>{_cell((f.get('geometry') or {}).get('type'))}</td></tr>" for f in features)
    paging = [link for link in body["links"] if link["rel"] in ("prev", "next")]
    summary = f"<p>{body['numberReturned']} / {body.get('numberMatched')}</p>"
    html_links = [{"href": _with_html(link["href"]), "rel": link["rel"], "title": link["rel"]} for link in paging]
    nav = [{"href": f"{base}/collections/{layer_id}?f=html", "rel": "collection", "title": title}, *html_links]
    return _page(f"{title} — 要素", summary + f"<table><tr>{head}</tr>{rows}</table>", nav)


def _with_html(href: str) -> str:
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    parts = urlsplit(href)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "f"] + [("f", "html")]
    return urlunsplit(parts._replace(query=urlencode(query)))
