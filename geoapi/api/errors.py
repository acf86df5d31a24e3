"""One table from exceptions to HTTP responses; one body shape {"code", "detail", "errors"}."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from geoapi.errors import GeoapiError
from layers import LayerFileError

log = logging.getLogger("geoapi.api")


def error_body(code: str, detail: str, errors: list | None = None) -> dict:
    return {"code": code, "detail": detail, "errors": errors or []}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(GeoapiError)
    async def _domain(request: Request, exc: GeoapiError):
        if exc.status >= 500:
            log.error("%s %s: %s", request.method, request.url.path, exc.detail)
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse(error_body(exc.code, exc.detail, exc.errors), status_code=exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _request(request: Request, exc: RequestValidationError):
        errors = [{"field": ".".join(str(p) for p in e["loc"] if p not in ("query", "path", "body")) or "request",
                   "message": e["msg"]} for e in exc.errors()]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return JSONResponse(error_body("bad_request", f"invalid request: {detail}", errors), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse(error_body(code, str(exc.detail)), status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(LayerFileError)
    async def _layer_file(request: Request, exc: LayerFileError):
        return JSONResponse(error_body("layer_file_invalid", str(exc)), status_code=500)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse(error_body("internal_error", "internal server error; see the server log"),
                            status_code=500)
