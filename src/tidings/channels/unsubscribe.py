"""Signed one-click unsubscribe links for digest e-mails (RFC 8058).

A token names a tenant and a user and is signed (HS256) with a key *derived* from
``TIDINGS_SECRET``, so it can never pass as a stream token (nor a stream token as this). It does
not expire: an unsubscribe link in an old e-mail keeps working. Using it switches the user's
e-mail channel off (``channels.email = false``); the user can switch it on again in the
preferences.
"""

from __future__ import annotations

import hashlib
from urllib.parse import urlencode

import jwt

from tidings.errors import BadRequest, Code

PURPOSE = "email-unsubscribe"


def _key(secret: str) -> bytes:
    return hashlib.sha256(b"tidings-unsubscribe\x00" + secret.encode()).digest()


def make_token(secret: str, tenant: str, user: str) -> str:
    return jwt.encode({"p": PURPOSE, "t": tenant, "u": user}, _key(secret), algorithm="HS256")


def read_token(secret: str, token: str) -> tuple[str, str]:
    """``(tenant, user)`` of a token this server signed, else ``BadRequest(invalid_token)``."""
    try:
        claims = jwt.decode(token, _key(secret), algorithms=["HS256"])
    except jwt.PyJWTError as error:
        raise BadRequest(
            "This unsubscribe link is not valid.", code=Code.INVALID_UNSUBSCRIBE_TOKEN
        ) from error
    tenant, user = claims.get("t"), claims.get("u")
    if claims.get("p") != PURPOSE or not isinstance(tenant, str) or not isinstance(user, str):
        raise BadRequest("This unsubscribe link is not valid.", code=Code.INVALID_UNSUBSCRIBE_TOKEN)
    return tenant, user


def link(public_url: str, secret: str, tenant: str, user: str) -> str:
    query = urlencode({"token": make_token(secret, tenant, user)})
    return f"{public_url.rstrip('/')}/v1/unsubscribe?{query}"
