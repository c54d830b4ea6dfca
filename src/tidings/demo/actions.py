"""Every change the demo makes, each with its notification.

Invariant: a change and its notification commit together or not at all. Each action runs in one
``service.transaction()``: the demo rows are written on ``tx.conn`` and the notification is
published with ``tx.publish`` — the same validation, sequence numbering and storage as
``POST /v1/notifications`` — and the row that records the change (``booking_events``,
``payments``) is written *after* the publish and names its seq. If anything fails, the whole
transaction rolls back; live delivery happens only after the commit.

Bookings also arm and disarm their reminder (:mod:`tidings.demo.reminding`) in that same
transaction, before the publish: taking or moving a booking arms it (when the caller passes the
channels' ``clock``; the seed passes none, so its history arms nothing), cancelling, completing
or a no-show disarms it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.channels.clock import Clock, SystemClock
from tidings.demo import reminding
from tidings.demo.domain import (
    FINAL,
    ITEMS,
    PAYMENT_METHODS,
    STATUS_LABELS,
    BookingIn,
    CustomerIn,
    FormErrors,
    Move,
    PaymentIn,
    apply_move,
    check_reschedule,
    money,
)
from tidings.demo.tables import booking_events, bookings, customers, payments
from tidings.domain.notifications import Actor, NewNotification, utcnow
from tidings.errors import Code, Conflict, NotFound
from tidings.service import Tidings, Transaction

_B, _C = bookings.c, customers.c


def when_text(day: date, start: object) -> str:
    """``Sat 14 Dec, 10:00``."""
    clock = start.strftime("%H:%M") if hasattr(start, "strftime") else str(start)
    return f"{day.strftime('%a')} {day.day} {day.strftime('%b')}, {clock}"


def by(name: str, user_id: str | None) -> Actor | None:
    """The signed-in user as the notification's actor (issue 10): it is read for them."""
    return None if user_id is None else Actor(id=user_id, name=name)


def booking_link(booking_id: int) -> str:
    return f"/demo/bookings/{booking_id}"


def booking_group(booking_id: int) -> str:
    """The collapse key of everything about one booking (issue 10): the bell and the feed show
    its request, moves and payments as one card with the latest state."""
    return f"booking:{booking_id}"


async def _customer_for(
    conn: AsyncConnection, tenant: str, data: CustomerIn, now: datetime
) -> tuple[int, bool]:
    """The id of the tenant's customer with this e-mail, created if new."""
    found = (
        await conn.execute(select(_C.id).where(_C.tenant_id == tenant, _C.email == data.email))
    ).scalar_one_or_none()
    if found is not None:
        return int(found), False
    result = await conn.execute(
        insert(customers).values(
            tenant_id=tenant, name=data.name, email=data.email, phone=data.phone, created_at=now
        )
    )
    return int(result.inserted_primary_key[0]), True  # type: ignore[index]


@dataclass(frozen=True, slots=True)
class Created:
    booking_id: int
    seq: int
    new_customer: bool


async def create_booking(
    service: Tidings,
    tenant: str,
    data: BookingIn,
    *,
    actor: str,
    actor_id: str | None = None,
    source: str,
    clock: Clock | None = None,
    at: datetime | None = None,
) -> Created:
    """Store a booking request and publish ``booking_created``, atomically; with ``clock``, arm
    its reminder in the same transaction. ``at`` dates the change in the past (the seed's
    history); by default it happens now."""
    now = at or utcnow()
    async with service.transaction() as tx:
        conn = tx.conn
        customer_id, new_customer = await _customer_for(conn, tenant, data.customer, now)
        result = await conn.execute(
            insert(bookings).values(
                tenant_id=tenant,
                customer_id=customer_id,
                item=data.item.slug,
                event_date=data.event_date,
                start_time=data.start_time,
                hours=data.hours,
                address=data.address,
                notes=data.notes,
                status="requested",
                price_cents=data.item.price_cents,
                source=source,
                created_at=now,
                updated_at=now,
            )
        )
        booking_id = int(result.inserted_primary_key[0])  # type: ignore[index]
        via = "booking page" if source == "widget" else actor
        when = when_text(data.event_date, data.start_time)
        body = f"{data.item.name} · {when} · {data.hours} h · {data.address}"
        if clock is not None:
            await reminding.arm(
                tx,
                tenant,
                booking_id,
                day=data.event_date,
                start=data.start_time,
                when=when,
                what=f"{data.item.name} for {data.customer.name} · {data.hours} h · {data.address}",
                now=clock.now(),
            )
        note, _ = await tx.publish(
            tenant,
            NewNotification(
                actor=by(actor, actor_id),
                type="booking_created",
                title=f"New booking from {data.customer.name}",
                body=body + (" · new customer" if new_customer else ""),
                link=booking_link(booking_id),
                group=booking_group(booking_id),
                data={
                    "booking_id": booking_id,
                    "customer_id": customer_id,
                    "status": "requested",
                    "source": source,
                    "via": via,
                },
            ),
            at=at,
        )
        await _history(tx, tenant, booking_id, None, "requested", via, note.seq, now)
    return Created(booking_id, note.seq, new_customer)


async def move_booking(
    service: Tidings,
    tenant: str,
    booking_id: int,
    move_name: str,
    *,
    actor: str,
    actor_id: str | None = None,
    clock: Clock | None = None,
    at: datetime | None = None,
) -> Move:
    """Change a booking's status through the state machine and publish the matching type. A
    move to a final status (cancelled, completed, no-show) disarms the booking's reminder.
    ``at`` dates the change in the past (the seed's history)."""
    now = at or utcnow()
    async with service.transaction() as tx:
        conn = tx.conn
        row = await _lock_booking(conn, tenant, booking_id)
        move = apply_move(booking_id, row.status, move_name)
        changed = await conn.execute(
            update(bookings)
            .where(_B.id == booking_id, _B.tenant_id == tenant, _B.status == row.status)
            .values(status=move.target, updated_at=now)
        )
        if changed.rowcount != 1:  # pragma: no cover - the row lock makes this unreachable
            raise Conflict(f"Booking #{booking_id} changed meanwhile; reload and try again.")
        if move.target in FINAL:
            await reminding.disarm(tx, tenant, booking_id, now=(clock or SystemClock()).now())
        label = STATUS_LABELS[move.target].lower()
        note, _ = await tx.publish(
            tenant,
            NewNotification(
                actor=by(actor, actor_id),
                type=move.notification,
                title=f"Booking #{booking_id} {label}",
                body=f"{row.customer} · {when_text(row.event_date, row.start_time)} · by {actor}",
                link=booking_link(booking_id),
                group=booking_group(booking_id),
                data={"booking_id": booking_id, "status": move.target, "from": row.status},
            ),
            at=at,
        )
        await _history(tx, tenant, booking_id, row.status, move.target, actor, note.seq, now)
    return move


async def reschedule_booking(
    service: Tidings,
    tenant: str,
    booking_id: int,
    day: date,
    start: time,
    *,
    actor: str,
    actor_id: str | None = None,
    clock: Clock,
) -> None:
    """Move a requested or confirmed booking to another date or time, re-arm its reminder and
    publish ``booking_rescheduled``, atomically."""
    async with service.transaction() as tx:
        conn = tx.conn
        row = await _lock_booking(conn, tenant, booking_id)
        check_reschedule(booking_id, row.status)
        if (row.event_date, row.start_time) == (day, start):
            raise FormErrors({"date": f"Booking #{booking_id} is already on that day and time."})
        await conn.execute(
            update(bookings)
            .where(_B.id == booking_id, _B.tenant_id == tenant)
            .values(event_date=day, start_time=start, updated_at=utcnow())
        )
        item = ITEMS[row.item].name if row.item in ITEMS else row.item
        before, after = when_text(row.event_date, row.start_time), when_text(day, start)
        await reminding.arm(
            tx,
            tenant,
            booking_id,
            day=day,
            start=start,
            when=after,
            what=f"{item} for {row.customer} · {row.hours} h · {row.address}",
            now=clock.now(),
        )
        note, _ = await tx.publish(
            tenant,
            NewNotification(
                actor=by(actor, actor_id),
                type="booking_rescheduled",
                title=f"Booking #{booking_id} moved to {after}",
                body=f"{row.customer} · {item} · was {before} · by {actor}",
                link=booking_link(booking_id),
                group=booking_group(booking_id),
                data={
                    "booking_id": booking_id,
                    "date": day.isoformat(),
                    "start": start.strftime("%H:%M"),
                },
            ),
        )
        await _history(tx, tenant, booking_id, row.status, row.status, actor, note.seq, utcnow())


async def _history(
    tx: Transaction,
    tenant: str,
    booking_id: int,
    before: str | None,
    after: str,
    actor: str,
    seq: int,
    now: datetime,
) -> None:
    await tx.conn.execute(
        insert(booking_events).values(
            tenant_id=tenant,
            booking_id=booking_id,
            from_status=before,
            to_status=after,
            actor=actor,
            notification_seq=seq,
            created_at=now,
        )
    )


async def create_customer(
    service: Tidings, tenant: str, data: CustomerIn, *, actor: str, actor_id: str | None = None
) -> int:
    """Add a customer and publish ``customer_created``."""
    now = utcnow()
    async with service.transaction() as tx:
        conn = tx.conn
        exists = (
            await conn.execute(select(_C.id).where(_C.tenant_id == tenant, _C.email == data.email))
        ).scalar_one_or_none()
        if exists is not None:
            raise FormErrors({"email": f"A customer with the e-mail {data.email} exists already."})
        result = await conn.execute(
            insert(customers).values(
                tenant_id=tenant, name=data.name, email=data.email, phone=data.phone, created_at=now
            )
        )
        customer_id = int(result.inserted_primary_key[0])  # type: ignore[index]
        await tx.publish(
            tenant,
            NewNotification(
                actor=by(actor, actor_id),
                type="customer_created",
                title=f"New customer: {data.name}",
                body=f"{data.email}"
                + (f" · {data.phone}" if data.phone else "")
                + f" · by {actor}",
                link="/demo/customers",
                data={"customer_id": customer_id},
            ),
        )
    return customer_id


async def record_payment(
    service: Tidings,
    tenant: str,
    booking_id: int,
    data: PaymentIn,
    *,
    actor: str,
    actor_id: str | None = None,
    at: datetime | None = None,
) -> int:
    """Record a received or failed payment and publish ``payment_received``/``payment_failed``
    (in the booking's group). ``at`` dates it in the past (the seed's history)."""
    async with service.transaction() as tx:
        conn = tx.conn
        row = (
            await conn.execute(
                select(bookings, _C.name.label("customer"))
                .join(customers, _C.id == _B.customer_id)
                .where(_B.tenant_id == tenant, _B.id == booking_id)
            )
        ).first()
        if row is None:
            raise NotFound(f"There is no booking #{booking_id}.", code=Code.BOOKING_NOT_FOUND)
        if row.status == "cancelled":
            raise Conflict(
                f"Booking #{booking_id} is cancelled: payments cannot be recorded against it.",
                code=Code.BOOKING_CANCELLED,
            )
        amount = money(data.amount_cents)
        method = PAYMENT_METHODS[data.method].lower()
        received = data.status == "received"
        note, _ = await tx.publish(
            tenant,
            NewNotification(
                actor=by(actor, actor_id),
                type="payment_received" if received else "payment_failed",
                title=f"Payment {'received' if received else 'failed'}: {amount}",
                body=f"Booking #{booking_id} · {row.customer} · {method}"
                + (f" · {data.note}" if data.note else ""),
                link=booking_link(booking_id),
                group=booking_group(booking_id),
                data={
                    "booking_id": booking_id,
                    "amount_cents": data.amount_cents,
                    "status": data.status,
                },
            ),
            at=at,
        )
        result = await conn.execute(
            insert(payments).values(
                tenant_id=tenant,
                booking_id=booking_id,
                amount_cents=data.amount_cents,
                status=data.status,
                method=data.method,
                note=data.note,
                recorded_by=actor,
                notification_seq=note.seq,
                created_at=at or utcnow(),
            )
        )
    return int(result.inserted_primary_key[0])  # type: ignore[index]


async def _lock_booking(conn: AsyncConnection, tenant: str, booking_id: int) -> Row[Any]:
    """The tenant's booking with its customer's name, locked for this transaction (404 if
    it is not the tenant's)."""
    row = (
        await conn.execute(
            select(bookings, _C.name.label("customer"))
            .join(customers, _C.id == _B.customer_id)
            .where(_B.tenant_id == tenant, _B.id == booking_id)
            .with_for_update(of=bookings)
        )
    ).first()
    if row is None:
        raise NotFound(f"There is no booking #{booking_id}.", code=Code.BOOKING_NOT_FOUND)
    return row
