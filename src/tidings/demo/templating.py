"""Jinja2 rendering for the demo, flash messages, and the route class that turns errors into
HTML pages (the ``/v1`` API keeps answering ``application/problem+json``).

Every template is autoescaped: whatever a customer types into the booking widget is shown as
text on the staff pages.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from datetime import date, datetime, time
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote
from zoneinfo import ZoneInfo

import jinja2
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from jinja2.runtime import Context
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from tidings.demo.business import local
from tidings.demo.domain import CATALOGUE, PAYMENT_METHODS, STATUS_LABELS, money
from tidings.demo.prefsform import label as type_label
from tidings.demo.sessions import DemoUser, SignInRequired
from tidings.errors import TidingsError, ValidationFailed

log = logging.getLogger(__name__)

UTC_ZONE = ZoneInfo("UTC")

TEMPLATES = Path(__file__).parent / "templates"
FLASH_COOKIE = "demo_flash"
# Defence in depth behind autoescaping and the bell's text-only rendering: no inline script, no
# javascript: URLs, nothing loaded from elsewhere. (Styles may be inline: the bell's shadow root
# carries its own <style>.)
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'"
)


def _day(value: date | None) -> str:
    if value is None:
        return ""
    return f"{value.strftime('%a')} {value.day} {value.strftime('%b %Y')}"


def _short_day(value: date | None) -> str:
    return "" if value is None else f"{value.strftime('%a')} {value.day} {value.strftime('%b')}"


def _clock(value: time | None) -> str:
    return "" if value is None else value.strftime("%H:%M")


@jinja2.pass_context
def _stamp(ctx: Context, value: datetime | None) -> str:
    """An instant in the business's time zone (``zone`` in the context): ``24 Nov 2026, 09:12
    CST``."""
    if value is None:
        return ""
    at = local(value, ctx.get("zone") or UTC_ZONE)
    return f"{at.day} {at.strftime('%b %Y, %H:%M')} {at.tzname()}"


@jinja2.pass_context
def _moment(ctx: Context, value: datetime | None) -> str:
    """A recent instant, short, in the business's time zone: ``Tue 24 Nov, 09:12``."""
    if value is None:
        return ""
    at = local(value, ctx.get("zone") or UTC_ZONE)
    return f"{at.strftime('%a')} {at.day} {at.strftime('%b, %H:%M')}"


def _iso(value: datetime | None) -> str:
    if value is None:
        return ""
    return value.isoformat().replace("+00:00", "Z") if value.tzinfo else value.isoformat() + "Z"


@jinja2.pass_context
def _since(ctx: Context, value: datetime | None) -> str:
    """The business's calendar day of an instant: ``19 Nov 2026``."""
    if value is None:
        return ""
    return local(value, ctx.get("zone") or UTC_ZONE).strftime("%d %b %Y")


def build_templates() -> Jinja2Templates:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters.update(
        money=money,
        day=_day,
        short_day=_short_day,
        clock=_clock,
        stamp=_stamp,
        moment=_moment,
        since=_since,
        iso=_iso,
        type_label=type_label,
    )
    env.globals.update(
        STATUS_LABELS=STATUS_LABELS, CATALOGUE=CATALOGUE, PAYMENT_METHODS=PAYMENT_METHODS
    )
    return Jinja2Templates(env=env)


def render(
    request: Request,
    name: str,
    context: dict[str, Any] | None = None,
    *,
    status: int = 200,
    user: DemoUser | None = None,
) -> Response:
    """Render ``name`` with the common context (user, flash message, active nav entry)."""
    templates: Jinja2Templates = request.app.state.demo_templates
    flash = unquote(request.cookies.get(FLASH_COOKIE, ""))[:300]
    ctx: dict[str, Any] = {
        "user": user,
        "tenant_name": getattr(request.state, "tenant_name", ""),
        "zone": getattr(request.state, "zone", UTC_ZONE),
        "flash": flash,
        "error": None,
        "nav": "",
    }
    ctx.update(context or {})
    response = templates.TemplateResponse(request, name, ctx, status_code=status)
    framing = "'self'" if name.startswith("widget") else "'none'"
    response.headers.update(
        {
            "Cache-Control": "no-store",
            "Content-Security-Policy": CSP + f"; frame-ancestors {framing}",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin",
        }
    )
    if flash:
        response.delete_cookie(FLASH_COOKIE, path="/")
    return response


def redirect(url: str, flash: str | None = None) -> Response:
    """303 See Other after a successful POST, with an optional one-time message."""
    response = RedirectResponse(url, status_code=303)
    if flash:
        response.set_cookie(
            FLASH_COOKIE, quote(flash[:300]), max_age=60, httponly=True, samesite="lax", path="/"
        )
    return response


def error_page(request: Request, error: TidingsError, user: DemoUser | None = None) -> Response:
    path = request.url.path
    if user is not None:
        back, back_label = "/demo", "Back to the dashboard"
    elif path.startswith("/book/"):
        back, back_label = "/book/" + path.split("/")[2], "Back to the booking form"
    else:
        back, back_label = "/demo/login", "Go to sign-in"
    response = render(
        request,
        "error.html",
        {
            "status": error.status,
            "title": error.title,
            "detail": error.detail,
            "back": back,
            "back_label": back_label,
        },
        status=error.status,
        user=user,
    )
    for key, value in error.headers.items():
        response.headers[key] = value
    return response


class DemoRoute(APIRoute):
    """Demo pages answer errors with HTML: a sign-in redirect, or an error page with the
    status code and message of the tidings error (4xx stays 4xx, never a 500)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInRequired as error:
                if request.method in ("GET", "HEAD"):
                    target = request.url.path + (
                        f"?{request.url.query}" if request.url.query else ""
                    )
                    return RedirectResponse(f"/demo/login?next={quote(target)}", status_code=303)
                return error_page(request, error)
            except TidingsError as error:
                return error_page(request, error, getattr(request.state, "demo_user", None))
            except RequestValidationError as error:
                first = error.errors()[0] if error.errors() else {}
                where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("path", "query"))
                detail = f"{where}: {first.get('msg', 'invalid')}" if where else "Invalid request."
                return error_page(request, ValidationFailed(detail))

        return route
