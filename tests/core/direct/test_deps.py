"""The API routes' guards (api/deps.py), called directly with real Starlette requests: fast tests
written to kill the mutants that survived the HTTP-level suite (docs/testing.md)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace

import pytest
from starlette.requests import Request

from tests.core.direct.support import SECRET
from tidings import auth
from tidings.api import deps
from tidings.errors import Forbidden, TidingsError, Unauthorized
from tidings.service import Tidings

pytestmark = pytest.mark.anyio


def request(svc: Tidings, *headers: tuple[str, str]) -> Request:
    app = SimpleNamespace(state=SimpleNamespace(tidings=svc))
    raw = [(k.lower().encode(), v.encode()) for k, v in headers]
    return Request({"type": "http", "method": "GET", "path": "/", "headers": raw, "app": app})


def token(svc: Tidings, user: str = "alice", ttl: int = 600) -> str:
    minted, _ = auth.mint(SECRET, tenant="t1", user=user, roles=["staff"], ttl=ttl)
    return minted


@contextmanager
def refused(
    code: str, detail: str | None = None, error: type[TidingsError] = Unauthorized
) -> Iterator[None]:
    """The block raises ``error`` with the stable ``code`` and, where given, the ``detail`` that
    tells the client what to send instead (both end up in the problem+json)."""
    with pytest.raises(error) as caught:
        yield
    assert caught.value.code == code
    if detail is not None:
        assert caught.value.detail == detail


async def test_service_comes_from_the_app(service: Tidings) -> None:
    assert await deps.get_service(request(service)) is service


async def test_bearer_parsing(service: Tidings) -> None:
    assert deps._bearer(request(service)) is None
    assert deps._bearer(request(service, ("authorization", ""))) is None
    assert deps._bearer(request(service, ("authorization", "Bearer abc"))) == "abc"
    assert deps._bearer(request(service, ("authorization", "bEaReR  abc "))) == "abc"
    for bad in ("Basic abc", "Bearer", "Bearer    ", "Token abc", "Bearerabc"):
        with refused("invalid_credentials", "Authorization must be 'Bearer <credential>'."):
            deps._bearer(request(service, ("authorization", bad)))


async def test_user_principal_from_header_or_cookie(service: Tidings) -> None:
    t = token(service)
    for req in (
        request(service, ("authorization", f"Bearer {t}")),
        request(service, ("cookie", f"tidings_token={t}")),  # the name pages rely on
    ):
        who = await deps.user_principal(req, service)
        assert (who.tenant, who.user, who.roles) == ("t1", "alice", frozenset({"staff"}))
    with refused("missing_credentials", "A stream token is required."):
        await deps.user_principal(request(service), service)
    with refused("missing_credentials"):
        await deps.user_principal(request(service, ("cookie", "other=x")), service)
    api_key = "This endpoint takes a stream token, not an API key."
    with refused("invalid_credentials", api_key):  # an API key where a stream token belongs
        await deps.user_principal(request(service, ("authorization", "Bearer tdg_a.b.c")), service)
    with refused("invalid_credentials", api_key):
        await deps.user_principal(request(service, ("authorization", "Bearer nodots")), service)
    with refused("invalid_credentials"):  # signed with another secret
        other, _ = auth.mint("x" * 40, tenant="t1", user="alice", ttl=60)
        await deps.user_principal(request(service, ("authorization", f"Bearer {other}")), service)


async def test_tokens_longer_than_the_server_allows_are_refused(service: Tidings) -> None:
    too_long = token(service, ttl=service.settings.token_max_ttl + 120)
    with refused("invalid_credentials"):
        await deps.user_principal(
            request(service, ("authorization", f"Bearer {too_long}")), service
        )
    ok = token(service, ttl=service.settings.token_max_ttl)
    assert await deps.user_principal(request(service, ("authorization", f"Bearer {ok}")), service)


async def test_stream_principal_prefers_the_query_token(service: Tidings) -> None:
    alice, bob = token(service, "alice"), token(service, "bob")
    req = request(service, ("authorization", f"Bearer {bob}"))
    assert (await deps.stream_principal(req, service, access_token=alice)).user == "alice"
    assert (await deps.stream_principal(req, service, access_token=None)).user == "bob"
    assert (await deps.stream_principal(req, service, access_token="")).user == "bob"
    with refused("invalid_credentials", "access_token must be a stream token."):
        await deps.stream_principal(req, service, access_token="tdg_x.y.z")
    with refused("invalid_credentials", "access_token must be a stream token."):
        await deps.stream_principal(req, service, access_token="not-a-jwt")
    with refused("missing_credentials", "A stream token is required."):
        await deps.stream_principal(request(service), service, access_token=None)


async def test_api_keys_are_checked_against_the_store(service: Tidings) -> None:
    key, secret = await service.create_key("t1", "ci", ["publish"])
    found = await deps.key_principal(request(service, ("authorization", f"Bearer {secret}")))
    assert (found.tenant, found.key_id, found.scopes) == ("t1", key.id, frozenset({"publish"}))
    deps.require_scope(found, "publish")
    with refused("insufficient_scope", "This API key lacks the 'admin' scope.", Forbidden):
        deps.require_scope(found, "admin")
    with refused("missing_credentials", "An API key is required (Authorization: Bearer tdg_…)."):
        await deps.key_principal(request(service))
    await service.revoke_key(key.id)
    with refused("key_revoked"):
        await deps.key_principal(request(service, ("authorization", f"Bearer {secret}")))


async def test_operator_key(service: Tidings) -> None:
    deps.operator(request(service, ("authorization", "Bearer test-operator-key")), service)
    with refused("missing_credentials", "The operator key is required."):
        deps.operator(request(service), service)
    for wrong in ("test-operator-ke", "test-operator-keyy", "TEST-OPERATOR-KEY"):
        with refused("invalid_credentials", "The operator key is not valid."):
            deps.operator(request(service, ("authorization", f"Bearer {wrong}")), service)
