"""The parts of a live page, re-rendered for ``static/demo.js`` when a notification touches them.

A page that shows something a notification can change marks it with ``data-live="<part>"`` and
names where its parts come from (``data-live-page``). When the bell reports a notification
about a booking (``tidings-notification``), or the stream comes back after a drop, the page
fetches its parts here and swaps them in — no banner, no reload, nothing typed is lost:

- ``GET /demo/live/dashboard`` → the key figures, today's schedule, the upcoming bookings;
- ``GET /demo/live/bookings?when=&status=&q=`` → the bookings list with those filters (the
  page's; an unknown ``when`` or ``status`` is ``422`` here, where the page ignores it);
- ``GET /demo/live/customers?q=`` and ``GET /demo/live/payments`` → those lists;
- ``GET /demo/live/bookings/<id>`` → a booking's heading and moves, details, payments,
  history, and its two forms (which the page swaps only when their ``data-live-key`` — the
  booking's status — changed, so a half-typed payment survives a colleague's change).

Both answer ``{"parts": {"<part>": "<html>", …}}`` from the same templates (``live/*.html``)
and data (:mod:`tidings.demo.views`) as the full page. They are JSON routes: without a session
``401``, another tenant's or an unknown booking ``404``, a malformed id or filter ``422``, each as
``application/problem+json``; they only read.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from starlette.responses import JSONResponse

from tidings.api.deps import ServiceDep
from tidings.demo import queries, views
from tidings.demo.domain import STATUSES
from tidings.demo.pages import UserDep, today
from tidings.demo.sessions import DemoUser
from tidings.demo.templating import UTC_ZONE
from tidings.errors import ValidationFailed

router = APIRouter(prefix="/demo/live", include_in_schema=False)  # errors: problem+json

BookingId = Annotated[int, Path(ge=1, le=2**31 - 1)]


def _parts(
    request: Request, user: DemoUser, names: Sequence[str], view: dict[str, Any]
) -> JSONResponse:
    env = request.app.state.demo_templates.env
    context = {
        "user": user,
        "tenant_name": getattr(request.state, "tenant_name", ""),
        "zone": getattr(request.state, "zone", UTC_ZONE),
        **view,
    }
    parts = {name: env.get_template(f"live/{name}.html").render(context) for name in names}
    return JSONResponse(
        {"parts": parts},
        headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
    )


@router.get("/dashboard")
async def dashboard(request: Request, user: UserDep, service: ServiceDep) -> JSONResponse:
    async with service.store.read() as conn:
        view = await views.dashboard(conn, user.tenant, today=today(request))
    return _parts(request, user, views.DASHBOARD_PARTS, view)


@router.get("/bookings")
async def bookings(
    request: Request,
    user: UserDep,
    service: ServiceDep,
    status: Annotated[str, Query(max_length=16)] = "",
    when: Annotated[queries.When, Query()] = "upcoming",
    q: Annotated[str, Query(max_length=100)] = "",
) -> JSONResponse:
    if status and status not in STATUSES:
        raise ValidationFailed(
            f"status: {status!r} is not a booking status; use one of {', '.join(STATUSES)}."
        )
    async with service.store.read() as conn:
        view = await views.bookings(
            conn, user.tenant, today=today(request), status=status, when=when, q=q
        )
    return _parts(request, user, views.BOOKINGS_PARTS, view)


@router.get("/customers")
async def customers(
    request: Request,
    user: UserDep,
    service: ServiceDep,
    q: Annotated[str, Query(max_length=100)] = "",
) -> JSONResponse:
    async with service.store.read() as conn:
        view = await views.customers(conn, user.tenant, q=q)
    return _parts(request, user, views.CUSTOMERS_PARTS, view)


@router.get("/payments")
async def payments(request: Request, user: UserDep, service: ServiceDep) -> JSONResponse:
    async with service.store.read() as conn:
        view = await views.payments(conn, user.tenant)
    return _parts(request, user, views.PAYMENTS_PARTS, view)


@router.get("/bookings/{booking_id}")
async def booking(
    request: Request, booking_id: BookingId, user: UserDep, service: ServiceDep
) -> JSONResponse:
    async with service.store.read() as conn:
        view = await views.booking(conn, user.tenant, booking_id, today=today(request))
    return _parts(request, user, views.BOOKING_PARTS, view)
