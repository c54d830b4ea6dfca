"""Push subscription queries. An endpoint belongs to one (tenant, user) at a time: posting it
again (a browser re-subscribing, or another user signing in on that browser) moves it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.channels.clock import as_utc
from tidings.channels.tables import push_outbox, push_subscriptions
from tidings.channels.webpush import endpoint_hash
from tidings.domain.notifications import format_time
from tidings.errors import Code, Conflict

_S = push_subscriptions.c
MAX_DEVICES = 20  # per user: one push fans out to each, so the list must stay short


@dataclass(frozen=True, slots=True)
class Subscription:
    id: int
    tenant: str
    user: str
    endpoint: str
    user_agent: str | None
    created_at: datetime
    last_success_at: datetime | None

    def public(self) -> dict[str, Any]:
        parts = urlsplit(self.endpoint)
        return {
            "id": self.id,
            "push_service": f"{parts.scheme}://{parts.netloc}",
            "user_agent": self.user_agent,
            "created_at": format_time(self.created_at),
            "last_success_at": format_time(self.last_success_at) if self.last_success_at else None,
        }


def _subscription(row: Any) -> Subscription:
    return Subscription(
        id=int(row.id),
        tenant=row.tenant_id,
        user=row.user_id,
        endpoint=row.endpoint,
        user_agent=row.user_agent,
        created_at=as_utc(row.created_at),
        last_success_at=as_utc(row.last_success_at) if row.last_success_at else None,
    )


async def of_user(conn: AsyncConnection, tenant: str, user: str) -> list[Subscription]:
    rows = await conn.execute(
        select(push_subscriptions).where(_S.tenant_id == tenant, _S.user_id == user).order_by(_S.id)
    )
    return [_subscription(r) for r in rows]


async def save(
    conn: AsyncConnection,
    tenant: str,
    user: str,
    *,
    endpoint: str,
    p256dh: str,
    auth: str,
    user_agent: str | None,
    now: datetime,
) -> tuple[Subscription, bool]:
    """Store the subscription for this user; returns it and whether it is new."""
    digest = endpoint_hash(endpoint)
    others = (
        await conn.execute(
            select(func.count())
            .select_from(push_subscriptions)
            .where(_S.tenant_id == tenant, _S.user_id == user, _S.endpoint_hash != digest)
        )
    ).scalar_one()
    if others >= MAX_DEVICES:
        raise Conflict(
            f"This user has {MAX_DEVICES} push subscriptions already; remove one first.",
            code=Code.TOO_MANY_SUBSCRIPTIONS,
        )
    values = {
        "tenant_id": tenant,
        "user_id": user,
        "endpoint": endpoint,
        "p256dh": p256dh,
        "auth": auth,
        "user_agent": (user_agent or "")[:300] or None,
        "failures": 0,
    }
    existing = (
        await conn.execute(
            select(_S.id, _S.tenant_id, _S.user_id).where(_S.endpoint_hash == digest)
        )
    ).first()
    created = existing is None
    if existing is not None and (existing.tenant_id, existing.user_id) != (tenant, user):
        # The device changed hands: nothing queued for the previous owner may reach it.
        await conn.execute(delete(push_outbox).where(push_outbox.c.subscription_id == existing.id))
    if created:
        try:
            async with conn.begin_nested():
                await conn.execute(
                    push_subscriptions.insert().values(
                        endpoint_hash=digest, created_at=now, **values
                    )
                )
        except IntegrityError:  # the same endpoint posted twice at once
            created = False
    if not created:
        await conn.execute(
            update(push_subscriptions).where(_S.endpoint_hash == digest).values(**values)
        )
    row = (await conn.execute(select(push_subscriptions).where(_S.endpoint_hash == digest))).one()
    return _subscription(row), created


async def remove(
    conn: AsyncConnection,
    tenant: str,
    user: str,
    *,
    endpoint: str | None = None,
    subscription_id: int | None = None,
) -> int:
    """Delete one of *this user's* subscriptions; returns how many rows went (0 or 1)."""
    query = delete(push_subscriptions).where(_S.tenant_id == tenant, _S.user_id == user)
    if endpoint is not None:
        query = query.where(_S.endpoint_hash == endpoint_hash(endpoint))
    if subscription_id is not None:
        query = query.where(_S.id == subscription_id)
    done = await conn.execute(query)
    return int(done.rowcount or 0)
