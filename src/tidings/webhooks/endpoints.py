"""A tenant's webhook endpoints in the store: add, list, read, change, remove.

Each function takes the connection of the caller's transaction and the tenant of the
authenticated principal (or the operator's path); an endpoint of another tenant is "not found".
The secret is returned once, by :func:`create`. A tenant that has endpoints has a cursor
(``webhook_cursors``) at the seq it had when its first endpoint was added: notifications
published before that are never sent.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.channels.clock import as_utc
from tidings.domain.notifications import format_time
from tidings.errors import Code, Conflict, NotFound
from tidings.store.tables import tenants
from tidings.webhooks.signing import new_secret
from tidings.webhooks.tables import webhook_cursors, webhook_endpoints

_E = webhook_endpoints.c


@dataclass(frozen=True)
class Endpoint:
    id: str
    tenant: str
    url: str
    event_types: tuple[str, ...]
    description: str | None
    enabled: bool
    disabled_reason: str | None
    failures: int
    created_at: datetime
    updated_at: datetime

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "url": self.url,
            "event_types": list(self.event_types),
            "description": self.description,
            "enabled": self.enabled,
            "disabled_reason": self.disabled_reason,
            "failures": self.failures,
            "created_at": format_time(as_utc(self.created_at)),
            "updated_at": format_time(as_utc(self.updated_at)),
        }


def _from_row(row: Any) -> Endpoint:
    return Endpoint(
        row.id,
        row.tenant_id,
        row.url,
        tuple(row.event_types),
        row.description,
        bool(row.enabled),
        row.disabled_reason,
        int(row.failures),
        row.created_at,
        row.updated_at,
    )


def not_found(endpoint_id: str) -> NotFound:
    return NotFound(f"No webhook endpoint {endpoint_id!r}.", code=Code.WEBHOOK_ENDPOINT_NOT_FOUND)


async def create(
    conn: AsyncConnection,
    tenant: str,
    *,
    url: str,
    event_types: list[str],
    description: str | None,
    enabled: bool,
    now: datetime,
    most: int,
) -> tuple[Endpoint, str]:
    """A new endpoint and its secret (shown this once). 404 for an unknown tenant, 409 past
    ``most`` endpoints."""
    last_seq = (
        await conn.execute(select(tenants.c.last_seq).where(tenants.c.id == tenant))
    ).scalar()
    if last_seq is None:
        raise NotFound(f"No tenant {tenant!r}.", code=Code.TENANT_NOT_FOUND)
    count = (await conn.execute(select(func.count()).where(_E.tenant_id == tenant))).scalar_one()
    if count >= most:
        raise Conflict(
            f"A tenant has at most {most} webhook endpoints.", code=Code.TOO_MANY_WEBHOOKS
        )
    secret = new_secret()
    endpoint_id = "ep_" + secrets.token_hex(10)
    await conn.execute(
        insert(webhook_endpoints).values(
            id=endpoint_id,
            tenant_id=tenant,
            url=url,
            secret=secret,
            event_types=event_types,
            description=description,
            enabled=enabled,
            failures=0,
            created_at=now,
            updated_at=now,
        )
    )
    has_cursor = (
        await conn.execute(select(webhook_cursors.c.tenant_id).where(_cursor(tenant)))
    ).first()
    if has_cursor is None:
        await conn.execute(
            insert(webhook_cursors).values(tenant_id=tenant, last_seq=last_seq, updated_at=now)
        )
    return await get(conn, tenant, endpoint_id), secret


def _cursor(tenant: str) -> Any:
    return webhook_cursors.c.tenant_id == tenant


async def list_all(conn: AsyncConnection, tenant: str) -> list[Endpoint]:
    rows = await conn.execute(
        select(webhook_endpoints).where(_E.tenant_id == tenant).order_by(_E.created_at, _E.id)
    )
    return [_from_row(r) for r in rows]


async def get(conn: AsyncConnection, tenant: str, endpoint_id: str) -> Endpoint:
    row = (
        await conn.execute(
            select(webhook_endpoints).where(_E.tenant_id == tenant, _E.id == endpoint_id)
        )
    ).first()
    if row is None:
        raise not_found(endpoint_id)
    return _from_row(row)


async def change(
    conn: AsyncConnection, tenant: str, endpoint_id: str, values: dict[str, Any], *, now: datetime
) -> Endpoint:
    """Set ``url``, ``event_types``, ``description`` and/or ``enabled``. Enabling an endpoint
    clears its failure streak (its pending deliveries resume, oldest first)."""
    await get(conn, tenant, endpoint_id)
    if values.get("enabled") is True:
        values = {**values, "disabled_reason": None, "failures": 0, "failing_since": None}
    elif values.get("enabled") is False:
        values = {**values, "disabled_reason": "disabled"}
    await conn.execute(
        update(webhook_endpoints)
        .where(_E.tenant_id == tenant, _E.id == endpoint_id)
        .values(**values, updated_at=now)
    )
    return await get(conn, tenant, endpoint_id)


async def remove(conn: AsyncConnection, tenant: str, endpoint_id: str) -> None:
    """Delete the endpoint and its queued deliveries; the tenant's last one takes its cursor."""
    done = await conn.execute(
        delete(webhook_endpoints).where(_E.tenant_id == tenant, _E.id == endpoint_id)
    )
    if not done.rowcount:
        raise not_found(endpoint_id)
    left = (await conn.execute(select(func.count()).where(_E.tenant_id == tenant))).scalar_one()
    if not left:
        await conn.execute(delete(webhook_cursors).where(_cursor(tenant)))
