"""Signing in and out of the demo, and ``GET /demo/token`` for ``<tidings-bell token-url>``."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import JSONResponse, Response

from tidings.api.deps import ServiceDep
from tidings.demo import queries
from tidings.demo.domain import whole_number
from tidings.demo.forms import read_form
from tidings.demo.passwords import dummy_hash, verify_password
from tidings.demo.sessions import (
    check_csrf,
    check_form_token,
    current_user,
    end_session,
    form_token,
    mint_for,
    set_form_cookie,
    set_token_cookie,
    start_session,
    user_from_row,
)
from tidings.demo.templating import DemoRoute, redirect, render
from tidings.demo.throttle import SignInThrottle
from tidings.domain.notifications import format_time
from tidings.service import Tidings

router = APIRouter(prefix="/demo", route_class=DemoRoute, include_in_schema=False)
api = APIRouter(prefix="/demo", include_in_schema=False)  # JSON: errors stay problem+json


def safe_next(target: str) -> str:
    """Only our own demo pages are redirect targets (no open redirect)."""
    if target.startswith("/demo") and not target.startswith("//") and "\\" not in target:
        return target
    return "/demo"


async def _login_page(
    request: Request,
    service: Tidings,
    *,
    next_url: str,
    error: str | None = None,
    email: str = "",
    status: int = 200,
) -> Response:
    async with service.store.read() as conn:
        choices = await queries.sign_in_choices(conn)
    token = form_token(request)
    response = render(
        request,
        "signin.html",
        {
            "choices": choices,
            "form_token": token,
            "next_url": safe_next(next_url),
            "error": error,
            "email": email,
        },
        status=status,
    )
    set_form_cookie(request, response, token)
    return response


@router.get("/login")
async def login_page(
    request: Request, service: ServiceDep, next: Annotated[str, Query(max_length=500)] = "/demo"
) -> Response:
    return await _login_page(request, service, next_url=next)


@router.post("/login")
async def login(request: Request, service: ServiceDep) -> Response:
    form = await read_form(request)
    check_form_token(request, form.get("form_token"))
    next_url = safe_next(form.get("next", "/demo"))
    async with service.store.read() as conn:
        picked = form.get("user", "")
        if picked:
            number = whole_number(picked)
            row = None
            if number is not None and 0 < number < 2**31:
                row = await queries.user_by_id(conn, number)
            if row is None:
                return await _login_page(
                    request,
                    service,
                    next_url=next_url,
                    error="Pick one of the demo users.",
                    status=422,
                )
        else:
            email = form.get("email", "").strip()[:254]
            password = form.get("password", "")[:1024]
            throttle: SignInThrottle = request.app.state.demo_sign_in_throttle
            await throttle.attempt(request.client.host if request.client else "unknown", email)
            row = await queries.user_by_email(conn, email) if email else None
            # One scrypt verification whatever the e-mail: an unknown one is checked against a
            # dummy hash of the same cost, so the time taken does not reveal who exists.
            stored = row.password_hash if row is not None else dummy_hash()
            matches = await asyncio.to_thread(verify_password, password, stored)
            if row is None or not matches:
                return await _login_page(
                    request,
                    service,
                    next_url=next_url,
                    error="That e-mail and password do not match a demo user.",
                    email=email,
                    status=401,
                )
    assert row is not None
    user = user_from_row(row)
    response = redirect(next_url, f"Signed in as {user.name}.")
    start_session(request, response, service, user)
    return response


@router.post("/logout")
async def logout(request: Request, service: ServiceDep) -> Response:
    user = await current_user(request, service)
    form = await read_form(request)
    check_csrf(user, form.get("csrf"))
    response = redirect("/demo/login", "Signed out.")
    end_session(response)
    return response


@api.get("/token")
async def token(request: Request, service: ServiceDep) -> Response:
    """A fresh stream token for the signed-in user (the cookie is renewed too); 401 without a
    session."""
    user = await current_user(request, service)
    jwt_token, expires, ttl = mint_for(service, user)
    response = JSONResponse(
        {"token": jwt_token, "expires_at": format_time(expires), "tenant": user.tenant},
        headers={"Cache-Control": "no-store"},
    )
    set_token_cookie(request, response, jwt_token, ttl)
    return response
