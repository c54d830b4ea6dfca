"""Read queries of the demo. Each takes the tenant and filters on it: ids from a URL or a form
never reach another tenant's rows (a foreign id reads as "not found")."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal

from sqlalchemy import Select, and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.demo.domain import ITEMS, money
from tidings.demo.tables import booking_events, bookings, customers, demo_users, payments
from tidings.errors import Code, NotFound
from tidings.store.tables import tenants

_B, _C, _P = bookings.c, customers.c, payments.c
When = Literal["upcoming", "today", "past", "all"]


@dataclass(frozen=True, slots=True)
class BookingRow:
    id: int
    customer_id: int
    customer: str
    email: str
    phone: str
    item: str
    event_date: date
    start_time: time
    hours: int
    address: str
    notes: str
    status: str
    price_cents: int
    source: str
    created_at: datetime
    paid_cents: int = 0

    @property
    def item_name(self) -> str:
        found = ITEMS.get(self.item)
        return found.name if found else self.item

    @property
    def ends(self) -> time:
        end = datetime.combine(self.event_date, self.start_time) + timedelta(hours=self.hours)
        return end.time()

    @property
    def price(self) -> str:
        return money(self.price_cents)

    @property
    def balance_cents(self) -> int:
        return max(0, self.price_cents - self.paid_cents)


def _paid() -> Any:
    return (
        select(func.coalesce(func.sum(_P.amount_cents), 0))
        .where(_P.booking_id == _B.id, _P.status == "received")
        .correlate(bookings)
        .scalar_subquery()
    )


def _booking_select() -> Select[Any]:
    return select(
        bookings,
        _C.name.label("customer"),
        _C.email.label("email"),
        _C.phone.label("phone"),
        _paid().label("paid_cents"),
    ).join(customers, _C.id == _B.customer_id)


def _booking(row: Any) -> BookingRow:
    return BookingRow(
        id=row.id,
        customer_id=row.customer_id,
        customer=row.customer,
        email=row.email,
        phone=row.phone,
        item=row.item,
        event_date=row.event_date,
        start_time=row.start_time,
        hours=row.hours,
        address=row.address,
        notes=row.notes,
        status=row.status,
        price_cents=row.price_cents,
        source=row.source,
        created_at=row.created_at,
        paid_cents=int(row.paid_cents or 0),
    )


def _seeded(tenant: str) -> Any:
    """True for a tenant the demo seeded: it has demo users. :mod:`tidings.demo.seed` creates a
    tenant and its demo users in one transaction, and never adds users to a tenant it did not
    create, so a tenant with demo users is the demo's and no other tenant is."""
    return select(demo_users.c.id).where(demo_users.c.tenant_id == tenant).exists()


async def tenant_name(conn: AsyncConnection, tenant: str) -> str:
    """The name of a tenant the demo seeded; ``NotFound`` for any other, so that no demo route
    (the public booking widget above all) ever reaches a real customer's tenant."""
    name = (
        await conn.execute(select(tenants.c.name).where(tenants.c.id == tenant, _seeded(tenant)))
    ).scalar_one_or_none()
    if name is None:
        raise NotFound(
            f"There is no rental business called {tenant!r}.", code=Code.TENANT_NOT_FOUND
        )
    return str(name)


async def demo_tenants(conn: AsyncConnection) -> list[str]:
    """The ids of the tenants the demo seeded."""
    rows = await conn.execute(select(demo_users.c.tenant_id).distinct())
    return sorted(str(r[0]) for r in rows)


async def sign_in_choices(conn: AsyncConnection) -> list[tuple[str, str, list[Any]]]:
    """(tenant id, tenant name, users) for the "pick a demo user" screen."""
    rows = (
        await conn.execute(
            select(demo_users, tenants.c.name.label("tenant_name"))
            .join(tenants, tenants.c.id == demo_users.c.tenant_id)
            .order_by(tenants.c.created_at, tenants.c.id, demo_users.c.id)
        )
    ).all()
    grouped: dict[str, tuple[str, str, list[Any]]] = {}
    for row in rows:
        grouped.setdefault(row.tenant_id, (row.tenant_id, row.tenant_name, []))[2].append(row)
    return list(grouped.values())


async def user_names(conn: AsyncConnection, tenant: str) -> dict[str, str]:
    """The tenant's demo users' names by tidings user id (``"ann"`` → ``"Ann Alvarez"``)."""
    rows = await conn.execute(
        select(demo_users.c.user_id, demo_users.c.name).where(demo_users.c.tenant_id == tenant)
    )
    return {str(r.user_id): str(r.name) for r in rows}


async def user_by_email(conn: AsyncConnection, email: str) -> Any:
    return (
        await conn.execute(select(demo_users).where(demo_users.c.email == email.strip().lower()))
    ).first()


async def user_by_id(conn: AsyncConnection, user_id: int) -> Any:
    return (await conn.execute(select(demo_users).where(demo_users.c.id == user_id))).first()


async def list_bookings(
    conn: AsyncConnection,
    tenant: str,
    *,
    today: date,
    status: str | None = None,
    when: When = "upcoming",
    search: str = "",
    limit: int = 200,
) -> list[BookingRow]:
    query = _booking_select().where(_B.tenant_id == tenant)
    if status:
        query = query.where(_B.status == status)
    if when == "upcoming":
        query = query.where(_B.event_date >= today).order_by(_B.event_date, _B.start_time)
    elif when == "today":
        query = query.where(_B.event_date == today).order_by(_B.start_time)
    elif when == "past":
        query = query.where(_B.event_date < today).order_by(
            _B.event_date.desc(), _B.start_time.desc()
        )
    else:
        query = query.order_by(_B.event_date.desc(), _B.start_time)
    if search:
        like = f"%{search.lower()}%"
        query = query.where(
            or_(
                func.lower(_C.name).like(like),
                func.lower(_C.email).like(like),
                func.lower(_B.address).like(like),
            )
        )
    rows = (await conn.execute(query.limit(limit))).all()
    return [_booking(r) for r in rows]


async def get_booking(conn: AsyncConnection, tenant: str, booking_id: int) -> BookingRow:
    row = (
        await conn.execute(_booking_select().where(_B.tenant_id == tenant, _B.id == booking_id))
    ).first()
    if row is None:
        raise NotFound(f"There is no booking #{booking_id}.", code=Code.BOOKING_NOT_FOUND)
    return _booking(row)


async def booking_history(conn: AsyncConnection, tenant: str, booking_id: int) -> list[Any]:
    return list(
        (
            await conn.execute(
                select(booking_events)
                .where(
                    booking_events.c.tenant_id == tenant,
                    booking_events.c.booking_id == booking_id,
                )
                .order_by(booking_events.c.id)
            )
        ).all()
    )


async def booking_payments(conn: AsyncConnection, tenant: str, booking_id: int) -> list[Any]:
    return list(
        (
            await conn.execute(
                select(payments)
                .where(_P.tenant_id == tenant, _P.booking_id == booking_id)
                .order_by(_P.id.desc())
            )
        ).all()
    )


async def list_customers(conn: AsyncConnection, tenant: str, search: str = "") -> list[Any]:
    count = (
        select(func.count()).where(_B.customer_id == _C.id).correlate(customers).scalar_subquery()
    )
    query = select(customers, count.label("bookings")).where(_C.tenant_id == tenant)
    if search:
        like = f"%{search.lower()}%"
        query = query.where(or_(func.lower(_C.name).like(like), func.lower(_C.email).like(like)))
    return list((await conn.execute(query.order_by(_C.name).limit(500))).all())


async def list_payments(conn: AsyncConnection, tenant: str, limit: int = 100) -> list[Any]:
    query = (
        select(
            payments,
            _B.item.label("item"),
            _B.event_date.label("event_date"),
            _C.name.label("customer"),
        )
        .join(bookings, _B.id == _P.booking_id)
        .join(customers, _C.id == _B.customer_id)
        .where(_P.tenant_id == tenant)
        .order_by(_P.id.desc())
        .limit(limit)
    )
    return list((await conn.execute(query)).all())


async def payable_bookings(conn: AsyncConnection, tenant: str) -> list[BookingRow]:
    """Bookings a payment may be recorded against (not cancelled), newest event first."""
    rows = (
        await conn.execute(
            _booking_select()
            .where(_B.tenant_id == tenant, _B.status != "cancelled")
            .order_by(_B.event_date.desc())
            .limit(200)
        )
    ).all()
    return [_booking(r) for r in rows]


@dataclass(frozen=True, slots=True)
class Dashboard:
    today: list[BookingRow]
    upcoming: list[BookingRow]
    requested: int
    this_week: int
    revenue_cents: int
    customers: int
    failed_payments: int


async def dashboard(conn: AsyncConnection, tenant: str, *, today: date) -> Dashboard:
    todays = await list_bookings(conn, tenant, today=today, when="today")
    upcoming = [
        b
        for b in await list_bookings(conn, tenant, today=today, when="upcoming", limit=60)
        if b.event_date > today and b.status in ("requested", "confirmed")
    ][:8]
    week_end = today + timedelta(days=7)
    counts = (
        await conn.execute(
            select(
                func.coalesce(func.sum(case((_B.status == "requested", 1), else_=0)), 0),
                func.coalesce(
                    func.sum(
                        case(
                            (
                                and_(
                                    _B.event_date >= today,
                                    _B.event_date < week_end,
                                    _B.status.in_(("requested", "confirmed")),
                                ),
                                1,
                            ),
                            else_=0,
                        )
                    ),
                    0,
                ),
            ).where(_B.tenant_id == tenant)
        )
    ).one()
    since = datetime.combine(today - timedelta(days=30), time(), tzinfo=UTC)
    money_row = (
        await conn.execute(
            select(
                func.coalesce(
                    func.sum(case((_P.status == "received", _P.amount_cents), else_=0)), 0
                ),
                func.coalesce(func.sum(case((_P.status == "failed", 1), else_=0)), 0),
            ).where(_P.tenant_id == tenant, _P.created_at >= since)
        )
    ).one()
    n_customers = (
        await conn.execute(select(func.count()).where(_C.tenant_id == tenant))
    ).scalar_one()
    return Dashboard(
        today=todays,
        upcoming=upcoming,
        requested=int(counts[0]),
        this_week=int(counts[1]),
        revenue_cents=int(money_row[0]),
        customers=int(n_customers),
        failed_payments=int(money_row[1]),
    )
