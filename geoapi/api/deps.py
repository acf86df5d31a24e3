"""Typed dependencies shared by the routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from geoapi.auth import ANONYMOUS, Principal, authenticate
from geoapi.errors import ForbiddenError, UnauthorizedError
from geoapi.settings import Settings
from geoapi.storage import Store
from layers import LayerSpec


def get_store(request: Request) -> Store:
    return request.app.state.store


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


StoreDep = Annotated[Store, Depends(get_store)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


def get_layer(layer: str, store: StoreDep) -> LayerSpec:
    return store.layer(layer)


LayerDep = Annotated[LayerSpec, Depends(get_layer)]


def _principal(store: Store, authorization: str | None) -> Principal | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise UnauthorizedError("Authorization header must be 'Bearer <API key>'")
    return authenticate(store.engine, token.strip())


def get_principal(store: StoreDep, authorization: Annotated[str | None, Header()] = None) -> Principal:
    """Who is calling: the presented key's principal, ANONYMOUS without one; a bad key is 401."""
    return _principal(store, authorization) or ANONYMOUS


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require(role: str):
    """A dependency that admits callers holding ``role`` or a stronger one."""

    def _dep(store: StoreDep, settings: SettingsDep,
             authorization: Annotated[str | None, Header()] = None) -> Principal:
        principal = _principal(store, authorization)
        if principal is None:
            if role == "viewer" and settings.reads_open:
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
