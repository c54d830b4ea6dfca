"""Per-tenant signing keys: hosts that sign their own stream tokens name one in the JWT
header (``kid``), and a token so signed is valid only for that key's tenant.

A key is ``{kid, secret}``, shown once at creation. The secret is stored as is, because
verifying an HMAC needs it; whoever reads the database can sign, as with the server secret.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.errors import Code, NotFound
from tidings.store.tables import signing_keys
from tidings.store.tenants import get_tenant

KID = re.compile(r"^tsk_[0-9a-f]{16}\Z")


@dataclass(frozen=True, slots=True)
class SigningKey:
    kid: str
    tenant: str
    name: str
    created_at: datetime
    revoked_at: datetime | None

    def public(self) -> dict[str, Any]:
        return {
            "kid": self.kid,
            "tenant": self.tenant,
            "name": self.name,
            "created_at": self.created_at.isoformat(),
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
        }


def _key(row: Any) -> SigningKey:
    return SigningKey(row.kid, row.tenant_id, row.name, row.created_at, row.revoked_at)


async def create(
    conn: AsyncConnection, tenant_id: str, name: str, *, now: datetime
) -> tuple[SigningKey, str]:
    """A new key for ``tenant_id``; returns it and its secret (shown once)."""
    await get_tenant(conn, tenant_id)
    kid = f"tsk_{secrets.token_hex(8)}"
    secret = secrets.token_urlsafe(32)
    await conn.execute(
        insert(signing_keys).values(
            kid=kid, tenant_id=tenant_id, name=name, secret=secret, created_at=now
        )
    )
    return SigningKey(kid, tenant_id, name, now, None), secret


async def list_for(conn: AsyncConnection, tenant_id: str) -> list[SigningKey]:
    rows = await conn.execute(
        select(signing_keys)
        .where(signing_keys.c.tenant_id == tenant_id)
        .order_by(signing_keys.c.created_at, signing_keys.c.kid)
    )
    return [_key(r) for r in rows]


async def revoke(
    conn: AsyncConnection, kid: str, *, now: datetime, tenant_id: str | None = None
) -> SigningKey:
    query = select(signing_keys).where(signing_keys.c.kid == kid)
    if tenant_id is not None:
        query = query.where(signing_keys.c.tenant_id == tenant_id)
    row = None if not KID.match(kid) else (await conn.execute(query)).first()
    if row is None:
        raise NotFound(f"No signing key {kid!r}.", code=Code.SIGNING_KEY_NOT_FOUND)
    revoked = row.revoked_at or now
    await conn.execute(
        update(signing_keys).where(signing_keys.c.kid == kid).values(revoked_at=revoked)
    )
    return SigningKey(row.kid, row.tenant_id, row.name, row.created_at, revoked)


async def active_secret(conn: AsyncConnection, kid: str) -> tuple[str, str] | None:
    """``(tenant, secret)`` of a key that exists and is not revoked, else ``None``."""
    if not KID.match(kid):
        return None
    row = (
        await conn.execute(
            select(signing_keys.c.tenant_id, signing_keys.c.secret).where(
                signing_keys.c.kid == kid, signing_keys.c.revoked_at.is_(None)
            )
        )
    ).first()
    return None if row is None else (row.tenant_id, row.secret)
