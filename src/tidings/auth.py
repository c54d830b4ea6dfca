"""Stream tokens (JWT, HS256) and the claims tidings trusts.

Claims: ``tenant``, ``sub`` (user), ``roles``, ``email``, ``locale`` (optional BCP 47 tag,
issue 10: the language of the user's feed, push and digest), ``exp``, ``iat``, ``iss``/``aud`` =
``tidings``. A host may mint tokens through ``POST /v1/tokens``, or sign them itself: with a
per-tenant signing key named by the header's ``kid`` (then the token is valid only for that
key's tenant), or with the server secret (tokens tidings mints itself use it).

Rules of :func:`verify` (docs/protocol.md, "Stream tokens"):
- ``exp``, ``iat``, ``sub`` and ``tenant`` are required; ``tenant`` is a valid tenant id and
  ``sub`` a valid user id, so no newline or control character reaches a log line;
- ``iat`` is at most :data:`LEEWAY` seconds in the future;
- ``exp - iat`` and ``exp - now`` are each at most ``TIDINGS_TOKEN_MAX_TTL`` + :data:`LEEWAY`,
  whatever ``iat`` says;
- expiry itself has no leeway: a stream ends the moment its token does.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections import OrderedDict
from datetime import UTC, datetime, timedelta

import jwt

from tidings import hs256
from tidings.domain.locales import canonical, is_locale
from tidings.domain.principals import Principal
from tidings.errors import Code, Unauthorized, ValidationFailed
from tidings.store.tenants import TENANT_ID

ISSUER = "tidings"
LEEWAY = 60  # seconds of clock skew allowed between a host that signs tokens and tidings
_USER = re.compile(r"^[A-Za-z0-9_.@:+\-]{1,128}\Z")  # \Z: "$" would admit a final newline
_NO_ROLES: frozenset[str] = frozenset()  # shared: an empty frozenset is no singleton (216 B)
_EMAIL = re.compile(r"^[^@\s\x00-\x1f\x7f]{1,64}@[^@\s\x00-\x1f\x7f]{1,255}\Z")


def mint(
    secret: str,
    *,
    tenant: str,
    user: str,
    roles: list[str] | tuple[str, ...] = (),
    ttl: int,
    email: str | None = None,
    now: datetime | None = None,
    kid: str | None = None,
    locale: str | None = None,
) -> tuple[str, datetime]:
    if not _USER.match(user):
        raise ValidationFailed("user is 1-128 of A-Z a-z 0-9 _ . @ : + -")
    for role in roles:
        if not _USER.match(role):
            raise ValidationFailed(f"role {role!r} is not a valid name")
    if email is not None and not _EMAIL.match(email):
        raise ValidationFailed("email is not a valid address")
    if locale is not None and not is_locale(locale):
        raise ValidationFailed("locale is not a BCP 47 language tag (for example 'de-AT')")
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
    if locale:
        claims["locale"] = canonical(locale)
    headers = {"kid": kid} if kid else None
    token = jwt.encode(claims, secret, algorithm="HS256", headers=headers)
    return token, expires.replace(microsecond=0)


def key_id(token: str) -> str | None:
    """The ``kid`` of the token's header (unverified), or ``None`` when it names none."""
    try:
        return hs256.key_id(token)
    except hs256.Invalid as error:
        raise Unauthorized(
            "The stream token is not valid.", code=Code.INVALID_CREDENTIALS
        ) from error


_REQUIRED = ("exp", "iat", "sub", "tenant")


def verify(
    secret: str, token: str, *, max_ttl: int, tenant: str | None = None, now: float | None = None
) -> Principal:
    """The principal of a token signed with ``secret``; with ``tenant`` (a signing key's
    tenant) the token must be for that tenant. Raises ``Unauthorized`` otherwise. The JWS
    rules are :mod:`tidings.hs256`'s (PyJWT's, checked at ``now``); tidings' own follow."""
    at = time.time() if now is None else now
    try:
        claims = hs256.claims(token, secret, require=_REQUIRED, now=at)
    except hs256.Expired as error:
        raise Unauthorized("The stream token has expired.", code=Code.TOKEN_EXPIRED) from error
    except hs256.Invalid as error:
        raise Unauthorized(
            "The stream token is not valid.", code=Code.INVALID_CREDENTIALS
        ) from error
    for claim in ("iss", "aud"):
        if claim in claims and claims[claim] != ISSUER and claims[claim] != [ISSUER]:
            raise Unauthorized(
                f"The token's {claim} is not 'tidings'.", code=Code.INVALID_CREDENTIALS
            )
    claimed, user, roles = claims.get("tenant"), claims.get("sub"), claims.get("roles", [])
    if (
        not isinstance(claimed, str)
        or not TENANT_ID.match(claimed)
        or not isinstance(user, str)
        or not _USER.match(user)
    ):
        raise Unauthorized("The token's tenant or sub is malformed.", code=Code.INVALID_CREDENTIALS)
    if tenant is not None and claimed != tenant:
        raise Unauthorized(
            "The token's tenant is not the tenant of its signing key.",
            code=Code.INVALID_CREDENTIALS,
        )
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise Unauthorized(
            "The token's roles must be a list of strings.", code=Code.INVALID_CREDENTIALS
        )
    exp = _check_lifetime(claims, max_ttl, at)
    expires = datetime.fromtimestamp(exp, UTC)
    email, locale = claims.get("email"), claims.get("locale")
    if locale is not None and (not isinstance(locale, str) or not is_locale(locale)):
        raise Unauthorized(
            "The token's locale is not a BCP 47 language tag.", code=Code.INVALID_CREDENTIALS
        )
    return Principal(
        tenant=claimed,
        user=user,
        roles=frozenset(roles) if roles else _NO_ROLES,
        expires_at=expires,
        email=email if isinstance(email, str) else None,
        locale=canonical(locale) if locale else None,
    )


def _check_lifetime(claims: dict[str, object], max_ttl: int, now: float) -> int:
    """``iat`` not in the future; ``exp`` at most ``max_ttl`` (+ leeway) after ``iat`` and
    after ``now``. Returns ``exp`` (PyJWT has checked that it has not passed)."""
    issued, expires = _numeric(claims, "iat"), _numeric(claims, "exp")
    if issued > now + LEEWAY:
        raise Unauthorized("The token's iat is in the future.", code=Code.INVALID_CREDENTIALS)
    if expires - issued > max_ttl + LEEWAY or expires - now > max_ttl + LEEWAY:
        raise Unauthorized(
            "The token lives longer than the server allows.", code=Code.INVALID_CREDENTIALS
        )
    return expires


def _numeric(claims: dict[str, object], name: str) -> int:
    """A NumericDate claim as whole seconds: a JSON number, not a string, bool or NaN."""
    value = claims[name]
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise Unauthorized(f"The token's {name} must be a number.", code=Code.INVALID_CREDENTIALS)
    if abs(value) > 1e11:  # beyond year 5000: not a date any clock of ours will reach
        raise Unauthorized(f"The token's {name} is out of range.", code=Code.INVALID_CREDENTIALS)
    return int(value)


def looks_like_jwt(value: str) -> bool:
    return value.count(".") == 2 and not value.startswith("tdg_")


class TokenCache:
    """Tokens verified before, by a 16-byte BLAKE2b digest of the token string (not the token:
    a stream token is ~300 bytes, and the cache holds one per open stream), until their
    ``exp`` (at most ``size``, least recently used out first). Only tokens that passed
    :func:`verify` are kept, with the ``kid`` they were checked with: whoever uses a hit must
    still check that the signing key is active (``Tidings.verify_token`` asks
    ``keyring.SigningKeys``, which honours a revocation as without this cache). A hit at or past
    ``exp`` is dropped and answered as expired, exactly as PyJWT would (no leeway). Two tokens
    share an entry only if their 128-bit digests collide, which nobody can arrange."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._tokens: OrderedDict[bytes, tuple[Principal, str | None, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._tokens)

    def get(
        self, token: str, now: float | None = None, *, key: bytes | None = None
    ) -> tuple[Principal, str | None] | None:
        """``(principal, kid)`` of a token verified before; raises ``Unauthorized``
        (``token_expired``) for one that has expired since. ``key``: the token's
        :func:`token_key`, when the caller has it."""
        if key is None:
            key = token_key(token)
        hit = self._tokens.get(key)
        if hit is None:
            return None
        if hit[2] <= (time.time() if now is None else now):
            del self._tokens[key]
            raise Unauthorized("The stream token has expired.", code=Code.TOKEN_EXPIRED)
        self._tokens.move_to_end(key)
        return hit[0], hit[1]

    def put(
        self, token: str, principal: Principal, kid: str | None, *, key: bytes | None = None
    ) -> None:
        if self.size <= 0:
            return
        if key is None:
            key = token_key(token)
        self._tokens[key] = (principal, kid, principal.expires_at.timestamp())
        while len(self._tokens) > self.size:
            self._tokens.popitem(last=False)

    def forget(self, token: str) -> None:
        self._tokens.pop(token_key(token), None)


def token_key(token: str) -> bytes:
    """The cache's key for ``token``: 16 bytes of BLAKE2b (a 49-byte object, not the token)."""
    return hashlib.blake2b(token.encode("utf-8", "surrogatepass"), digest_size=16).digest()
