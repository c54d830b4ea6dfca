"""Snoozes that end: the item comes back unread, with an event, and a push if its user is away.

Runs on the reminder scheduler's tick (``TIDINGS_REMINDER_INTERVAL``) with the same mechanism:
due rows are claimed ``FOR UPDATE SKIP LOCKED`` and changed in one write transaction
(:func:`tidings.store.readstate.claim_due_snoozes`), and the pushes are planned in that same
transaction, so each snooze ends — one ``unsnoozed`` event, at most one push per device —
exactly once, whatever the number of instances and across crashes (a rolled-back claim is
claimed again later).

A user counts as *away* when no instance has a live stream of theirs (presence); only then is
the item pushed, to each of their devices, unless the type's push is switched off for them.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.channels import deliverylog, profiles
from tidings.channels.tables import push_outbox, push_subscriptions
from tidings.store import notifications as nq
from tidings.store.readstate import Woken
from tidings.store.tables import receipts

if TYPE_CHECKING:
    from tidings.channels.deps import WorkerDeps

log = logging.getLogger(__name__)
BATCH = 200


async def wake_due(ch: WorkerDeps) -> int:
    """End the snoozes due now (a batch at a time); how many ended."""
    now = ch.clock.now()
    async with ch.store.read() as conn:  # idle: no write transaction
        due = select(receipts.c.seq).where(
            receipts.c.snoozed_until.is_not(None), receipts.c.snoozed_until <= now
        )
        if (await conn.execute(due.limit(1))).first() is None:
            return 0
    ended = 0
    queued: list[int] = []

    async def plan(conn: AsyncConnection, woken: list[Woken]) -> None:
        queued.append(await _plan_push(ch, conn, woken, now))

    while True:
        woken = await ch.wake_snoozed(now, limit=BATCH, on_claim=plan)
        ended += len(woken)
        if len(woken) < BATCH:
            break
    if any(queued):
        ch.wake_push()
    return ended


async def _plan_push(
    ch: WorkerDeps, conn: AsyncConnection, woken: list[Woken], now: datetime
) -> int:
    """Outbox rows for the users without a live stream; returns how many."""
    by_tenant: dict[str, list[Woken]] = defaultdict(list)
    for item in woken:
        by_tenant[item.tenant].append(item)
    outbox: list[dict[str, Any]] = []
    logs: list[dict[str, Any]] = []
    for tenant, items in by_tenant.items():
        users = sorted({i.user for i in items})
        devices: dict[str, list[int]] = defaultdict(list)
        rows = await conn.execute(
            select(push_subscriptions.c.id, push_subscriptions.c.user_id).where(
                push_subscriptions.c.tenant_id == tenant,
                push_subscriptions.c.user_id.in_(users),
            )
        )
        for sub_id, user in rows:
            devices[str(user)].append(int(sub_id))
        if not devices:
            continue
        live = await ch.live(conn, tenant, list(devices))
        defaults = await profiles.tenant_prefs(conn, tenant)
        for item in items:
            if not devices.get(item.user) or item.user in live:
                continue
            stored = await nq.get(conn, tenant, item.seq)
            profile = await profiles.get(conn, tenant, item.user)
            prefs = (profile or profiles.Profile(tenant, item.user)).effective(defaults)
            if stored is None or not prefs.allows(stored.type, "push"):
                continue
            for device in devices[item.user]:
                outbox.append(
                    {
                        "tenant_id": tenant,
                        "seq": item.seq,
                        "user_id": item.user,
                        "subscription_id": device,
                        "state": "pending",
                        "attempts": 0,
                        "due_at": now,
                        "created_at": now,
                    }
                )
                logs.append(
                    deliverylog.entry(
                        tenant,
                        item.seq,
                        "push",
                        "queued",
                        at=now,
                        user=item.user,
                        target=f"device:{device}",
                        detail={"snooze": "ended"},
                    )
                )
    if outbox:
        await conn.execute(insert(push_outbox), outbox)
    await deliverylog.write(conn, logs)
    return len(outbox)
