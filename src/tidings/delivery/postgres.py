"""PostgreSQL LISTEN/NOTIFY broker: a deployment that has PostgreSQL needs nothing else.

Invariants:
- A notification's NOTIFY is issued *inside* its publishing transaction
  (:meth:`PostgresBroker.publish_in_transaction`), so PostgreSQL sends it exactly when the row
  commits, never for a rolled-back row, and in commit order.
- A payload must stay under PostgreSQL's 8000-byte limit: an envelope that would not fit is
  sent without its payload and the hub reads the row from the store. An ephemeral event that
  would not fit is dropped (read-state sync is advisory; the feed is the truth).
- One dedicated connection LISTENs. Its loss (server restart, network) yields
  :data:`Signal.DISCONNECTED`; once a new connection LISTENs again, :data:`Signal.CONNECTED`
  (the hub catches up from the store). The queue between the connection and the hub is bounded;
  when it overflows, the messages are dropped and a :data:`Signal.CONNECTED` follows, which makes
  the hub catch up as after a reconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from tidings.delivery.broker import Envelope, Signal

if TYPE_CHECKING:
    import asyncpg
    from sqlalchemy.ext.asyncio import AsyncConnection

log = logging.getLogger(__name__)

DEFAULT_CHANNEL = "tidings"
MAX_PAYLOAD = 7999  # PostgreSQL: "must be shorter than 8000 bytes"


def dsn_of(url: str) -> str:
    """An asyncpg DSN from ``postgresql://``, ``postgres://`` or ``postgresql+asyncpg://``."""
    scheme, rest = url.split("://", 1)
    if scheme.split("+", 1)[0] not in ("postgresql", "postgres"):
        raise ValueError(f"not a PostgreSQL URL: {scheme}://")
    return f"postgresql://{rest}"


def fit(message: bytes) -> bytes | None:
    """``message`` if it fits a NOTIFY payload; a notification without payload if not; ``None``
    for an ephemeral event that does not fit."""
    if len(message) <= MAX_PAYLOAD:
        return message
    envelope = Envelope.decode(message)
    if envelope.kind != "n":
        return None
    return Envelope("n", envelope.tenant, envelope.seq, origin=envelope.origin).encode()


def _database_key(url: str) -> tuple[str, int, str]:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    host = parsed.host or str(parsed.query.get("host", "")) or "localhost"
    return host, parsed.port or 5432, parsed.database or (parsed.username or "")


class PostgresBroker:
    def __init__(
        self,
        url: str,
        *,
        channel: str = DEFAULT_CHANNEL,
        queue_size: int = 10_000,
        keepalive: float = 5.0,
        max_backoff: float = 2.0,
    ) -> None:
        self.dsn = dsn_of(url)
        self.channel = channel
        self.queue_size = queue_size
        self.keepalive = keepalive
        self.max_backoff = max_backoff
        self._key = _database_key(self.dsn)
        self._publisher: asyncpg.Connection | None = None
        self._lock = asyncio.Lock()
        self._closed = asyncio.Event()
        self._inboxes: set[_Inbox] = set()

    async def __aenter__(self) -> Self:
        self._closed.clear()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._closed.set()
        for inbox in self._inboxes:
            inbox.on_lost(None)
        async with self._lock:
            if self._publisher is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._publisher.close(), 2)
                self._publisher = None

    # -- publishing ----------------------------------------------------------------------------

    async def publish(self, message: bytes, *, origin: str | None = None) -> None:
        """NOTIFY outside any transaction (ephemeral events, or a store that is not this
        database). Raises when PostgreSQL cannot be reached."""
        import asyncpg

        payload = fit(message)
        if payload is None:
            log.debug("ephemeral event too large for NOTIFY; dropped")
            return
        async with self._lock:
            try:
                if self._publisher is None or self._publisher.is_closed():
                    self._publisher = await asyncpg.connect(self.dsn, timeout=5)
                await self._publisher.execute(
                    "SELECT pg_notify($1, $2)", self.channel, payload.decode(), timeout=5
                )
            except BaseException:
                if self._publisher is not None:
                    self._publisher.terminate()
                    self._publisher = None
                raise

    async def publish_in_transaction(self, conn: AsyncConnection, messages: list[bytes]) -> bool:
        """NOTIFY ``messages`` within the caller's open transaction on ``conn``, so they are
        sent at its commit. Returns ``False`` (and does nothing) when ``conn`` is not a
        connection to this broker's database; the caller then publishes after commit."""
        from sqlalchemy import text

        if conn.dialect.name != "postgresql":
            return False
        if _database_key(conn.engine.url.render_as_string(hide_password=False)) != self._key:
            return False
        for message in messages:
            payload = fit(message)
            if payload is not None:
                await conn.execute(
                    text("SELECT pg_notify(:channel, :payload)"),
                    {"channel": self.channel, "payload": payload.decode()},
                )
        return True

    # -- listening -----------------------------------------------------------------------------

    async def listen(self, *, origin: str | None = None) -> AsyncIterator[bytes | Signal]:
        import asyncpg

        delay = 0.05
        while not self._closed.is_set():
            inbox = _Inbox(self.queue_size)
            conn: asyncpg.Connection | None = None
            connected = False
            self._inboxes.add(inbox)
            try:
                conn = await asyncpg.connect(self.dsn, timeout=5)
                conn.add_termination_listener(inbox.on_lost)
                await conn.add_listener(self.channel, inbox.on_notify)
                connected, delay = True, 0.05
                log.info("postgres broker listening channel=%s", self.channel)
                yield Signal.CONNECTED
                while not inbox.lost and not self._closed.is_set():
                    try:
                        item = await asyncio.wait_for(inbox.queue.get(), self.keepalive)
                    except TimeoutError:
                        await conn.execute("SELECT 1", timeout=self.keepalive)
                        continue
                    if item is None:
                        break
                    yield item
                    if inbox.overflow and inbox.queue.empty():
                        inbox.overflow = False
                        log.warning("postgres broker queue overflowed; catching up")
                        yield Signal.CONNECTED
            except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as error:
                if not self._closed.is_set():
                    log.warning("postgres broker connection lost: %r", error)
            finally:
                self._inboxes.discard(inbox)
                if conn is not None:
                    conn.terminate()
            if self._closed.is_set():
                return
            if connected:
                if inbox.lost:
                    log.warning("postgres broker connection lost")
                yield Signal.DISCONNECTED
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closed.wait(), delay)
            delay = min(delay * 2, self.max_backoff)


class _Inbox:
    """What one LISTEN connection received: a bounded queue (``None``: connection lost)."""

    def __init__(self, size: int) -> None:
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue(size)
        self.overflow = False
        self.lost = False

    def on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            self.queue.put_nowait(payload.encode())
        except asyncio.QueueFull:
            self.overflow = True

    def on_lost(self, _conn: Any) -> None:
        self.lost = True
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait(None)
