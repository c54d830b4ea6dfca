"""Stream tokens the SDK mints for users, and the cache that reuses them until near expiry.

A cached token is used only while more than ``margin`` of its life is left (a fifth of it, at
least half a second, at most a minute), so a request never carries a token that expires on its
way. The deadline is kept on the local monotonic clock from the lifetime the server granted, so
the local wall clock's skew does not matter beyond the request's own latency.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = ["StreamToken", "TokenCache", "UserRef"]

MIN_MARGIN = 0.5  # seconds: a token is never handed out with less life left


@dataclass(frozen=True, slots=True)
class StreamToken:
    """A stream token for one user: ``token`` (a JWT for ``Authorization: Bearer`` or
    ``?access_token=``), ``expires_at`` (aware UTC), ``tenant`` and ``user``."""

    token: str
    expires_at: datetime
    tenant: str
    user: str

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> StreamToken:
        expires = datetime.fromisoformat(str(body["expires_at"]).replace("Z", "+00:00"))
        if expires.tzinfo is None:
            expires = expires.replace(tzinfo=UTC)
        return cls(str(body["token"]), expires, str(body["tenant"]), str(body["user"]))


@dataclass(frozen=True, slots=True)
class UserRef:
    """Whom a user-facing call acts for: the claims of the token minted for it."""

    user: str
    roles: tuple[str, ...] = ()
    email: str | None = None
    locale: str | None = None  # BCP 47 (the token's ``locale`` claim)

    @classmethod
    def of(
        cls,
        user: str,
        roles: Sequence[str] = (),
        email: str | None = None,
        locale: str | None = None,
    ) -> UserRef:
        if isinstance(roles, str):
            raise TypeError("roles is a sequence of role names, not one string")
        return cls(user, tuple(sorted(set(roles))), email, locale)


class TokenCache:
    """Tokens by :class:`UserRef`, each until near its expiry (see the module docstring)."""

    def __init__(self) -> None:
        self._tokens: dict[UserRef, tuple[StreamToken, float]] = {}

    def get(self, ref: UserRef) -> StreamToken | None:
        found = self._tokens.get(ref)
        if found is None or time.monotonic() >= found[1]:
            return None
        return found[0]

    def put(self, ref: UserRef, token: StreamToken) -> None:
        life = (token.expires_at - datetime.now(UTC)).total_seconds()
        margin = min(60.0, max(MIN_MARGIN, life / 5))
        if life - margin > 0:
            self._tokens[ref] = (token, time.monotonic() + life - margin)

    def drop(self, ref: UserRef) -> None:
        self._tokens.pop(ref, None)
