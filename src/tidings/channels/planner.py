"""The fan-out: for each committed notification, once, decide who is pushed and who gets it in
a digest, and write that down (push outbox rows, delivery log rows).

Exactly once per notification, whatever the number of instances: a per-tenant cursor
(``channel_cursors.last_seq``) is read ``FOR UPDATE`` (PostgreSQL; on SQLite the write
transaction holds the write lock), the next batch after it is planned, and the outbox rows, the
log rows and the advanced cursor commit together. Seq order is commit order, so a cursor never
passes a notification that could still commit below it.

The publish path only *wakes* the planner (``after_publish`` hook, no I/O); notifications
published by other instances are found by polling ``tenants.last_seq > cursor`` every second.
Tenants that existed when migration ``0003_channels`` ran got a cursor at their last seq (no
history is pushed); tenants created later start at 0. Notifications older than
``TIDINGS_PUSH_MAX_AGE`` are never pushed (``skipped: stale``), e.g. after a long outage.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, insert, or_, select, update

from tidings.channels import deliverylog, profiles
from tidings.channels._sql import upsert
from tidings.channels.clock import as_utc
from tidings.channels.deliverylog import entry
from tidings.channels.preferences import Effective
from tidings.channels.profiles import Profile
from tidings.channels.tables import channel_cursors, push_outbox, push_subscriptions
from tidings.domain.notifications import Notification
from tidings.store import notifications as nq
from tidings.store.tables import tenants

if TYPE_CHECKING:
    from tidings.channels.runtime import Channels

log = logging.getLogger(__name__)
BATCH = 100
_C = channel_cursors.c


@dataclass
class Recipient:
    profile: Profile
    prefs: Effective
    devices: list[int]
    live: bool


class Planner:
    def __init__(self, channels: Channels) -> None:
        self.ch = channels
        self._wake = asyncio.Event()

    async def on_publish(self, published: list[Notification]) -> None:
        """``service.after_publish`` hook: no I/O, just wake the planner up."""
        if published:
            self._wake.set()

    async def run_forever(self, interval: float = 1.0) -> None:
        while True:
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("channel fan-out failed (will retry): %r", error)
            with suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), interval)
            self._wake.clear()

    async def run_once(self) -> int:
        planned = 0
        for tenant in await self._pending_tenants():
            while (done := await self.plan_batch(tenant)) > 0:
                planned += done
                if done < BATCH:
                    break
        return planned

    async def _pending_tenants(self) -> list[str]:
        store, now = self.ch.service.store, self.ch.clock.now()
        async with store.read() as conn:
            rows = (
                await conn.execute(
                    select(tenants.c.id, _C.last_seq)
                    .select_from(tenants.outerjoin(channel_cursors, _C.tenant_id == tenants.c.id))
                    .where(or_(_C.last_seq.is_(None), tenants.c.last_seq > _C.last_seq))
                )
            ).all()
        missing = [tenant for tenant, cursor in rows if cursor is None]
        if missing:
            # A tenant without a cursor was created after migration 0003 (which gave every
            # tenant that existed then a cursor at its last seq): plan it from the start.
            async with store.write() as conn:
                stmt = upsert(conn)(channel_cursors).values(
                    [{"tenant_id": t, "last_seq": 0, "updated_at": now} for t in missing]
                )
                await conn.execute(stmt.on_conflict_do_nothing(index_elements=["tenant_id"]))
        return [tenant for tenant, _ in rows]

    async def plan_batch(self, tenant: str) -> int:
        """Plan the next batch of ``tenant``; returns how many notifications it covered."""
        ch, now = self.ch, self.ch.clock.now()
        async with ch.service.store.write() as conn:
            cursor = (
                await conn.execute(
                    select(_C.last_seq).where(_C.tenant_id == tenant).with_for_update()
                )
            ).scalar_one_or_none()
            if cursor is None:
                return 0
            batch = await nq.fetch_after(conn, tenant, int(cursor), limit=BATCH)
            if not batch:
                return 0
            recipients = await self._recipients(conn, tenant)
            backlog = (
                await conn.execute(
                    select(func.count())
                    .select_from(push_outbox)
                    .where(push_outbox.c.tenant_id == tenant)
                )
            ).scalar_one()
            outbox: list[dict[str, Any]] = []
            logs: list[dict[str, Any]] = []
            for item in batch:
                for recipient in recipients:
                    self._decide(item, recipient, now, outbox, logs, int(backlog))
            if outbox:
                await conn.execute(insert(push_outbox), outbox)
            await deliverylog.write(conn, logs)
            await conn.execute(
                update(channel_cursors)
                .where(_C.tenant_id == tenant)
                .values(last_seq=batch[-1].seq, updated_at=now)
            )
        if outbox:
            ch.push_worker.wake()
        return len(batch)

    async def _recipients(self, conn: Any, tenant: str) -> list[Recipient]:
        known = await profiles.all_of(conn, tenant)
        defaults = await profiles.tenant_prefs(conn, tenant)
        devices: dict[str, list[int]] = defaultdict(list)
        rows = await conn.execute(
            select(push_subscriptions.c.id, push_subscriptions.c.user_id).where(
                push_subscriptions.c.tenant_id == tenant
            )
        )
        for sub_id, user in rows:
            devices[user].append(int(sub_id))
        emailing = bool(self.ch.settings.smtp_host)
        known = [p for p in known if devices.get(p.user) or (emailing and p.email)]
        live = await self.ch.presence.live(conn, tenant, [p.user for p in known if devices[p.user]])
        return [
            Recipient(p, p.effective(defaults), devices.get(p.user, []), p.user in live)
            for p in known
        ]

    def _decide(
        self,
        item: Notification,
        r: Recipient,
        now: datetime,
        outbox: list[dict[str, Any]],
        logs: list[dict[str, Any]],
        backlog: int,
    ) -> None:
        user = r.profile.user
        if not item.visible_to(user, frozenset(r.profile.roles)) or item.by(user):
            return  # not theirs to see, or their own action (its actor: issue 10)
        settings = self.ch.settings

        def note(channel: Any, status: Any, reason: str | None = None, **kw: Any) -> None:
            logs.append(
                entry(
                    item.tenant, item.seq, channel, status, at=now, user=user, reason=reason, **kw
                )
            )

        if r.devices:
            delay = settings.push_unread_delay
            if not r.prefs.allows(item.type, "push"):
                note("push", "skipped", "preference")
            elif r.prefs.quiet_at(now):
                note("push", "skipped", "quiet_hours")
            elif as_utc(item.created_at) < now - timedelta(seconds=settings.push_max_age):
                note("push", "skipped", "stale")
            elif r.live and delay <= 0:
                note("push", "skipped", "live_stream")
            elif backlog + len(outbox) >= settings.push_queue_limit:
                note("push", "failed", "queue_full")
            else:
                due = now + timedelta(seconds=delay) if r.live else now
                for device in r.devices:
                    outbox.append(
                        {
                            "tenant_id": item.tenant,
                            "seq": item.seq,
                            "user_id": user,
                            "subscription_id": device,
                            "state": "pending",
                            "attempts": 0,
                            "due_at": due,
                            "created_at": now,
                        }
                    )
                    detail = {"unless_read_by": due.isoformat()} if r.live else None
                    note("push", "queued", None, target=f"device:{device}", detail=detail)
        if r.profile.email and settings.smtp_host:
            digest = r.prefs.digest
            if digest.cadence == "off" or not r.prefs.master("email"):
                return
            if not r.prefs.allows(item.type, "email"):
                note("email", "skipped", "preference", target="email")
                return
            when = "hourly" if digest.cadence == "hourly" else f"daily at {digest.hour:02d}:00"
            note(
                "email",
                "queued",
                None,
                target="email",
                detail={"digest": f"{when} {r.prefs.zone_name}"},
            )
