"""Typed dependencies shared by the routers.

They are ``async def``: FastAPI runs a plain ``def`` dependency in the thread pool, a hop that
cost more than the rest of a small request (bench/README.md "Queries"). Only checking an
API key touches the database, and that part runs in the thread pool.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request
from starlette.concurrency import run_in_threadpool

from geoapi.auth import ANONYMOUS, Principal, authenticate
from geoapi.errors import ForbiddenError, UnauthorizedError
from geoapi.settings import Settings
from geoapi.storage import Store
from layers import LayerSpec


async def get_store(request: Request) -> Store:
    return request.app.state.store


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


StoreDep = Annotated[Store, Depends(get_store)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


async def get_layer(layer: str, store: StoreDep) -> LayerSpec:
    return store.layer(layer)


LayerDep = Annotated[LayerSpec, Depends(get_layer)]


async def _principal(store: Store, authorization: str | None) -> Principal | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise UnauthorizedError("Authorization header must be 'Bearer <API key>'")
    return await run_in_threadpool(authenticate, store.engine, token.strip())


async def get_principal(request: Request, authorization: Annotated[str | None, Header()] = None) -> Principal:
    """Who is calling: the presented key's principal, ANONYMOUS without one; a bad key is 401."""
    return await _principal(request.app.state.store, authorization) or ANONYMOUS


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require(role: str):
    """A dependency that admits callers holding ``role`` or a stronger one."""

    # The app state is read from the request rather than through StoreDep/SettingsDep: each
    # sub-dependency costs FastAPI its own resolution on every request.
    async def _dep(request: Request, authorization: Annotated[str | None, Header()] = None) -> Principal:
        principal = await _principal(request.app.state.store, authorization)
        if principal is None:
            if role == "viewer" and request.app.state.settings.reads_open:
                return ANONYMOUS
            raise UnauthorizedError(f"this needs an API key with the {role} role (Authorization: Bearer <key>)")
        if not principal.has(role):
            raise ForbiddenError(f"your key has the {principal.role} role; this needs {role} or above")
        return principal

    return _dep


ReaderDep = Annotated[Principal, Depends(require("viewer"))]
DispatcherDep = Annotated[Principal, Depends(require("dispatcher"))]
EditorDep = Annotated[Principal, Depends(require("editor"))]
AdminDep = Annotated[Principal, Depends(require("admin"))]
