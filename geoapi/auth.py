"""API keys and roles. Keys are random 256-bit secrets shown once; only a SHA-256 digest is kept
(a slow password hash buys nothing for secrets of this entropy)."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

import sqlalchemy as sa

from geoapi.errors import BadRequestError, UnauthorizedError
from geoapi.storage import schema

ROLES = ("viewer", "dispatcher", "editor", "admin")
ROLE_LABELS = {"viewer": "查看", "dispatcher": "调度", "editor": "编辑", "admin": "管理员"}


@dataclass(frozen=True)
class Principal:
    role: str
    name: str
    key_id: str | None = None

    def has(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)

    @property
    def actor(self) -> str:
        return f"{self.name} ({self.key_id})" if self.key_id else self.name


ANONYMOUS = Principal(role="viewer", name="anonymous")


def _digest(key_id: str, secret: str) -> str:
    return hashlib.sha256(f"{key_id}:{secret}".encode()).hexdigest()


def create_key(engine: sa.Engine, role: str, name: str | None = None) -> str:
    """Store a new key and return it in full; it cannot be shown again."""
    if role not in ROLES:
        raise BadRequestError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    key_id = secrets.token_hex(4)
    secret = secrets.token_urlsafe(32)
    with engine.connect().execution_options(geoapi_write=True) as conn, conn.begin():
        conn.execute(schema.api_keys.insert().values(
            key_id=key_id, key_hash=_digest(key_id, secret), role=role, name=name or role,
            created_at=dt.datetime.now(dt.UTC)))
    return f"gk_{key_id}_{secret}"


def revoke_key(engine: sa.Engine, key_id: str) -> bool:
    k = schema.api_keys
    with engine.connect().execution_options(geoapi_write=True) as conn, conn.begin():
        n = conn.execute(k.update().where(k.c.key_id == key_id, k.c.revoked_at.is_(None))
                         .values(revoked_at=dt.datetime.now(dt.UTC))).rowcount
    return n > 0


def list_keys(engine: sa.Engine) -> list[dict]:
    k = schema.api_keys
    with engine.connect() as conn:
        rows = conn.execute(sa.select(k.c.key_id, k.c.role, k.c.name, k.c.created_at, k.c.revoked_at)
                            .order_by(k.c.id)).all()
    return [dict(r._mapping) for r in rows]


def authenticate(engine: sa.Engine, key: str) -> Principal:
    """The principal a presented key stands for; UnauthorizedError when it is not a live key."""
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != "gk" or not parts[1] or not parts[2]:
        raise UnauthorizedError("malformed API key: expected 'gk_<id>_<secret>'")
    key_id, secret = parts[1], parts[2]
    k = schema.api_keys
    with engine.connect() as conn:
        row = conn.execute(sa.select(k).where(k.c.key_id == key_id)).first()
    if row is None or row.revoked_at is not None or not hmac.compare_digest(row.key_hash, _digest(key_id, secret)):
        raise UnauthorizedError("unknown or revoked API key")
    return Principal(role=row.role, name=row.name or row.role, key_id=key_id)
