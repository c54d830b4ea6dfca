"""Who is calling. The tenant of every request comes from here, never from a body or query."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Principal:
    """An end user holding a stream token."""

    tenant: str
    user: str
    roles: frozenset[str]
    expires_at: datetime
    email: str | None = None
    locale: str | None = None  # BCP 47 (issue 10): the feed's text, the profile's locale


@dataclass(frozen=True, slots=True)
class KeyPrincipal:
    """A host backend holding an API key of one tenant."""

    tenant: str
    key_id: str
    scopes: frozenset[str]
