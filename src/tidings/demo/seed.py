"""Demo data: two rental businesses, their staff, customers, bookings and payments.

Idempotent: a tenant whose demo users exist is left alone, so restarting the demo keeps what
people did in it. A demo tenant and its users are created in one write transaction that first
checks for them; SQLite serializes write transactions, and on PostgreSQL the unique tenant id
makes a second process starting at the same moment fail its insert and step aside, so only one
seeds. Bookings, moves and payments go through :mod:`tidings.demo.actions`, so the seeded
history has its notifications like everything else. Each business gets its real time zone (the
channels' tenant ``time_zone``), and its history is replayed in the time order of
:func:`tidings.demo.history.timeline`: spread over the days before, at business hours, each
notification dated when its change happened.

Which tenants are the demo's: exactly those with demo users. A tenant id that exists already
without them belongs to somebody else (the demo turned on over a real store): it is not
seeded, gets no demo users (whose password is public), and demo routes answer 404 for it.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.channels import profiles
from tidings.channels.preferences import TenantPreferences
from tidings.demo import actions
from tidings.demo.business import today_in
from tidings.demo.domain import ITEMS, BookingIn, CustomerIn, PaymentIn
from tidings.demo.history import SeedBooking, timeline
from tidings.demo.passwords import hash_password
from tidings.demo.tables import demo_users
from tidings.domain.notifications import utcnow
from tidings.domain.principals import Principal
from tidings.errors import Conflict
from tidings.service import Tidings
from tidings.store import tenants as tq
from tidings.store.tables import notifications

log = logging.getLogger(__name__)

PASSWORD = "bounce-demo"


@dataclass(frozen=True, slots=True)
class SeedUser:
    user_id: str
    name: str
    email: str
    role: str


@dataclass(frozen=True, slots=True)
class SeedTenant:
    id: str
    name: str
    zone: str  # the business's IANA time zone: its bookings' dates and times are local to it
    users: tuple[SeedUser, ...]
    customers: tuple[tuple[str, str, str], ...]
    bookings: tuple[SeedBooking, ...]


TENANTS: tuple[SeedTenant, ...] = (
    SeedTenant(
        "jump-joy",
        "Jump Joy Rentals",
        "America/Chicago",  # Austin, Texas
        (
            SeedUser("ann", "Ann Alvarez", "ann@jumpjoy.example", "owner"),
            SeedUser("sam", "Sam Shaw", "sam@jumpjoy.example", "staff"),
            SeedUser("lee", "Lee Park", "lee@jumpjoy.example", "staff"),
        ),
        (
            ("Maria Lopez", "maria.lopez@example.com", "+1 512 555 0142"),
            ("Dan Whitfield", "dan.whitfield@example.com", "+1 512 555 0199"),
            ("Priya Raman", "priya.raman@example.com", "+1 512 555 0107"),
            ("Oakwood Elementary PTA", "pta@oakwood.example.org", "+1 512 555 0160"),
            ("Chris Nguyen", "chris.nguyen@example.com", ""),
        ),
        (
            (
                0,
                "castle-xl",
                0,
                "10:00",
                4,
                "12 Oak Street, Austin",
                ("confirm",),
                ((24900, "received"),),
            ),
            (3, "obstacle", 0, "13:30", 5, "Oakwood Elementary, 400 Elm Ave", ("confirm",), ()),
            (
                1,
                "water-slide",
                1,
                "11:00",
                6,
                "88 Lakeview Drive, Austin",
                ("confirm",),
                ((34900, "failed"),),
            ),
            (2, "jungle-combo", 2, "09:30", 4, "5 Maple Court, Round Rock", (), ()),
            (4, "mini-bouncer", 3, "15:00", 3, "220 Pine Road, Austin", ("confirm",), ()),
            (0, "pirate-ship", 6, "12:00", 4, "12 Oak Street, Austin", (), ()),
            (
                2,
                "castle-xl",
                -3,
                "10:00",
                4,
                "5 Maple Court, Round Rock",
                ("confirm", "complete"),
                ((24900, "received"),),
            ),
            (
                1,
                "mini-bouncer",
                -1,
                "16:00",
                2,
                "88 Lakeview Drive, Austin",
                ("confirm", "no-show"),
                (),
            ),
            (4, "water-slide", 4, "10:00", 5, "220 Pine Road, Austin", ("cancel",), ()),
        ),
    ),
    SeedTenant(
        "bounce-bros",
        "Bounce Bros",
        "America/Denver",  # Denver, Colorado
        (
            SeedUser("bob", "Bob Brennan", "bob@bouncebros.example", "owner"),
            SeedUser("tia", "Tia Tran", "tia@bouncebros.example", "staff"),
        ),
        (
            ("Hannah Fischer", "hannah.fischer@example.com", "+1 303 555 0123"),
            ("Lakeside Church", "events@lakeside.example.org", "+1 303 555 0188"),
            ("Omar Haddad", "omar.haddad@example.com", ""),
        ),
        (
            (
                0,
                "jungle-combo",
                0,
                "11:00",
                4,
                "9 Aspen Way, Denver",
                ("confirm",),
                ((32900, "received"),),
            ),
            (1, "obstacle", 2, "10:00", 6, "Lakeside Church, 1 Shore Rd", ("confirm",), ()),
            (2, "castle-xl", 5, "14:00", 4, "31 Birch Lane, Boulder", (), ()),
            (0, "mini-bouncer", -2, "15:00", 3, "9 Aspen Way, Denver", ("confirm", "complete"), ()),
        ),
    ),
)

UNREAD_AFTER_SEED = 3


async def seed(service: Tidings, *, today: date | None = None) -> list[str]:
    """Seed every demo tenant that has no demo users yet. Returns the ids seeded. ``today``
    (default: each business's own calendar day) is the day the seeded bookings are around."""
    seeded = []
    for tenant in TENANTS:
        day = today or today_in(ZoneInfo(tenant.zone))
        if await _seed_tenant(service, tenant, day):
            seeded.append(tenant.id)
    if seeded:
        log.info("demo seeded tenants=%s", ",".join(seeded))
    return seeded


async def _count_users(conn: AsyncConnection, tenant: str) -> int:
    query = select(func.count()).where(demo_users.c.tenant_id == tenant)
    return int((await conn.execute(query)).scalar_one())


async def _has_users(service: Tidings, tenant: str) -> bool:
    async with service.store.read() as conn:
        return bool(await _count_users(conn, tenant))


async def _seed_tenant(service: Tidings, tenant: SeedTenant, day: date) -> bool:
    if await _has_users(service, tenant.id):
        return False
    hashes = await asyncio.gather(
        *(asyncio.to_thread(hash_password, PASSWORD) for _ in tenant.users)
    )
    try:
        async with service.store.write() as conn:
            if await _count_users(conn, tenant.id):
                return False
            now = utcnow()
            # The tenant and its demo users commit together: a tenant with demo users is one
            # the demo created, which is what keeps demo routes away from everyone else's.
            try:
                await tq.create_tenant(conn, tenant.id, tenant.name, now=now)
            except Conflict:
                if not await _count_users(conn, tenant.id):  # not a racing seeder: a real one
                    log.warning(
                        "demo: tenant %s exists and was not created by the demo; not seeding "
                        "it, and demo routes will not reach it",
                        tenant.id,
                    )
                return False
            await conn.execute(
                insert(demo_users),
                [
                    {
                        "tenant_id": tenant.id,
                        "user_id": u.user_id,
                        "name": u.name,
                        "email": u.email,
                        "role": u.role,
                        "password_hash": h,
                        "created_at": now,
                    }
                    for u, h in zip(tenant.users, hashes, strict=True)
                ],
            )
            await profiles.set_tenant_prefs(
                conn, tenant.id, TenantPreferences(time_zone=tenant.zone), now=now
            )
    except IntegrityError:  # another process seeding at the same moment won (PostgreSQL)
        return False
    owner = tenant.users[0].name
    # The owner did the seeded moves and payments, so they are read for the owner (the actor
    # rule of issue 10): the owner's bell never shows "… by Ann Alvarez" unread.
    owner_id = tenant.users[0].user_id
    ids: dict[int, int] = {}
    steps = timeline(tenant.bookings, today=day, zone=ZoneInfo(tenant.zone), now=utcnow())
    for step in steps:
        ci, item, days, start, hours, address, moves, paid = tenant.bookings[step.booking]
        if step.kind == "create":
            name, email, phone = tenant.customers[ci]
            created = await actions.create_booking(
                service,
                tenant.id,
                BookingIn(
                    customer=CustomerIn(name, email, phone),
                    item=ITEMS[item],
                    event_date=day + timedelta(days=days),
                    start_time=time.fromisoformat(start),
                    hours=hours,
                    address=address,
                    notes="",
                ),
                actor=owner,
                actor_id=None if ci % 2 == 0 else owner_id,
                source="widget" if ci % 2 == 0 else "staff",
                at=step.at,
            )
            ids[step.booking] = created.booking_id
        elif step.kind == "move":
            await actions.move_booking(
                service,
                tenant.id,
                ids[step.booking],
                moves[step.index],
                actor=owner,
                actor_id=owner_id,
                at=step.at,
            )
        else:
            cents, status = paid[step.index]
            note = "card declined" if status == "failed" else ""
            await actions.record_payment(
                service,
                tenant.id,
                ids[step.booking],
                PaymentIn(cents, status, "card", note),
                actor=owner,
                actor_id=owner_id,
                at=step.at,
            )
    await _leave_a_few_unread(service, tenant)
    return True


async def _leave_a_few_unread(service: Tidings, tenant: SeedTenant) -> None:
    """Everyone has read the seeded history except the last few by someone else, like a real
    inbox (what a user did is read for them anyway: the actor rule)."""
    async with service.store.read() as conn:
        rows = (
            await conn.execute(
                select(notifications.c.seq, notifications.c.actor_id)
                .where(notifications.c.tenant_id == tenant.id)
                .order_by(notifications.c.seq.desc())
                .limit(UNREAD_AFTER_SEED * 20)
            )
        ).all()
    expires = datetime.now(UTC) + timedelta(minutes=5)
    for user in tenant.users:
        others = [seq for seq, actor in rows if actor != user.user_id]
        upto = others[UNREAD_AFTER_SEED] if len(others) > UNREAD_AFTER_SEED else 0
        principal = Principal(tenant.id, user.user_id, frozenset({user.role}), expires)
        await service.mark_all_read(principal, upto)
