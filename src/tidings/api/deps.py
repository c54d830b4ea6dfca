"""Typed dependencies: the service, and the principals a request may carry.

The tenant of every request comes from the principal: a stream token's ``tenant`` claim or the
API key's tenant, never from a body or query.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Query, Request

from tidings import auth
from tidings.domain.principals import KeyPrincipal, Principal
from tidings.errors import Code, Forbidden, Unauthorized
from tidings.service import Tidings

COOKIE = "tidings_token"


async def get_service(request: Request) -> Tidings:
    """The app's service. ``async`` on purpose: FastAPI runs a plain ``def`` dependency in a
    worker thread, a thread hand-off per request for a dictionary lookup."""
    service: Tidings = request.app.state.tidings
    return service


ServiceDep = Annotated[Tidings, Depends(get_service)]


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise Unauthorized(
            "Authorization must be 'Bearer <credential>'.", code=Code.INVALID_CREDENTIALS
        )
    return value.strip()


async def user_principal(request: Request, service: ServiceDep) -> Principal:
    """A stream token from the Authorization header or the session cookie."""
    token = _bearer(request) or request.cookies.get(COOKIE)
    if not token:
        raise Unauthorized("A stream token is required.", code=Code.MISSING_CREDENTIALS)
    if not auth.looks_like_jwt(token):
        raise Unauthorized("This endpoint takes a stream token, not an API key.")
    return await service.verify_token(token)


async def stream_principal(
    request: Request,
    service: ServiceDep,
    access_token: Annotated[str | None, Query(max_length=4096)] = None,
) -> Principal:
    """Like :func:`user_principal`, plus ``?access_token=`` (EventSource sends no headers)."""
    if access_token:
        if not auth.looks_like_jwt(access_token):
            raise Unauthorized("access_token must be a stream token.")
        return await service.verify_token(access_token)
    return await user_principal(request, service)


UserDep = Annotated[Principal, Depends(user_principal)]
StreamUserDep = Annotated[Principal, Depends(stream_principal)]


async def key_principal(request: Request) -> KeyPrincipal:
    """An API key from ``Authorization: Bearer``, checked through the instance's key cache
    (:mod:`tidings.apikeys`): a key revoked through this instance fails at once, one revoked
    elsewhere within ``TIDINGS_API_KEY_CACHE`` seconds. The service comes from the app, not
    from a sub-dependency: FastAPI solves each dependency level per request."""
    token = _bearer(request)
    if not token:
        raise Unauthorized(
            "An API key is required (Authorization: Bearer tdg_…).", code=Code.MISSING_CREDENTIALS
        )
    service: Tidings = request.app.state.tidings
    return await service.api_keys.authenticate(token)


KeyDep = Annotated[KeyPrincipal, Depends(key_principal)]


def require_scope(key: KeyPrincipal, scope: str) -> None:
    if scope not in key.scopes:
        raise Forbidden(f"This API key lacks the {scope!r} scope.", code=Code.INSUFFICIENT_SCOPE)


def operator(request: Request, service: ServiceDep) -> None:
    """The operator key (``TIDINGS_OPERATOR_KEY``, else the one generated in the store)."""
    token = _bearer(request)
    if not token:
        raise Unauthorized("The operator key is required.", code=Code.MISSING_CREDENTIALS)
    expected = service.secrets.operator.value
    if not hmac.compare_digest(token.encode(), expected.encode()):
        raise Unauthorized("The operator key is not valid.")


OperatorDep = Annotated[None, Depends(operator)]
