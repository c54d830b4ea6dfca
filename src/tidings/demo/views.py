"""What the live pages show: the template context of the dashboard, the bookings, customers
and payments lists and a booking's page, read in one place so that a full page and the parts
:mod:`tidings.demo.live` sends to refresh it are rendered from the same data by the same
templates (``templates/live/*.html``).

Each view reads with the signed-in user's tenant only; a booking of another tenant reads as not
found (:func:`tidings.demo.queries.get_booking`).
"""

from __future__ import annotations

from datetime import date
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.channels import reminders
from tidings.demo import queries
from tidings.demo.domain import FINAL, STATUSES, moves_from

# The parts of each live page, as ``data-live`` names (one template ``live/<name>.html`` each).
DASHBOARD_PARTS: Final = ("figures", "today", "upcoming")
BOOKINGS_PARTS: Final = ("bookings-list",)
CUSTOMERS_PARTS: Final = ("customers-list",)
PAYMENTS_PARTS: Final = ("payments-list",)
BOOKING_PARTS: Final = (
    "booking-head",
    "booking-details",
    "booking-reschedule",
    "booking-payments",
    "booking-payform",
    "booking-history",
)


async def dashboard(conn: AsyncConnection, tenant: str, *, today: date) -> dict[str, Any]:
    return {"dash": await queries.dashboard(conn, tenant, today=today), "today": today}


async def bookings(
    conn: AsyncConnection, tenant: str, *, today: date, status: str, when: queries.When, q: str
) -> dict[str, Any]:
    """The bookings list with its filters (``status`` ``""``: any)."""
    rows = await queries.list_bookings(
        conn, tenant, today=today, status=status or None, when=when, search=q.strip()
    )
    filters = {"status": status, "when": when, "q": q.strip()}
    return {"bookings": rows, "filters": filters, "statuses": STATUSES}


async def customers(conn: AsyncConnection, tenant: str, *, q: str) -> dict[str, Any]:
    return {"customers": await queries.list_customers(conn, tenant, q.strip()), "q": q.strip()}


async def payments(conn: AsyncConnection, tenant: str) -> dict[str, Any]:
    return {"payments": await queries.list_payments(conn, tenant)}


async def booking(
    conn: AsyncConnection, tenant: str, booking_id: int, *, today: date
) -> dict[str, Any]:
    found = await queries.get_booking(conn, tenant, booking_id)
    return {
        "booking": found,
        "history": await queries.booking_history(conn, tenant, booking_id),
        "payments": await queries.booking_payments(conn, tenant, booking_id),
        "reminder": await reminders.get(conn, tenant, reminders.booking_key(booking_id)),
        "today": today,
        "moves": moves_from(found.status),
        "movable": found.status not in FINAL,
        "errors": {},
        "values": {"amount": f"{found.balance_cents / 100:.2f}" if found.balance_cents else ""},
        "confirm_cancel": False,
    }
