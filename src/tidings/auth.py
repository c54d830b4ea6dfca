"""Stream tokens (JWT, HS256) and the claims tidings trusts.

Claims: ``tenant``, ``sub`` (user), ``roles``, ``email``, ``exp``, ``iat``, ``iss``/``aud`` =
``tidings``. A host may mint tokens through ``POST /v1/tokens`` or sign them with the shared
secret. Expiry has no leeway: a stream ends the moment its token does.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import jwt

from tidings.domain.principals import Principal
from tidings.errors import Unauthorized, ValidationFailed

ISSUER = "tidings"
_USER = re.compile(r"^[A-Za-z0-9_.@:+\-]{1,128}\Z")  # \Z: "$" would admit a final newline
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}$")


def mint(
    secret: str,
    *,
    tenant: str,
    user: str,
    roles: list[str] | tuple[str, ...] = (),
    ttl: int,
    email: str | None = None,
    now: datetime | None = None,
) -> tuple[str, datetime]:
    if not _USER.match(user):
        raise ValidationFailed("user is 1-128 of A-Z a-z 0-9 _ . @ : + -")
    for role in roles:
        if not _USER.match(role):
            raise ValidationFailed(f"role {role!r} is not a valid name")
    if email is not None and not _EMAIL.match(email):
        raise ValidationFailed("email is not a valid address")
    issued = now or datetime.now(UTC)
    expires = issued + timedelta(seconds=ttl)
    claims: dict[str, object] = {
        "iss": ISSUER,
        "aud": ISSUER,
        "tenant": tenant,
        "sub": user,
        "roles": list(dict.fromkeys(roles)),
        "iat": int(issued.timestamp()),
        "exp": int(expires.timestamp()),
    }
    if email:
        claims["email"] = email
    return jwt.encode(claims, secret, algorithm="HS256"), expires.replace(microsecond=0)


def verify(secret: str, token: str, *, max_ttl: int) -> Principal:
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            audience=ISSUER,
            options={"require": ["exp", "sub", "tenant"], "verify_aud": False},
        )
    except jwt.ExpiredSignatureError as error:
        raise Unauthorized("The stream token has expired.", code="token_expired") from error
    except jwt.PyJWTError as error:
        raise Unauthorized("The stream token is not valid.", code="invalid_credentials") from error
    for claim in ("iss", "aud"):
        if claim in claims and claims[claim] != ISSUER and claims[claim] != [ISSUER]:
            raise Unauthorized(f"The token's {claim} is not 'tidings'.", code="invalid_credentials")
    tenant, user, roles = claims.get("tenant"), claims.get("sub"), claims.get("roles", [])
    if not isinstance(tenant, str) or not isinstance(user, str) or not _USER.match(user):
        raise Unauthorized("The token's tenant or sub is malformed.", code="invalid_credentials")
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise Unauthorized(
            "The token's roles must be a list of strings.", code="invalid_credentials"
        )
    expires = datetime.fromtimestamp(int(claims["exp"]), UTC)
    issued = claims.get("iat")
    if isinstance(issued, int | float) and int(claims["exp"]) - int(issued) > max_ttl + 60:
        raise Unauthorized(
            "The token lives longer than the server allows.", code="invalid_credentials"
        )
    email = claims.get("email")
    return Principal(
        tenant=tenant,
        user=user,
        roles=frozenset(roles),
        expires_at=expires,
        email=email if isinstance(email, str) else None,
    )


def looks_like_jwt(value: str) -> bool:
    return value.count(".") == 2 and not value.startswith("tdg_")
