"""Landing page, conformance, layer definitions, health."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from geoapi import __version__
from geoapi.api import html
from geoapi.api.deps import PrincipalDep, ReaderDep, SettingsDep, StoreDep
from geoapi.api.features import base_url, json_response
from geoapi.errors import DatabaseUnavailableError

router = APIRouter()

CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables-query-parameters",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
    "http://www.opengis.net/spec/cql2/1.0/conf/advanced-comparison-operators",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions-plus",
    "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/create-replace-delete",
    "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/update",
    "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/optimistic-locking-etags",
]


@router.get("/", tags=["meta"], summary="Landing page")
def landing(request: Request, settings: SettingsDep, f: Annotated[str | None, Query()] = None):
    base = base_url(request)
    doc = {
        "title": f"geoapi — {settings.city_name}城市管理部件资产库",
        "description": "窨井盖监管一张图、路长制网格与城市管理部件的空间数据服务",
        "version": __version__,
        "links": [
            {"href": f"{base}/", "rel": "self", "type": "application/json"},
            {"href": f"{base}/openapi.json", "rel": "service-desc", "type": "application/vnd.oai.openapi+json;version=3.0"},
            {"href": f"{base}/docs", "rel": "service-doc", "type": "text/html"},
            {"href": f"{base}/conformance", "rel": "conformance", "type": "application/json"},
            {"href": f"{base}/collections", "rel": "data", "type": "application/json"},
            {"href": f"{base}/map", "rel": "alternate", "type": "text/html", "title": "窨井盖监管一张图"},
            {"href": f"{base}/?f=html", "rel": "alternate", "type": "text/html", "title": "HTML"},
        ],
    }
    if html.wants_html(request, f):
        return html.landing_page(doc)
    return json_response(doc)


@router.get("/conformance", tags=["meta"])
def conformance():
    return json_response({"conformsTo": CONFORMANCE})


@router.get("/layers", tags=["meta"], summary="Layer definitions for clients: titles, fields, geometry, style")
def layers(store: StoreDep, _: ReaderDep):
    out = []
    for layer in store.registry:
        out.append({
            "id": layer.id, "title": layer.title, "title_en": layer.title_en, "description": layer.description,
            "geometry": layer.geometry, "has_z": layer.has_z, "kind": layer.kind,
            "identifier": layer.identifier.model_dump() if layer.identifier else None,
            "status": layer.status.model_dump(),
            "code_field": layer.code_field,
            "fields": [f.model_dump(exclude_none=True) for f in layer.all_fields],
            "tiles": layer.tiles.model_dump(), "style": layer.style.model_dump(),
        })
    return json_response({"layers": out})


@router.get("/auth/whoami", tags=["meta"], summary="The role and name of the presented API key")
def whoami(who: PrincipalDep):
    # Open even when reads are closed: the web map asks it to decide which controls to show.
    return {"role": who.role, "name": who.name}


@router.get("/healthz", tags=["meta"], summary="The process is up")
def healthz():
    return {"status": "ok", "version": __version__}


@router.get("/readyz", tags=["meta"], summary="The database answers (503 when not)")
def readyz(store: StoreDep):
    try:
        store.ping()
    except DatabaseUnavailableError as exc:
        return json_response({"status": "unavailable", "database": store.dialect, "detail": exc.detail}, status=503)
    return {"status": "ready", "database": store.dialect}
