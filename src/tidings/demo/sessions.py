"""Demo sign-in sessions, the stream-token cookie, and CSRF tokens.

Two cookies, both ``HttpOnly`` and ``SameSite=Lax``:

- ``demo_session``: who is signed in (a JWT with audience ``tidings-demo``, signed with a key
  derived from ``TIDINGS_SECRET``; a stream endpoint refuses it, and a stream token is refused
  here). It carries the session's CSRF token and lives 12 hours.
- ``tidings_token``: a tidings stream token for the same user, lifetime ``TIDINGS_DEMO_TOKEN_TTL``.
  The stream and the Feed API accept it as is; ``GET /demo/token`` renews it for
  ``<tidings-bell token-url>``.

Every form that changes something carries the per-session CSRF token; public forms (sign-in,
the booking widget) use a double-submit cookie instead.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response

from tidings.api.deps import COOKIE as TOKEN_COOKIE
from tidings.demo.tables import demo_users
from tidings.errors import Code, Forbidden, Unauthorized
from tidings.service import Tidings

SESSION_COOKIE = "demo_session"
FORM_COOKIE = "demo_form"
SESSION_HOURS = 12
_AUDIENCE = "tidings-demo"


class SignInRequired(Unauthorized):
    """No valid demo session: pages redirect to the sign-in page, APIs answer 401."""

    def __init__(self, detail: str = "Sign in to use the demo.") -> None:
        super().__init__(detail, code=Code.SIGN_IN_REQUIRED)


@dataclass(frozen=True, slots=True)
class DemoUser:
    id: int
    tenant: str
    user_id: str
    name: str
    email: str
    role: str
    csrf: str = ""

    @property
    def initials(self) -> str:
        return "".join(part[0] for part in self.name.split()[:2]).upper()


def user_from_row(row: Any, csrf: str = "") -> DemoUser:
    return DemoUser(row.id, row.tenant_id, row.user_id, row.name, row.email, row.role, csrf)


def _key(service: Tidings) -> str:
    secret = service.secret.encode()
    return hmac.new(secret, b"tidings-demo-session", hashlib.sha256).hexdigest()


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def start_session(request: Request, response: Response, service: Tidings, user: DemoUser) -> None:
    """Sign ``user`` in on ``response``: a new session (and CSRF token) and a stream token."""
    now = datetime.now(UTC)
    claims = {
        "iss": _AUDIENCE,
        "aud": _AUDIENCE,
        "sub": str(user.id),
        "tenant": user.tenant,
        "csrf": secrets.token_urlsafe(24),
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(hours=SESSION_HOURS)).timestamp()),
    }
    response.set_cookie(
        SESSION_COOKIE,
        jwt.encode(claims, _key(service), algorithm="HS256"),
        max_age=SESSION_HOURS * 3600,
        httponly=True,
        samesite="lax",
        secure=_secure(request),
        path="/",
    )
    issue_stream_token(request, response, service, user)


def end_session(response: Response) -> None:
    for name in (SESSION_COOKIE, TOKEN_COOKIE):
        response.delete_cookie(name, path="/", httponly=True, samesite="lax")


def mint_for(service: Tidings, user: DemoUser) -> tuple[str, datetime, int]:
    """A stream token for ``user``: (token, expiry, lifetime in seconds)."""
    ttl = min(service.settings.demo_token_ttl, service.settings.token_max_ttl)
    token, expires = service.mint_token(
        user.tenant, user.user_id, [user.role], ttl=ttl, email=user.email
    )
    return token, expires, ttl


def set_token_cookie(request: Request, response: Response, token: str, ttl: int) -> None:
    response.set_cookie(
        TOKEN_COOKIE,
        token,
        max_age=ttl,
        httponly=True,
        samesite="lax",
        secure=_secure(request),
        path="/",
    )


def issue_stream_token(
    request: Request, response: Response, service: Tidings, user: DemoUser
) -> None:
    """Mint a stream token for ``user`` and put it in the ``tidings_token`` cookie."""
    token, _, ttl = mint_for(service, user)
    set_token_cookie(request, response, token, ttl)


async def current_user(request: Request, service: Tidings) -> DemoUser:
    """The signed-in user, read back from the store (a deleted user is signed out at once)."""
    raw = request.cookies.get(SESSION_COOKIE)
    if not raw:
        raise SignInRequired()
    try:
        claims = jwt.decode(
            raw,
            _key(service),
            algorithms=["HS256"],
            audience=_AUDIENCE,
            issuer=_AUDIENCE,
            options={"require": ["exp", "sub", "tenant", "csrf"]},
        )
    except jwt.PyJWTError as error:
        raise SignInRequired("Your session has ended; sign in again.") from error
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub.isdigit():
        raise SignInRequired("Your session has ended; sign in again.")
    async with service.store.read() as conn:
        row = (
            await conn.execute(
                select(demo_users).where(
                    demo_users.c.id == int(sub), demo_users.c.tenant_id == claims["tenant"]
                )
            )
        ).first()
    if row is None:
        raise SignInRequired("This demo user no longer exists; sign in again.")
    return user_from_row(row, str(claims["csrf"]))


def check_csrf(user: DemoUser, submitted: object) -> None:
    if not isinstance(submitted, str) or not hmac.compare_digest(
        submitted.encode(), user.csrf.encode()
    ):
        raise Forbidden(
            "This form is out of date or was sent from another site (CSRF check failed). "
            "Reload the page and try again.",
            code=Code.CSRF_FAILED,
        )


def form_token(request: Request) -> str:
    """The double-submit token of a public form: the cookie's value, or a new one."""
    existing = request.cookies.get(FORM_COOKIE, "")
    return existing if len(existing) >= 20 else secrets.token_urlsafe(24)


def set_form_cookie(request: Request, response: Response, token: str) -> None:
    response.set_cookie(
        FORM_COOKIE, token, httponly=True, samesite="lax", secure=_secure(request), path="/"
    )


def check_form_token(request: Request, submitted: object) -> None:
    cookie = request.cookies.get(FORM_COOKIE, "")
    if (
        not cookie
        or not isinstance(submitted, str)
        or not hmac.compare_digest(submitted.encode(), cookie.encode())
    ):
        raise Forbidden(
            "This form is out of date or was sent from another site (CSRF check failed). "
            "Reload the page and try again.",
            code=Code.CSRF_FAILED,
        )
