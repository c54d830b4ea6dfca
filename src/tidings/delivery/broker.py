"""The broker protocol: how instances tell each other "tenant T has seq N".

A broker is a fast path only. Messages may be lost, duplicated or reordered; the hub repairs
all of that from the store by seq. A broker *must* say when its connection was lost and when it
is back (:data:`Signal`), so the hub can poll and catch up instead of leaving a silent hole.

Backends are chosen by URL scheme and import their driver lazily:
``memory://`` (one process), ``redis://`` / ``rediss://``, ``postgresql://`` / ``postgres://``.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Protocol, Self

if TYPE_CHECKING:
    pass

SEP = b"\x1f"


class Signal(enum.Enum):
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"


@dataclass(frozen=True, slots=True)
class Envelope:
    """What travels between instances.

    ``kind`` ``n``: notification ``seq`` of ``tenant`` (``payload`` its JSON, or empty when it did
    not fit the broker: the hub then reads the row). ``kind`` ``e``: an ephemeral ``event`` for
    one ``user`` (read-state sync), no seq. ``kind`` ``p``: the preferences of ``user`` (empty:
    of every user of ``tenant``) changed; internal (the hub's ``on_preferences`` caches forget),
    never sent to a browser; an instance that does not know it ignores it. ``origin`` names
    the sending instance, which delivered locally already and skips its own echo.
    """

    kind: str
    tenant: str
    seq: int = 0
    user: str = ""
    event: str = ""
    payload: bytes = b""
    origin: str = ""

    def encode(self) -> bytes:
        fields = (self.kind, self.tenant, str(self.seq), self.user, self.event, self.origin)
        return SEP.join(f.encode() for f in fields) + b"\n" + self.payload

    @classmethod
    def decode(cls, raw: bytes) -> Envelope:
        head, _, payload = raw.partition(b"\n")
        kind, tenant, seq, user, event, origin = (part.decode() for part in head.split(SEP))
        return cls(kind, tenant, int(seq), user, event, payload, origin)


class Broker(Protocol):
    """One small protocol, three implementations."""

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def publish(self, message: bytes, *, origin: str | None = None) -> None:
        """Send to every instance (this one included). May raise when the broker is down.
        ``origin``: the publishing instance; a listener that gave the same ``origin`` may be
        spared the message (that instance delivered it locally): the memory broker spares it,
        Redis and PostgreSQL cannot tell and deliver it (the relay drops its own by the
        envelope's origin)."""

    def listen(self, *, origin: str | None = None) -> AsyncIterator[bytes | Signal]:
        """Messages from every instance, and connection signals. Runs until the broker closes.
        ``origin``: this listener's instance (see :meth:`publish`)."""
        ...


def from_url(url: str) -> Broker:
    scheme = url.split("://", 1)[0].lower()
    if scheme == "memory":
        from tidings.delivery.memory import MemoryBroker

        return MemoryBroker()
    if scheme in ("redis", "rediss"):
        from tidings.delivery.redis import RedisBroker

        return RedisBroker(url)
    if scheme.split("+", 1)[0] in ("postgresql", "postgres"):  # also postgresql+asyncpg
        from tidings.delivery.postgres import PostgresBroker

        return PostgresBroker(url)
    raise ValueError(f"unknown broker URL scheme {scheme!r} (memory://, redis://, postgresql://)")
