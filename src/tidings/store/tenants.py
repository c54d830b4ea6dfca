"""Tenants and their API keys.

API keys look like ``tdg_<id>_<secret>``. Only ``sha256(secret)`` is stored; the whole key is
shown once, at creation. Keys are 32 random bytes, so a fast hash is the right tool (as for
GitHub tokens); lookups are by id and compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.domain.principals import KeyPrincipal
from tidings.errors import Code, Conflict, NotFound, Unauthorized, ValidationFailed
from tidings.store.tables import api_keys, tenants

SCOPES = frozenset({"publish", "tokens", "admin"})
TENANT_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}\Z")
KEY_ID = re.compile(r"^[A-Za-z0-9]{12}\Z")
KEY_FORMAT = re.compile(r"^tdg_([A-Za-z0-9]{12})_([A-Za-z0-9_-]{20,64})\Z")


@dataclass(frozen=True, slots=True)
class Tenant:
    id: str
    name: str
    created_at: datetime
    settings: dict[str, Any]

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "created_at": self.created_at.isoformat()}


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    tenant: str
    name: str
    scopes: tuple[str, ...]
    created_at: datetime
    revoked_at: datetime | None

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "tenant": self.tenant,
            "name": self.name,
            "scopes": list(self.scopes),
            "created_at": self.created_at.isoformat(),
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
        }


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


async def create_tenant(
    conn: AsyncConnection, tenant_id: str, name: str, *, now: datetime
) -> Tenant:
    if not TENANT_ID.match(tenant_id):
        raise ValidationFailed(
            "A tenant id is 1-63 of a-z, 0-9 and '-', starting with a letter or digit."
        )
    try:
        async with conn.begin_nested():
            await conn.execute(
                insert(tenants).values(
                    id=tenant_id, name=name, last_seq=0, settings={}, created_at=now
                )
            )
    except IntegrityError as error:
        raise Conflict(f"Tenant {tenant_id!r} exists already.", code=Code.TENANT_EXISTS) from error
    return Tenant(tenant_id, name, now, {})


async def get_tenant(conn: AsyncConnection, tenant_id: str) -> Tenant:
    row = (await conn.execute(select(tenants).where(tenants.c.id == tenant_id))).first()
    if row is None:
        raise NotFound(f"Tenant {tenant_id!r} does not exist.", code=Code.TENANT_NOT_FOUND)
    return Tenant(row.id, row.name, row.created_at, dict(row.settings or {}))


async def list_tenants(conn: AsyncConnection) -> list[Tenant]:
    rows = await conn.execute(select(tenants).order_by(tenants.c.id))
    return [Tenant(r.id, r.name, r.created_at, dict(r.settings or {})) for r in rows]


async def create_key(
    conn: AsyncConnection, tenant_id: str, name: str, scopes: list[str], *, now: datetime
) -> tuple[ApiKey, str]:
    """Create a key; returns it and the full secret key string (shown once)."""
    unknown = sorted(set(scopes) - SCOPES)
    if unknown or not scopes:
        raise ValidationFailed(
            f"Scopes must be a non-empty subset of {sorted(SCOPES)}; unknown: {unknown}."
        )
    await get_tenant(conn, tenant_id)
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    ordered = tuple(s for s in sorted(SCOPES) if s in scopes)
    await conn.execute(
        insert(api_keys).values(
            id=key_id,
            tenant_id=tenant_id,
            name=name,
            secret_hash=_hash(secret),
            scopes=list(ordered),
            created_at=now,
        )
    )
    return ApiKey(key_id, tenant_id, name, ordered, now, None), f"tdg_{key_id}_{secret}"


async def list_keys(conn: AsyncConnection, tenant_id: str) -> list[ApiKey]:
    rows = await conn.execute(
        select(api_keys).where(api_keys.c.tenant_id == tenant_id).order_by(api_keys.c.created_at)
    )
    return [
        ApiKey(r.id, r.tenant_id, r.name, tuple(r.scopes), r.created_at, r.revoked_at) for r in rows
    ]


async def revoke_key(
    conn: AsyncConnection, key_id: str, *, now: datetime, tenant_id: str | None = None
) -> ApiKey:
    query = select(api_keys).where(api_keys.c.id == key_id)
    if tenant_id is not None:
        query = query.where(api_keys.c.tenant_id == tenant_id)
    row = (await conn.execute(query)).first()
    if row is None:
        raise NotFound(f"No API key {key_id!r}.", code=Code.KEY_NOT_FOUND)
    revoked = row.revoked_at or now
    await conn.execute(update(api_keys).where(api_keys.c.id == key_id).values(revoked_at=revoked))
    return ApiKey(row.id, row.tenant_id, row.name, tuple(row.scopes), row.created_at, revoked)


async def keys_by_id(conn: AsyncConnection, key_ids: list[str]) -> dict[str, Any]:
    """The ``api_keys`` rows of ``key_ids`` that exist, by id (one statement)."""
    if not key_ids:
        return {}
    rows = await conn.execute(_KEYS_BY_ID, {"ids": key_ids})
    return {row.id: row for row in rows}


_KEYS_BY_ID = select(api_keys).where(api_keys.c.id.in_(bindparam("ids", expanding=True)))


def check_key(row: Any, presented: str) -> KeyPrincipal:
    """The principal of ``presented`` given its key's row (``None``: no such key), or raise
    ``Unauthorized`` (malformed, invalid or revoked). The secret is compared in constant time."""
    match = KEY_FORMAT.match(presented)
    if match is None:
        raise Unauthorized("The API key is malformed.", code=Code.INVALID_CREDENTIALS)
    key_id, secret = match.groups()
    if row is None or row.id != key_id or not hmac.compare_digest(row.secret_hash, _hash(secret)):
        raise Unauthorized("The API key is not valid.", code=Code.INVALID_CREDENTIALS)
    if row.revoked_at is not None:
        raise Unauthorized("The API key was revoked.", code=Code.KEY_REVOKED)
    return KeyPrincipal(tenant=row.tenant_id, key_id=row.id, scopes=frozenset(row.scopes))
