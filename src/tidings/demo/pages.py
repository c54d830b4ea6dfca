"""The signed-in pages of the demo: dashboard, bookings, customers, payments, notifications.

Handlers are thin: read the form, check the CSRF token, call one action or query with the tenant
of the signed-in user (never a tenant from the URL or the form), then redirect or render.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, get_args

from fastapi import APIRouter, Depends, Path, Query, Request
from starlette.responses import Response

from tidings.api.deps import ServiceDep
from tidings.demo import actions, queries, views
from tidings.demo.business import today_in, zone_of
from tidings.demo.domain import (
    STATUSES,
    FormErrors,
    ImpossibleMove,
    parse_booking,
    parse_customer,
    parse_payment,
    parse_reschedule,
    whole_number,
)
from tidings.demo.forms import read_form
from tidings.demo.reminding import clock_of
from tidings.demo.sessions import DemoUser, check_csrf, current_user
from tidings.demo.templating import UTC_ZONE, DemoRoute, redirect, render
from tidings.errors import Conflict
from tidings.service import Tidings

router = APIRouter(prefix="/demo", route_class=DemoRoute, include_in_schema=False)

BookingId = Annotated[int, Path(ge=1, le=2**31 - 1)]


def today(request: Request) -> date:
    """The business's calendar day, in its time zone (``request.state.zone``, which
    :func:`signed_in` and the widget load; UTC before that)."""
    return today_in(getattr(request.state, "zone", UTC_ZONE))


async def signed_in(request: Request, service: ServiceDep) -> DemoUser:
    user = await current_user(request, service)
    request.state.demo_user = user
    async with service.store.read() as conn:
        request.state.tenant_name = await queries.tenant_name(conn, user.tenant)
        request.state.zone = await zone_of(conn, user.tenant)
    return user


UserDep = Annotated[DemoUser, Depends(signed_in)]


async def form_of(request: Request, user: DemoUser) -> dict[str, str]:
    """The posted form as strings, after the CSRF check."""
    fields = await read_form(request)
    check_csrf(user, fields.get("csrf"))
    return fields


# -- dashboard -----------------------------------------------------------------------------------


@router.get("")
async def dashboard(request: Request, user: UserDep, service: ServiceDep) -> Response:
    async with service.store.read() as conn:
        view = await views.dashboard(conn, user.tenant, today=today(request))
    return render(request, "dashboard.html", {"nav": "dashboard", **view}, user=user)


# -- bookings ------------------------------------------------------------------------------------


@router.get("/bookings")
async def bookings(
    request: Request,
    user: UserDep,
    service: ServiceDep,
    status: Annotated[str, Query(max_length=16)] = "",
    when: Annotated[str, Query(max_length=16)] = "upcoming",
    q: Annotated[str, Query(max_length=100)] = "",
) -> Response:
    status = status if status in STATUSES else ""
    when_: queries.When = "upcoming"
    for option in get_args(queries.When):
        if when == option:
            when_ = option
    async with service.store.read() as conn:
        view = await views.bookings(
            conn, user.tenant, today=today(request), status=status, when=when_, q=q
        )
    return render(request, "bookings.html", {"nav": "bookings", **view}, user=user)


@router.get("/bookings/new")
async def new_booking(request: Request, user: UserDep) -> Response:
    return _booking_form(request, user, {"date": today(request).isoformat(), "hours": "4"}, {})


def _booking_form(
    request: Request,
    user: DemoUser,
    values: dict[str, str],
    errors: dict[str, str],
    status: int = 200,
) -> Response:
    return render(
        request,
        "booking_new.html",
        {"nav": "bookings", "values": values, "errors": errors, "today": today(request)},
        status=status,
        user=user,
    )


@router.post("/bookings")
async def create_booking(request: Request, user: UserDep, service: ServiceDep) -> Response:
    form = await form_of(request, user)
    try:
        data = parse_booking(form, today=today(request))
        created = await actions.create_booking(
            service,
            user.tenant,
            data,
            actor=user.name,
            actor_id=user.user_id,
            source="staff",
            clock=clock_of(request.app),
        )
    except FormErrors as error:
        return _booking_form(request, user, form, error.fields, status=422)
    return redirect(
        f"/demo/bookings/{created.booking_id}",
        f"Booking #{created.booking_id} for {data.customer.name} is in as requested.",
    )


async def _booking_page(
    request: Request,
    user: DemoUser,
    service: Tidings,
    booking_id: int,
    *,
    error: str | None = None,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    confirm_cancel: bool = False,
    status: int = 200,
) -> Response:
    async with service.store.read() as conn:
        view = await views.booking(conn, user.tenant, booking_id, today=today(request))
    view.update(nav="bookings", error=error, confirm_cancel=confirm_cancel)
    if errors:
        view["errors"] = errors
    if values:
        view["values"] = values
    return render(request, "booking.html", view, status=status, user=user)


@router.get("/bookings/{booking_id}")
async def booking(
    request: Request, booking_id: BookingId, user: UserDep, service: ServiceDep
) -> Response:
    return await _booking_page(request, user, service, booking_id)


@router.post("/bookings/{booking_id}/move")
async def move_booking(
    request: Request, booking_id: BookingId, user: UserDep, service: ServiceDep
) -> Response:
    form = await form_of(request, user)
    if form.get("move") == "cancel" and form.get("confirm") != "yes":
        # Cancelling tells the customer's day goodbye: it takes a second, explicit "yes".
        return await _booking_page(
            request,
            user,
            service,
            booking_id,
            error=f"Cancel booking #{booking_id}? Press \u201cYes, cancel it\u201d to confirm.",
            confirm_cancel=True,
            status=422,
        )
    try:
        move = await actions.move_booking(
            service,
            user.tenant,
            booking_id,
            form.get("move", ""),
            actor=user.name,
            actor_id=user.user_id,
            clock=clock_of(request.app),
        )
    except ImpossibleMove as error:
        return await _booking_page(
            request, user, service, booking_id, error=error.detail, status=error.status
        )
    return redirect(f"/demo/bookings/{booking_id}", f"Booking #{booking_id} {move.done}.")


@router.post("/bookings/{booking_id}/reschedule")
async def reschedule_booking(
    request: Request, booking_id: BookingId, user: UserDep, service: ServiceDep
) -> Response:
    form = await form_of(request, user)
    try:
        day, start = parse_reschedule(form, today=today(request))
        await actions.reschedule_booking(
            service,
            user.tenant,
            booking_id,
            day,
            start,
            actor=user.name,
            actor_id=user.user_id,
            clock=clock_of(request.app),
        )
    except (FormErrors, ImpossibleMove) as error:
        fields = error.fields if isinstance(error, FormErrors) else {}
        return await _booking_page(
            request,
            user,
            service,
            booking_id,
            error=error.detail,
            errors=fields,
            values=form,
            status=error.status,
        )
    return redirect(
        f"/demo/bookings/{booking_id}",
        f"Booking #{booking_id} moved to {actions.when_text(day, start)}.",
    )


@router.post("/bookings/{booking_id}/payments")
async def booking_payment(
    request: Request, booking_id: BookingId, user: UserDep, service: ServiceDep
) -> Response:
    form = await form_of(request, user)
    return await _record_payment(request, user, service, booking_id, form, back="booking")


async def _record_payment(
    request: Request,
    user: DemoUser,
    service: Tidings,
    booking_id: int,
    form: dict[str, str],
    *,
    back: str,
) -> Response:
    try:
        data = parse_payment(form)
        await actions.record_payment(
            service, user.tenant, booking_id, data, actor=user.name, actor_id=user.user_id
        )
    except (FormErrors, Conflict) as error:
        fields = error.fields if isinstance(error, FormErrors) else {}
        if back == "booking":
            return await _booking_page(
                request,
                user,
                service,
                booking_id,
                error=error.detail,
                errors=fields,
                values=form,
                status=error.status,
            )
        return await _payments_page(
            request,
            user,
            service,
            error=error.detail,
            errors=fields,
            values=form,
            status=error.status,
        )
    verb = "received" if data.status == "received" else "failed"
    target = f"/demo/bookings/{booking_id}" if back == "booking" else "/demo/payments"
    return redirect(target, f"Payment of ${data.amount_cents / 100:,.2f} recorded as {verb}.")


# -- customers -----------------------------------------------------------------------------------


async def _customers_page(
    request: Request,
    user: DemoUser,
    service: Tidings,
    *,
    q: str = "",
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    async with service.store.read() as conn:
        rows = await queries.list_customers(conn, user.tenant, q)
    return render(
        request,
        "customers.html",
        {
            "nav": "customers",
            "customers": rows,
            "q": q,
            "values": values or {},
            "errors": errors or {},
        },
        status=status,
        user=user,
    )


@router.get("/customers")
async def customers(
    request: Request,
    user: UserDep,
    service: ServiceDep,
    q: Annotated[str, Query(max_length=100)] = "",
) -> Response:
    return await _customers_page(request, user, service, q=q.strip())


@router.post("/customers")
async def create_customer(request: Request, user: UserDep, service: ServiceDep) -> Response:
    form = await form_of(request, user)
    errors: dict[str, str] = {}
    data = parse_customer(form, errors)
    try:
        if errors:
            raise FormErrors(errors)
        await actions.create_customer(
            service, user.tenant, data, actor=user.name, actor_id=user.user_id
        )
    except FormErrors as error:
        return await _customers_page(
            request, user, service, values=form, errors=error.fields, status=422
        )
    return redirect("/demo/customers", f"Customer {data.name} added.")


# -- payments ------------------------------------------------------------------------------------


async def _payments_page(
    request: Request,
    user: DemoUser,
    service: Tidings,
    *,
    error: str | None = None,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    async with service.store.read() as conn:
        rows = await queries.list_payments(conn, user.tenant)
        payable = await queries.payable_bookings(conn, user.tenant)
    context: dict[str, Any] = {
        "nav": "payments",
        "payments": rows,
        "payable": payable,
        "error": error,
        "errors": errors or {},
        "values": values or {},
    }
    return render(request, "payments.html", context, status=status, user=user)


@router.get("/payments")
async def payments(request: Request, user: UserDep, service: ServiceDep) -> Response:
    return await _payments_page(request, user, service)


@router.post("/payments")
async def create_payment(request: Request, user: UserDep, service: ServiceDep) -> Response:
    form = await form_of(request, user)
    booking_id = whole_number(form.get("booking", "").strip().lstrip("#")) or 0
    if not 1 <= booking_id < 2**31:
        return await _payments_page(
            request,
            user,
            service,
            error="Choose the booking the payment belongs to.",
            errors={"booking": "Choose a booking."},
            values=form,
            status=422,
        )
    return await _record_payment(request, user, service, booking_id, form, back="payments")


# -- notifications -------------------------------------------------------------------------------


@router.get("/notifications")
async def notifications(request: Request, user: UserDep) -> Response:
    return render(request, "notifications.html", {"nav": "notifications"}, user=user)
