"""A rental business's clock: its time zone and its calendar day.

A booking's date and start time are the business's wall-clock time (as the owner says them on
the phone), so "today", "the next 7 days" and every time stamp the owner sees are taken in the
business's time zone — the one the channels keep as the tenant's setting
(:func:`tidings.channels.profiles.tenant_prefs`, ``time_zone``; an owner changes it under
**Business defaults**). The seed gives each demo business its real zone (the Austin one
``America/Chicago``); a business without one is on UTC, the channels' default.
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.channels import profiles
from tidings.domain.notifications import utcnow


async def zone_of(conn: AsyncConnection, tenant: str) -> ZoneInfo:
    """The business's time zone (UTC when it has none set)."""
    return ZoneInfo((await profiles.tenant_prefs(conn, tenant)).time_zone)


def today_in(zone: ZoneInfo, now: datetime | None = None) -> date:
    """The business's calendar day at ``now`` (default: the present instant)."""
    return (now or utcnow()).astimezone(zone).date()


def local(value: datetime, zone: ZoneInfo) -> datetime:
    """An instant as the business's wall-clock time (a naive value is taken as UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo("UTC"))
    return value.astimezone(zone)
