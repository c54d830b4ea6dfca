"""The keys that sign and verify: the server's own secrets and the tenants' signing keys.

- **Server secrets.** The token secret (``TIDINGS_SECRET``) and the operator key
  (``TIDINGS_OPERATOR_KEY``) come from the settings when set there; otherwise they are
  generated at random once and kept in the store (``server_secrets``), so every instance on a
  database uses the same ones and they survive restarts. No well-known value ever signs or
  opens anything (invariant 7): there is no default, and the once-published ones are refused
  by :meth:`tidings.config.Settings.check_secrets`. The value is never logged.
- **Tenant signing keys** (``kid`` → tenant, secret), looked up in the store and kept in a
  bounded in-process cache for at most ``TIDINGS_SIGNING_KEY_CACHE`` seconds. A revocation
  through this instance drops the entry at once; one through another instance takes effect
  here within that bound.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from tidings.config import Settings
from tidings.store import Store
from tidings.store import serversecrets as sq
from tidings.store import signingkeys as kq

log = logging.getLogger(__name__)

Source = Literal["env", ".env", "settings", "store"]
SECRET_NAME = "token_secret"
OPERATOR_NAME = "operator_key"
OPERATOR_KEY_COMMAND = "tidings operator-key"


@dataclass(frozen=True, slots=True)
class Resolved:
    """One effective secret and where it came from (``created_at`` only for the store)."""

    value: str
    source: Source
    created_at: datetime | None = None
    generated_now: bool = False

    def describe(self) -> str:
        """Where it comes from, for ``tidings config`` (never the value)."""
        if self.source == "store":
            at = self.created_at
            since = (
                "?" if at is None else f"{at.replace(tzinfo=at.tzinfo or UTC):%Y-%m-%d %H:%M} UTC"
            )
            return f"generated, kept in the store since {since}"
        return {"env": "environment", ".env": ".env file", "settings": "settings"}[self.source]


@dataclass(frozen=True, slots=True)
class ServerSecrets:
    token: Resolved  # signs the stream tokens tidings mints; demo sessions, unsubscribe links
    operator: Resolved  # bearer key of /v1/admin


def generate_secret() -> str:
    return secrets.token_urlsafe(48)


def generate_operator_key() -> str:
    return "tdo_" + secrets.token_urlsafe(32)


async def resolve(settings: Settings, store: Store, now: datetime) -> ServerSecrets:
    """The effective server secrets. Touches the store only for those not configured; logs
    one line (without values) when this call generated them."""
    token = _configured(settings, "secret")
    operator = _configured(settings, "operator_key")
    if token is None or operator is None:
        async with store.write() as conn:
            if token is None:
                token = _stored(await sq.get_or_create(conn, SECRET_NAME, generate_secret, now=now))
            if operator is None:
                operator = _stored(
                    await sq.get_or_create(conn, OPERATOR_NAME, generate_operator_key, now=now)
                )
    if operator.generated_now:
        log.info(
            "generated a random operator key%s and kept it in the store; print it with `%s`",
            " (and a token secret)" if token.generated_now else "",
            OPERATOR_KEY_COMMAND,
        )
    elif token.generated_now:
        log.info("generated a random token secret and kept it in the store")
    return ServerSecrets(token=token, operator=operator)


def _configured(settings: Settings, name: Literal["secret", "operator_key"]) -> Resolved | None:
    value = getattr(settings, name)
    source = settings.secret_source(name)
    if value is None or source is None:
        return None
    return Resolved(value.get_secret_value(), source)


def _stored(found: sq.StoredSecret) -> Resolved:
    return Resolved(found.value, "store", found.created_at, found.created)


class SigningKeys:
    """``kid`` → ``(tenant, secret)`` from the store, cached for at most ``ttl`` seconds and
    at most ``size`` entries (least recently used out first). Unknown and revoked kids are not
    cached, so a new key works at once."""

    def __init__(self, store: Store, *, ttl: float, size: int = 1024) -> None:
        self.store = store
        self.ttl = ttl
        self.size = size
        self._cache: OrderedDict[str, tuple[float, str, str]] = OrderedDict()

    async def lookup(self, kid: str) -> tuple[str, str] | None:
        """``(tenant, secret)`` of an active key, or ``None``."""
        hit = self._cache.get(kid)
        now = time.monotonic()
        if hit is not None and now - hit[0] < self.ttl:
            self._cache.move_to_end(kid)
            return hit[1], hit[2]
        self._cache.pop(kid, None)
        async with self.store.read() as conn:
            found = await kq.active_secret(conn, kid)
        if found is not None and self.ttl > 0:
            self._cache[kid] = (now, *found)
            while len(self._cache) > self.size:
                self._cache.popitem(last=False)
        return found

    def forget(self, kid: str) -> None:
        """Drop ``kid`` (revoked through this instance): its next token is checked again."""
        self._cache.pop(kid, None)
