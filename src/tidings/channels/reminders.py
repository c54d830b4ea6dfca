"""Reminders: notifications of type ``reminder`` that hosts schedule for later.

A reminder has a key (``booking:42``), a due time and the notification to publish. The
scheduler publishes each key **exactly once**, with any number of instances and across
restarts, because claiming and publishing are one transaction:

1. ``SELECT … WHERE state = 'pending' AND due_at <= now … FOR UPDATE SKIP LOCKED LIMIT 1``
   (PostgreSQL: the row lock; other instances skip the row. SQLite: the write transaction
   holds the database write lock, so claims are serial).
2. Publish the notification (idempotency key ``reminder:<key>``, a second guard) and mark the
   row ``done`` with its seq, in that same transaction.
3. Commit. A crash before commit rolls everything back: the row is pending again and no
   notification exists. After commit the row is ``done`` and is never claimed again.

``now`` comes from the injected :class:`~tidings.channels.clock.Clock`.

In-process API for hosts (and the demo), each taking a connection of the caller's write
transaction so a reminder commits or rolls back with the booking that caused it — schedule
*before* publishing in that transaction, so row locks are always taken reminder → tenant::

    await schedule(conn, tenant, key, due_at=…, now=…, title=…, body="", link=None,
                   data=None, audience=None) -> Reminder
    await cancel(conn, tenant, key, now=…) -> bool            # True if a pending one was cancelled
    await get(conn, tenant, key) -> Reminder | None
    await schedule_booking(conn, tenant, booking_id, starts_at, now=…, title=…, body="",
                           link=None, data=None, audience=None) -> Reminder | None
    await cancel_booking(conn, tenant, booking_id, now=…) -> bool

``schedule`` is an upsert: a pending, cancelled or failed key is (re)armed with the new time and
payload; a ``done`` key stays done (exactly one reminder per key — use a new key, e.g. with the
start time in it, to remind again about a moved booking). ``schedule_booking`` uses the key
``booking:<id>`` and the tenant's ``reminder_lead_hours`` (default 24): due at ``starts_at``
minus the lead, or at once when that is past; no reminder for a booking that has started.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.channels import profiles
from tidings.channels._sql import upsert
from tidings.channels.clock import as_utc
from tidings.channels.tables import scheduled_reminders
from tidings.domain.notifications import Audience, NewNotification, format_time
from tidings.errors import Code, Conflict, NotFound, PayloadTooLarge, ValidationFailed
from tidings.store.tables import tenants

if TYPE_CHECKING:
    from tidings.service import Tidings

log = logging.getLogger(__name__)

KEY_PATTERN = re.compile(r"^[A-Za-z0-9_.:@+\-]{1,180}\Z")
_R = scheduled_reminders.c


@dataclass(frozen=True, slots=True)
class Reminder:
    tenant: str
    key: str
    due_at: datetime
    state: str
    seq: int | None
    payload: dict[str, Any]
    last_error: str | None = None

    def public(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "due_at": format_time(self.due_at),
            "state": self.state,
            "notification_id": self.seq,
            "notification": {"type": "reminder", **self.payload},
            "error": self.last_error,
        }


def _reminder(row: Any) -> Reminder:
    return Reminder(
        tenant=row.tenant_id,
        key=row.key,
        due_at=as_utc(row.due_at),
        state=row.state,
        seq=None if row.seq is None else int(row.seq),
        payload=dict(row.payload),
        last_error=row.last_error,
    )


def check_key(key: str) -> str:
    if not KEY_PATTERN.match(key):
        raise ValidationFailed("A reminder key is 1-180 of A-Z a-z 0-9 _ . : @ + -.")
    return key


def notification(
    *,
    title: str,
    body: str = "",
    link: str | None = None,
    data: dict[str, Any] | None = None,
    audience: Audience | dict[str, Any] | None = None,
) -> NewNotification:
    """The ``reminder`` notification a reminder will publish (validated now, not when due)."""
    try:
        return NewNotification.model_validate(
            {
                "type": "reminder",
                "title": title,
                "body": body,
                "link": link,
                "data": data or {},
                "audience": audience,
            }
        )
    except ValueError as error:
        raise ValidationFailed(f"The reminder's notification is invalid: {error}") from error


async def get(conn: AsyncConnection, tenant: str, key: str) -> Reminder | None:
    row = (
        await conn.execute(select(scheduled_reminders).where(_R.tenant_id == tenant, _R.key == key))
    ).first()
    return None if row is None else _reminder(row)


async def schedule(
    conn: AsyncConnection,
    tenant: str,
    key: str,
    *,
    due_at: datetime,
    now: datetime,
    title: str,
    body: str = "",
    link: str | None = None,
    data: dict[str, Any] | None = None,
    audience: Audience | dict[str, Any] | None = None,
    max_pending: int | None = None,
) -> Reminder:
    """Arm (or re-arm) the reminder ``key``; a reminder already sent stays as it is.

    With ``max_pending``, raise ``Conflict`` (``too_many_reminders``; the caller's transaction
    rolls back, so nothing is stored) when this leaves the tenant with more pending reminders.
    The count is taken after the upsert, under the tenant's row lock, so concurrent requests
    cannot both take the last place (locks stay in the order reminder → tenant).
    """
    check_key(key)
    new = notification(title=title, body=body, link=link, data=data, audience=audience)
    payload = new.model_dump(mode="json", exclude={"type"}, exclude_none=True)
    due = as_utc(due_at)
    stmt = upsert(conn)(scheduled_reminders).values(
        tenant_id=tenant,
        key=key,
        due_at=due,
        payload=payload,
        state="pending",
        created_at=now,
        updated_at=now,
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["tenant_id", "key"],
        set_={
            "due_at": due,
            "payload": payload,
            "state": "pending",
            "last_error": None,
            "updated_at": now,
        },
        where=scheduled_reminders.c.state != "done",
    )
    await conn.execute(stmt)
    if max_pending is not None:
        await _check_pending(conn, tenant, max_pending)
    found = await get(conn, tenant, key)
    assert found is not None
    return found


async def _check_pending(conn: AsyncConnection, tenant: str, limit: int) -> None:
    # FOR NO KEY UPDATE: the lock a publish's seq increment takes; unlike FOR UPDATE it does
    # not wait for the key-share locks the reminder row's foreign key holds on the tenant.
    lock = select(tenants.c.id).where(tenants.c.id == tenant).with_for_update(key_share=True)
    await conn.execute(lock)
    pending = (
        await conn.execute(
            select(func.count())
            .select_from(scheduled_reminders)
            .where(_R.tenant_id == tenant, _R.state == "pending")
        )
    ).scalar_one()
    if pending > limit:
        raise Conflict(
            f"This tenant has {limit} pending reminders already; cancel one or wait until "
            "some are sent.",
            code=Code.TOO_MANY_REMINDERS,
        )


async def cancel(conn: AsyncConnection, tenant: str, key: str, *, now: datetime) -> bool:
    """Cancel a pending reminder. ``False`` when there is none pending (unknown, sent, …)."""
    done = await conn.execute(
        update(scheduled_reminders)
        .where(_R.tenant_id == tenant, _R.key == key, _R.state == "pending")
        .values(state="cancelled", updated_at=now)
    )
    return bool(done.rowcount)


def booking_key(booking_id: int | str) -> str:
    return f"booking:{booking_id}"


async def schedule_booking(
    conn: AsyncConnection,
    tenant: str,
    booking_id: int | str,
    starts_at: datetime,
    *,
    now: datetime,
    title: str,
    body: str = "",
    link: str | None = None,
    data: dict[str, Any] | None = None,
    audience: Audience | dict[str, Any] | None = None,
) -> Reminder | None:
    """The booking's reminder, ``reminder_lead_hours`` before it starts (``None``: started)."""
    key = booking_key(booking_id)
    start = as_utc(starts_at)
    if start <= now:
        await cancel(conn, tenant, key, now=now)
        return None
    lead = (await profiles.tenant_prefs(conn, tenant)).reminder_lead_hours
    due = max(start - timedelta(hours=lead), now)
    payload = {"booking_id": booking_id, "starts_at": format_time(start), **(data or {})}
    return await schedule(
        conn,
        tenant,
        key,
        due_at=due,
        now=now,
        title=title,
        body=body,
        link=link,
        data=payload,
        audience=audience,
    )


async def cancel_booking(
    conn: AsyncConnection, tenant: str, booking_id: int | str, *, now: datetime
) -> bool:
    return await cancel(conn, tenant, booking_key(booking_id), now=now)


async def run_due(service: Tidings, now: datetime, *, limit: int = 200) -> int:
    """Publish up to ``limit`` due reminders, one transaction each. Returns how many."""
    published = 0
    async with service.store.read() as conn:  # idle: no write transaction
        due = select(_R.key).where(_R.state == "pending", _R.due_at <= now).limit(1)
        if (await conn.execute(due)).first() is None:
            return 0
    for _ in range(limit):
        async with service.transaction() as tx:
            row = (
                await tx.conn.execute(
                    select(scheduled_reminders)
                    .where(_R.state == "pending", _R.due_at <= now)
                    .order_by(_R.due_at, _R.tenant_id, _R.key)
                    .limit(1)
                    .with_for_update(skip_locked=True)
                )
            ).first()
            if row is None:
                break
            where = (_R.tenant_id == row.tenant_id, _R.key == row.key)
            try:
                new = NewNotification.model_validate({"type": "reminder", **row.payload})
                async with tx.conn.begin_nested():
                    stored, _ = await tx.publish(
                        row.tenant_id, new, idempotency_key=f"reminder:{row.key}"
                    )
            except (ValueError, ValidationFailed, PayloadTooLarge, NotFound) as error:
                log.warning("reminder failed tenant=%s key=%s: %s", row.tenant_id, row.key, error)
                await tx.conn.execute(
                    update(scheduled_reminders)
                    .where(*where)
                    .values(state="failed", last_error=str(error)[:500], updated_at=now)
                )
                continue
            await tx.conn.execute(
                update(scheduled_reminders)
                .where(*where)
                .values(state="done", seq=stored.seq, updated_at=now)
            )
            fired = {"key": row.key, "notification_id": stored.seq}
            await service.emit(row.tenant_id, "reminder.fired", fired, tx.conn)  # webhooks
        published += 1
        log.debug("reminder sent tenant=%s key=%s seq=%d", row.tenant_id, row.key, stored.seq)
    return published
