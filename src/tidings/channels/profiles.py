"""What the channels know about users and tenants: contact, zone, roles and preferences.

A user's row is written when the user calls the channels API with a stream token (e-mail and
roles come from the token's claims), when the user has a live stream (the presence heartbeat
records the same claims, unless the token carries none: no e-mail, roles or locale, and the
user has no row yet), and by an admin (``PUT /v1/users/{user}``). Roles are kept so that
push and digests can check a notification's audience while the user is not connected.

Every function takes a connection of the caller's transaction and filters on the tenant.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, String, cast, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.channels._sql import KEEP, Keep, upsert
from tidings.channels.preferences import Effective, TenantPreferences, UserPreferences
from tidings.channels.tables import channel_tenants, channel_users, push_subscriptions
from tidings.errors import Code, NotFound

_U = channel_users.c


@dataclass(frozen=True, slots=True)
class Profile:
    tenant: str
    user: str
    email: str | None = None
    time_zone: str | None = None
    roles: tuple[str, ...] = ()
    prefs: UserPreferences = field(default_factory=UserPreferences)

    def effective(self, tenant: TenantPreferences) -> Effective:
        return Effective(self.prefs, tenant, self.time_zone)

    def public(self) -> dict[str, Any]:
        return {
            "user": self.user,
            "email": self.email,
            "time_zone": self.time_zone,
            "roles": list(self.roles),
        }


def _profile(row: Any) -> Profile:
    return Profile(
        tenant=row.tenant_id,
        user=row.user_id,
        email=row.email,
        time_zone=row.time_zone,
        roles=tuple(row.roles or ()),
        prefs=UserPreferences.model_validate(row.prefs or {}),
    )


async def get(conn: AsyncConnection, tenant: str, user: str) -> Profile | None:
    row = (
        await conn.execute(select(channel_users).where(_U.tenant_id == tenant, _U.user_id == user))
    ).first()
    return None if row is None else _profile(row)


async def get_many(conn: AsyncConnection, tenant: str, users: Sequence[str]) -> dict[str, Profile]:
    """The stored rows of those of ``users`` that have one (one statement per 500 users)."""
    found: dict[str, Profile] = {}
    names = sorted(set(users))
    for start in range(0, len(names), 500):
        rows = await conn.execute(
            select(channel_users).where(
                _U.tenant_id == tenant, _U.user_id.in_(names[start : start + 500])
            )
        )
        found.update((row.user_id, _profile(row)) for row in rows)
    return found


async def with_preferences(conn: AsyncConnection, tenant: str, limit: int) -> list[str] | None:
    """The users of ``tenant`` whose stored preferences are not empty (one statement), or
    ``None`` when there are more than ``limit``. Every other user of the tenant, with a row
    or without, has exactly the tenant's defaults."""
    rows = await conn.execute(
        select(_U.user_id)
        .where(_U.tenant_id == tenant, cast(_U.prefs, String) != "{}")
        .limit(limit + 1)
    )
    users = [str(u) for (u,) in rows]
    return None if len(users) > limit else users


async def any_email(conn: AsyncConnection, tenant: str) -> bool:
    """Whether some user of ``tenant`` has an e-mail address (one indexed probe)."""
    found = await conn.execute(
        select(_U.user_id).where(_U.tenant_id == tenant, _U.email.is_not(None)).limit(1)
    )
    return found.first() is not None


class ProfileCache:
    """Parsed profiles and tenant defaults, reused while their stored row is unchanged.

    The caller reads the rows in its own transaction every time; only the parsing (pydantic
    validation of the preferences) is saved. An entry is used only when the row read now equals
    the row it was parsed from, so a change made anywhere counts at once. Bounded: past
    ``size`` entries the cache starts over.
    """

    def __init__(self, size: int = 50_000) -> None:
        self.size = size
        self._users: dict[tuple[str, str], tuple[tuple[Any, ...], Profile]] = {}
        self._tenants: dict[str, tuple[Any, TenantPreferences]] = {}

    def profile(self, row: Any) -> Profile:
        raw = (row.email, row.time_zone, row.roles, row.prefs)
        key = (row.tenant_id, row.user_id)
        hit = self._users.get(key)
        if hit is not None and hit[0] == raw:
            return hit[1]
        if len(self._users) >= self.size:
            self._users.clear()
        found = _profile(row)
        self._users[key] = (raw, found)
        return found

    async def tenant_prefs(self, conn: AsyncConnection, tenant: str) -> TenantPreferences:
        value = (
            await conn.execute(
                select(channel_tenants.c.prefs).where(channel_tenants.c.tenant_id == tenant)
            )
        ).scalar_one_or_none()
        hit = self._tenants.get(tenant)
        if hit is not None and hit[0] == value:
            return hit[1]
        if len(self._tenants) >= self.size:
            self._tenants.clear()
        prefs = TenantPreferences.model_validate(value or {})
        self._tenants[tenant] = (value, prefs)
        return prefs


async def reachable(
    conn: AsyncConnection, tenant: str, devices: bool, emailing: bool, cache: ProfileCache
) -> list[Profile]:
    """The users the channel planner may reach: those with a push subscription (``devices``:
    the tenant has some) and, when ``emailing``, those with an e-mail address."""
    reach: list[ColumnElement[bool]] = []
    if devices:
        subs = push_subscriptions.c
        reach.append(_U.user_id.in_(select(subs.user_id).where(subs.tenant_id == tenant)))
    if emailing:
        reach.append(_U.email.is_not(None))
    if not reach:
        return []
    rows = await conn.execute(
        select(channel_users).where(_U.tenant_id == tenant, or_(*reach)).order_by(_U.user_id)
    )
    return [cache.profile(r) for r in rows]


async def with_email(conn: AsyncConnection) -> list[Profile]:
    """Every user of every tenant with an e-mail address (the digest scheduler's list)."""
    rows = await conn.execute(
        select(channel_users).where(_U.email.is_not(None)).order_by(_U.tenant_id, _U.user_id)
    )
    return [_profile(r) for r in rows]


async def save(
    conn: AsyncConnection,
    tenant: str,
    user: str,
    *,
    now: datetime,
    email: str | Keep | None = KEEP,
    time_zone: str | Keep | None = KEEP,
    roles: Sequence[str] | Keep = KEEP,
    prefs: UserPreferences | Keep = KEEP,
) -> Profile:
    """Create or change a user's row; fields left at ``KEEP`` stay as they are."""
    values: dict[str, Any] = {}
    if not isinstance(email, Keep):
        values["email"] = email
    if not isinstance(time_zone, Keep):
        values["time_zone"] = time_zone
    if not isinstance(roles, Keep):
        values["roles"] = sorted(set(roles))
    if not isinstance(prefs, Keep):
        values["prefs"] = prefs.model_dump(mode="json", exclude_none=True)
    row = {"email": None, "time_zone": None, "roles": [], "prefs": {}, **values}
    stmt = upsert(conn)(channel_users).values(tenant_id=tenant, user_id=user, updated_at=now, **row)
    try:
        await conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["tenant_id", "user_id"], set_={"updated_at": now, **values}
            )
        )
    except IntegrityError as error:  # the only constraint left: the tenant must exist
        raise NotFound(f"Tenant {tenant!r} does not exist.", code=Code.TENANT_NOT_FOUND) from error
    found = await get(conn, tenant, user)
    assert found is not None
    return found


async def save_seen(
    conn: AsyncConnection,
    tenant: str,
    seen: Sequence[tuple[str, str | None, Sequence[str]]],
    *,
    now: datetime,
) -> None:
    """:func:`save` of many users' ``(user, email, roles)`` as their stream tokens carry them
    (an e-mail of ``None`` is kept as it is): one statement, executed for 500 users at a time."""
    for with_email in (True, False):
        rows: list[dict[str, Any]] = [
            {
                "tenant_id": tenant,
                "user_id": user,
                "updated_at": now,
                "email": email,
                "time_zone": None,
                "roles": sorted(set(roles)),
                "prefs": {},
            }
            for user, email, roles in seen
            if (email is not None) is with_email
        ]
        if not rows:
            continue
        # One statement executed for many rows (compiled once, then cached), not a multi-row
        # VALUES compiled anew for each batch: a connect storm's heartbeat costs a few ms.
        stmt = upsert(conn)(channel_users)
        changed = {"updated_at": stmt.excluded.updated_at, "roles": stmt.excluded.roles}
        if with_email:
            changed["email"] = stmt.excluded.email
        stmt = stmt.on_conflict_do_update(index_elements=["tenant_id", "user_id"], set_=changed)
        for start in range(0, len(rows), 500):
            try:
                await conn.execute(stmt, rows[start : start + 500])
            except IntegrityError as error:  # the tenant must exist
                raise NotFound(
                    f"Tenant {tenant!r} does not exist.", code=Code.TENANT_NOT_FOUND
                ) from error


async def tenant_prefs(conn: AsyncConnection, tenant: str) -> TenantPreferences:
    value = (
        await conn.execute(
            select(channel_tenants.c.prefs).where(channel_tenants.c.tenant_id == tenant)
        )
    ).scalar_one_or_none()
    return TenantPreferences.model_validate(value or {})


async def set_tenant_prefs(
    conn: AsyncConnection, tenant: str, prefs: TenantPreferences, *, now: datetime
) -> TenantPreferences:
    doc = prefs.model_dump(mode="json", exclude_none=True)
    stmt = upsert(conn)(channel_tenants).values(tenant_id=tenant, prefs=doc, updated_at=now)
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["tenant_id"], set_={"prefs": doc, "updated_at": now}
        )
    )
    return prefs
