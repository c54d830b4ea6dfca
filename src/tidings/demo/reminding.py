"""Booking reminders: every upcoming booking has one ``reminder`` armed with the channels'
reminder scheduler, in the same transaction as the change that made it upcoming.

- A booking taken (staff form or the public widget) or moved to another date arms its reminder
  (``reminders.schedule_booking``: key ``booking:<id>``, due the tenant's
  ``reminder_lead_hours`` before the start, at once when that is already past).
- A booking cancelled, completed or marked a no-show disarms it (``reminders.cancel_booking``).

The scheduler publishes each key exactly once, whatever the number of instances; a reminder
already sent stays sent, so a booking moved *after* its reminder went out gets no second one.

Booking dates and times are the business's local time: its time zone is the tenant default of
the channels (``UTC`` until an owner sets one on the preferences page). ``now`` comes from the
channels' injected clock, so tests move time instead of waiting a day.
"""

from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from fastapi import FastAPI

from tidings.channels import profiles, reminders
from tidings.channels.clock import Clock, SystemClock
from tidings.service import Transaction

AUDIENCE = {"roles": ["owner", "staff"]}


def clock_of(app: FastAPI) -> Clock:
    """The channels' clock (a test's ``ManualClock`` when one was injected)."""
    channels = getattr(app.state, "channels", None)
    if channels is not None:
        clock: Clock = channels.clock
        return clock
    injected: Clock | None = getattr(app.state, "channels_clock", None)
    return injected or SystemClock()


async def starts_at(tx: Transaction, tenant: str, day: date, start: time) -> datetime:
    """The booking's start as an aware datetime in the business's time zone."""
    zone = (await profiles.tenant_prefs(tx.conn, tenant)).time_zone
    return datetime.combine(day, start, tzinfo=ZoneInfo(zone))


async def arm(
    tx: Transaction,
    tenant: str,
    booking_id: int,
    *,
    day: date,
    start: time,
    when: str,
    what: str,
    now: datetime,
) -> reminders.Reminder | None:
    """(Re)arm the booking's reminder; ``None`` when the booking has already started.
    Call it before ``tx.publish`` (row locks: reminder, then tenant — as the scheduler)."""
    return await reminders.schedule_booking(
        tx.conn,
        tenant,
        booking_id,
        await starts_at(tx, tenant, day, start),
        now=now,
        title=f"Reminder: booking #{booking_id} starts {when}",
        body=what,
        link=f"/demo/bookings/{booking_id}",
        audience=AUDIENCE,
    )


async def disarm(tx: Transaction, tenant: str, booking_id: int, *, now: datetime) -> bool:
    """Cancel the booking's pending reminder (``False``: none was pending)."""
    return await reminders.cancel_booking(tx.conn, tenant, booking_id, now=now)
