"""Redis pub/sub broker: the usual choice for a cluster.

Invariants:
- Every instance subscribes to one channel (``tidings`` unless the URL says ``?channel=…``) and
  publishes each envelope there once; Redis delivers it to every subscriber, this one included.
- The listening connection never reconnects silently: it is a client with no retries, so every
  lost connection ends in an exception here, :data:`Signal.DISCONNECTED` is yielded, and after
  the new subscription is confirmed :data:`Signal.CONNECTED` is yielded so the hub catches up
  from the store (messages published while nobody listened are gone from Redis).
- Bounded: messages are read from the socket one at a time as the hub takes them; a listener
  that falls too far behind is cut off by Redis (``client-output-buffer-limit pubsub``), which is
  a disconnect like any other. Reconnect attempts back off up to ``max_backoff`` seconds.
- A publish never waits more than ``publish_budget`` (:data:`PUBLISH_BUDGET`, 250 ms) for Redis:
  it runs through a circuit breaker (:mod:`tidings.breaker`) that cancels it at the budget and
  then, for ``cooldown`` seconds, refuses publishes at once (``CircuitOpen``, a
  ``ConnectionError``) before one publish probes Redis again. Either way publish raises, the
  service logs and counts it, and nothing is lost: the notification is committed, the local hub
  has it, and other instances find it in the store (gap catch-up on the next message, the
  periodic sweep, the catch-up after their own listener reconnects).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from types import TracebackType
from typing import TYPE_CHECKING, Self
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from tidings.breaker import Breaker
from tidings.delivery.broker import Signal

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger(__name__)

DEFAULT_CHANNEL = "tidings"
PUBLISH_BUDGET = 0.25  # seconds a publish may wait for Redis before the store is left to do it


def split_channel(url: str, default: str = DEFAULT_CHANNEL) -> tuple[str, str]:
    """``redis://h:p/0?channel=x`` → (``redis://h:p/0``, ``x``); redis-py knows no ``channel``."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    channel = next((v for k, v in query if k == "channel" and v), default)
    rest = urlencode([(k, v) for k, v in query if k != "channel"])
    return urlunsplit(parts._replace(query=rest)), channel


class RedisBroker:
    def __init__(
        self,
        url: str,
        *,
        max_backoff: float = 2.0,
        publish_budget: float = PUBLISH_BUDGET,
        cooldown: float = 5.0,
    ) -> None:
        self.url, self.channel = split_channel(url)
        self.max_backoff = max_backoff
        self.breaker = Breaker("redis-broker-publish", budget=publish_budget, cooldown=cooldown)
        self._publisher: Redis | None = None
        self._listener: Redis | None = None
        self._closed = asyncio.Event()

    async def __aenter__(self) -> Self:
        from redis.asyncio import Redis
        from redis.asyncio.retry import Retry
        from redis.backoff import ExponentialBackoff, NoBackoff
        from redis.exceptions import ConnectionError, TimeoutError

        # Publishing may retry once on a fresh connection (a restarted Redis leaves stale ones).
        self._publisher = Redis.from_url(
            self.url,
            socket_timeout=2.0,
            retry=Retry(ExponentialBackoff(cap=0.2, base=0.02), 1),
            retry_on_error=[ConnectionError, TimeoutError],
            socket_connect_timeout=2.0,
            socket_keepalive=True,
        )
        # Listening must not: a silent re-subscribe would hide the messages it missed.
        self._listener = Redis.from_url(
            self.url,
            socket_timeout=None,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=5,
            socket_connect_timeout=2.0,
            socket_keepalive=True,
        )
        self._closed.clear()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._closed.set()
        for client in (self._publisher, self._listener):
            if client is not None:
                with contextlib.suppress(Exception):
                    await client.aclose()
        self._publisher = self._listener = None

    async def publish(self, message: bytes, *, origin: str | None = None) -> None:
        publisher = self._publisher
        if publisher is None:
            raise RuntimeError("RedisBroker used outside 'async with'")
        await self.breaker.call(lambda: publisher.publish(self.channel, message))

    async def listen(self, *, origin: str | None = None) -> AsyncIterator[bytes | Signal]:
        from redis.exceptions import RedisError

        delay = 0.05
        while not self._closed.is_set():
            client = self._listener
            if client is None:
                return
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            connected = False
            try:
                await pubsub.subscribe(self.channel)
                connected, delay = True, 0.05
                log.info("redis broker subscribed channel=%s", self.channel)
                yield Signal.CONNECTED
                while not self._closed.is_set():
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if message is not None and message.get("type") == "message":
                        data = message["data"]
                        yield data if isinstance(data, bytes) else str(data).encode()
            except (RedisError, OSError) as error:
                if not self._closed.is_set():
                    log.warning("redis broker connection lost: %r", error)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
            if self._closed.is_set():
                return
            if connected:
                yield Signal.DISCONNECTED
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closed.wait(), delay)
            delay = min(delay * 2, self.max_backoff)
