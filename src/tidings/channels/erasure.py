"""The channels' part of erasing a user (:func:`tidings.store.erasure.erase_user`).

``erase_user`` is a :data:`~tidings.store.erasure.UserEraser`: in the caller's transaction it
deletes the user's profile and preferences (``channel_users``), push subscriptions and their
pending deliveries, presence records, digest runs (the digest state) and delivery-log rows, and
treats scheduled reminders like notifications: one addressed only to the user is deleted
(whatever its state: a pending one never fires), one addressed to others too loses the user
from its audience. Tenant-wide data (the tenant's defaults, the fan-out cursor) stays.
A tenant's deletion needs nothing from here: every channel table has a ``tenant_id``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import String, Table, cast, delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.channels.tables import (
    channel_users,
    delivery_log,
    digest_runs,
    presence,
    push_outbox,
    push_subscriptions,
    scheduled_reminders,
)
from tidings.store.erasure import without_user

# (kind reported, table): rows with the user's ``user_id``. Outbox rows before subscriptions.
_USER_ROWS: tuple[tuple[str, Table], ...] = (
    ("preferences", channel_users),
    ("push_outbox", push_outbox),
    ("push_subscriptions", push_subscriptions),
    ("presence", presence),
    ("digest_runs", digest_runs),
    ("delivery_log", delivery_log),
)


async def erase_user(conn: AsyncConnection, tenant: str, user: str) -> dict[str, int]:
    """Delete the user's channel rows; returns rows removed per kind (see the module doc)."""
    removed: dict[str, int] = {}
    for kind, table in _USER_ROWS:
        result = await conn.execute(
            delete(table).where(table.c.tenant_id == tenant, table.c.user_id == user)
        )
        removed[kind] = result.rowcount
    removed["reminders"], removed["reminder_audiences"] = await _reminders(conn, tenant, user)
    return removed


async def _reminders(conn: AsyncConnection, tenant: str, user: str) -> tuple[int, int]:
    r = scheduled_reminders.c
    # A coarse text filter first (ids hold no JSON-escaped characters), the exact test below.
    rows = await conn.execute(
        select(r.key, r.payload).where(
            r.tenant_id == tenant, cast(r.payload, String).contains(f'"{user}"')
        )
    )
    deleted = changed = 0
    for key, payload in rows.all():
        audience: dict[str, Any] | None = (payload or {}).get("audience")
        if not audience or user not in audience.get("users", []):
            continue
        left = without_user(audience, user)
        where = (r.tenant_id == tenant, r.key == key)
        if left is None:
            await conn.execute(delete(scheduled_reminders).where(*where))
            deleted += 1
        else:
            await conn.execute(
                update(scheduled_reminders)
                .where(*where)
                .values(payload={**payload, "audience": left})
            )
            changed += 1
    return deleted, changed


__all__ = ["erase_user"]
