"""``auth.verify`` rejects forged or malformed claims, each check on its own.

Tokens here are signed with the right secret, so only the claim under test can make them fail.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any

import jwt
import orjson
import pytest

from tidings import auth
from tidings.errors import Unauthorized

SECRET = "claims-secret-" + "0123456789" * 6
MAX_TTL = 3600


def sign(**overrides: Any) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": "tidings",
        "aud": "tidings",
        "tenant": "jump-joy",
        "sub": "ana",
        "roles": ["staff"],
        "iat": now,
        "exp": now + 600,
    }
    for name, value in overrides.items():
        if value is None:
            claims.pop(name, None)
        else:
            claims[name] = value
    return _hs256(claims)


def _b64(raw: bytes) -> bytes:
    return base64.urlsafe_b64encode(raw).rstrip(b"=")


def _hs256(claims: dict[str, Any]) -> str:
    """Sign by hand: PyJWT refuses to *encode* some claims (a list ``iss``) that a host's JWT
    library may well produce, and ``verify`` must judge those too."""
    head = _b64(b'{"alg":"HS256","typ":"JWT"}') + b"." + _b64(orjson.dumps(claims))
    mac = hmac.new(SECRET.encode(), head, hashlib.sha256).digest()
    return (head + b"." + _b64(mac)).decode()


def rejected(token: str) -> Unauthorized:
    with pytest.raises(Unauthorized) as raised:
        auth.verify(SECRET, token, max_ttl=MAX_TTL)
    assert raised.value.code == "invalid_credentials"
    return raised.value


def test_a_well_formed_token_is_accepted() -> None:
    p = auth.verify(SECRET, sign(), max_ttl=MAX_TTL)
    assert (p.tenant, p.user, p.roles) == ("jump-joy", "ana", frozenset({"staff"}))
    # iss/aud as a one-element list name the same service
    listed = sign(iss=["tidings"], aud=["tidings"])
    assert auth.verify(SECRET, listed, max_ttl=MAX_TTL).user == "ana"


@pytest.mark.parametrize("claim", ["iss", "aud"])
@pytest.mark.parametrize("value", ["other-service", ["other-service"], ["tidings", "x"], ""])
def test_a_foreign_issuer_or_audience_is_rejected(claim: str, value: object) -> None:
    assert claim in str(rejected(sign(**{claim: value})))


@pytest.mark.parametrize(
    "claims",
    [
        {"sub": 42},
        {"sub": ""},
        {"sub": "ana smith"},
        {"sub": "a" * 129},
        {"sub": "ana\n"},
        {"sub": ["ana"]},
        {"tenant": 7},
        {"tenant": ["jump-joy"]},
        {"tenant": {"id": "jump-joy"}},
    ],
    ids=repr,
)
def test_a_malformed_sub_or_tenant_is_rejected(claims: dict[str, Any]) -> None:
    rejected(sign(**claims))


@pytest.mark.parametrize("claim", ["sub", "tenant", "exp"])
def test_a_missing_required_claim_is_rejected(claim: str) -> None:
    rejected(sign(**{claim: None}))


@pytest.mark.parametrize(
    "roles", ["staff", {"staff": True}, 1, ["staff", 2], [["staff"]], [None]], ids=repr
)
def test_roles_that_are_not_a_list_of_strings_are_rejected(roles: object) -> None:
    assert "roles" in str(rejected(sign(roles=roles)))


def test_no_roles_claim_means_no_roles() -> None:
    assert auth.verify(SECRET, sign(roles=None), max_ttl=MAX_TTL).roles == frozenset()


def test_another_secret_or_algorithm_is_rejected() -> None:
    rejected(jwt.encode({"sub": "ana", "tenant": "t", "exp": 2**40}, "x" * 40, algorithm="HS256"))
    rejected(jwt.encode({"sub": "ana", "tenant": "t", "exp": 2**40}, SECRET, algorithm="HS512"))
