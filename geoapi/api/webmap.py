"""The web map (窨井盖监管一张图): static files from ``web_map/`` at ``/map``, MapLibre's dist
files at ``/map/vendor/maplibre-gl/``, and ``/map/config.json`` (city, bounds, optional Tianditu key).

The page is plain ES modules with no build step; it talks to the API over HTTP only.
"""

from __future__ import annotations

import mimetypes
import os
from functools import cache
from pathlib import Path

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse, RedirectResponse

from geoapi import __version__
from geoapi.api.deps import SettingsDep
from geoapi.api.features import json_response
from geoapi.errors import NotFoundError

router = APIRouter(tags=["一张图 Web map"], include_in_schema=False)

MAPLIBRE_DIST = Path("node_modules") / "maplibre-gl" / "dist"
VENDOR_PREFIX = "vendor/maplibre-gl/"
# What the page may fetch from web_map/ itself; node_modules is only reachable through vendor/.
STATIC_SUFFIXES = {".html", ".js", ".mjs", ".css", ".json", ".svg", ".png", ".ico", ".map", ".txt"}
mimetypes.add_type("text/javascript", ".mjs")
mimetypes.add_type("text/javascript", ".js")


@cache
def web_map_dir() -> Path:
    """web_map/ of the checkout (editable install), or GEOAPI_WEB_MAP_DIR, or ./web_map."""
    candidates = []
    if os.environ.get("GEOAPI_WEB_MAP_DIR"):
        candidates.append(Path(os.environ["GEOAPI_WEB_MAP_DIR"]))
    candidates += [Path(__file__).resolve().parents[2] / "web_map", Path.cwd() / "web_map"]
    for path in candidates:
        if (path / "index.html").is_file():
            return path.resolve()
    raise NotFoundError("the web map is not installed: web_map/index.html not found "
                        "(set GEOAPI_WEB_MAP_DIR to the web_map directory)")


def _safe_file(root: Path, relative: str) -> Path:
    path = (root / relative).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        raise NotFoundError(f"no such file in the web map: {relative}")
    return path


def _index(request: Request) -> Response:
    html = (web_map_dir() / "index.html").read_text(encoding="utf-8")
    # Relative URLs in the page must resolve under /map/ whether it was opened as /map or /map/,
    # and under a proxy prefix (root_path) too.
    base = request.scope.get("root_path", "").rstrip("/") + "/map/"
    html = html.replace('<base href="/map/">', f'<base href="{base}">', 1)
    return Response(html, media_type="text/html; charset=utf-8", headers={"Cache-Control": "no-cache"})


@router.get("/map")
def map_page(request: Request) -> Response:
    return _index(request)


@router.get("/map/")
def map_page_slash(request: Request) -> Response:
    return _index(request)


@router.get("/map/config.json")
def map_config(settings: SettingsDep) -> Response:
    return json_response({
        "city_name": settings.city_name,
        "city_admin_code": settings.city_admin_code,
        "city_bounds": list(settings.city_bounds),
        "tianditu_key": settings.tianditu_key or None,
        "version": __version__,
    }, headers={"Cache-Control": "no-cache"})


@router.get("/map/index.html")
def map_index_redirect() -> Response:
    return RedirectResponse("./", status_code=308)


@router.get("/map/{path:path}")
def map_file(path: str) -> Response:
    root = web_map_dir()
    if path.startswith(VENDOR_PREFIX):
        file = _safe_file((root / MAPLIBRE_DIST).resolve(), path.removeprefix(VENDOR_PREFIX))
        # The dist files are pinned by package-lock.json and versioned by the worker URL (?v=).
        cache_control = "public, max-age=86400"
    else:
        if path.split("/", 1)[0] in ("node_modules", "") or Path(path).suffix not in STATIC_SUFFIXES:
            raise NotFoundError(f"no such file in the web map: {path}")
        file = _safe_file(root, path)
        cache_control = "no-cache"
    media_type = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
    return FileResponse(file, media_type=media_type, headers={"Cache-Control": cache_control})
