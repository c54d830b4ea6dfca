"""The locale a user reads in when nobody is connected (issue 10 item 5): push and digests.

A user's ``locale`` preference (set through ``PUT /v1/users/{user}``, the preferences API, or
the ``locale`` claim of their stream token), else the tenant's default ``locale``, else none
(the notification's default text, the catalogue's English).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.channels.tables import channel_tenants, channel_users


async def locale_of(conn: AsyncConnection, tenant: str, user: str) -> str | None:
    """The user's locale preference, else the tenant's; two indexed reads, no parsing."""
    _U, _C = channel_users.c, channel_tenants.c
    prefs = (
        await conn.execute(select(_U.prefs).where(_U.tenant_id == tenant, _U.user_id == user))
    ).scalar_one_or_none()
    if isinstance(prefs, dict) and isinstance(prefs.get("locale"), str):
        return str(prefs["locale"])
    defaults = (
        await conn.execute(select(_C.prefs).where(_C.tenant_id == tenant))
    ).scalar_one_or_none()
    if isinstance(defaults, dict) and isinstance(defaults.get("locale"), str):
        return str(defaults["locale"])
    return None
