"""The public booking widget, ``/book/<tenant>``: no sign-in, a double-submit CSRF token, a rate
limit per client and tenant, and one ``booking_created`` notification per accepted request.

Only the demo's own tenants have a widget (:func:`tidings.demo.queries.tenant_name`): for any
other tenant every route here answers 404 and changes nothing, so an anonymous visitor cannot
put a notification into a real customer's feed."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from starlette.responses import Response

from tidings.api.deps import ServiceDep
from tidings.demo import actions, queries
from tidings.demo.business import zone_of
from tidings.demo.domain import FormErrors, parse_booking
from tidings.demo.forms import read_form
from tidings.demo.pages import today
from tidings.demo.reminding import clock_of
from tidings.demo.sessions import check_form_token, form_token, set_form_cookie
from tidings.demo.templating import DemoRoute, redirect, render
from tidings.errors import TooManyRequests
from tidings.ratelimit import RateLimiter
from tidings.service import Tidings

router = APIRouter(prefix="/book", route_class=DemoRoute, include_in_schema=False)

TenantId = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]
RATE = "20/minute"


async def _page(
    request: Request,
    service: Tidings,
    tenant: str,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    async with service.store.read() as conn:
        name = await queries.tenant_name(conn, tenant)
        request.state.zone = await zone_of(conn, tenant)
    request.state.tenant_name = name
    token = form_token(request)
    response = render(
        request,
        "widget.html",
        {
            "tenant": tenant,
            "business": name,
            "values": values or {"hours": "4"},
            "errors": errors or {},
            "form_token": token,
            "today": today(request),
        },
        status=status,
    )
    set_form_cookie(request, response, token)
    return response


@router.get("/{tenant}")
async def widget(request: Request, tenant: TenantId, service: ServiceDep) -> Response:
    return await _page(request, service, tenant)


@router.post("/{tenant}")
async def request_booking(request: Request, tenant: TenantId, service: ServiceDep) -> Response:
    async with service.store.read() as conn:
        await queries.tenant_name(conn, tenant)  # 404 for anything but a demo business
        request.state.zone = await zone_of(conn, tenant)
    form = await read_form(request)
    check_form_token(request, form.get("form_token"))
    limiter: RateLimiter = request.app.state.demo_limiter
    client = request.client.host if request.client else "unknown"
    try:
        await limiter.hit("widget", f"{tenant}|{client}")
    except TooManyRequests as error:
        raise TooManyRequests(
            "That is a lot of booking requests at once; please wait a minute and try again.",
            retry_after=error.retry_after,
        ) from error
    if form.get("website"):  # the honeypot field people never see
        return redirect(f"/book/{tenant}/thanks", "Thanks! We will be in touch.")
    try:
        data = parse_booking(form, today=today(request))
        created = await actions.create_booking(
            service,
            tenant,
            data,
            actor=data.customer.name,
            source="widget",
            clock=clock_of(request.app),
        )
    except FormErrors as error:
        return await _page(request, service, tenant, values=form, errors=error.fields, status=422)
    return redirect(
        f"/book/{tenant}/thanks",
        f"Thanks, {data.customer.name}! Request #{created.booking_id} is in; "
        "we will confirm it shortly.",
    )


@router.get("/{tenant}/thanks")
async def thanks(request: Request, tenant: TenantId, service: ServiceDep) -> Response:
    async with service.store.read() as conn:
        name = await queries.tenant_name(conn, tenant)
    return render(request, "widget_thanks.html", {"tenant": tenant, "business": name})
