"""The :class:`Relay`: the broker's messages into the local hub, and the store behind it.

``async with Relay(broker, hub, origin=…, sweep_interval=…)`` starts the relay's tasks and, on
exit, cancels them and waits for them (the relay owns them, as encode/broadcaster's
``Broadcast`` owns its listener).

Invariant 3 (nothing lost): the broker is only a fast path. The relay

* offers each broker message to the hub (its own instance's messages, ``origin``, were
  delivered locally when they were published, and are skipped);
* while the broker says ``DISCONNECTED`` or its listener fails, polls the store for every
  served tenant every second, and catches up once when it is back;
* after a catch-up or a gap fill that failed (the store was down when the broker was not),
  polls until one succeeds;
* whatever the broker says, catches up every ``sweep_interval`` seconds, so a message lost
  without a disconnect delays a notification by at most that long, never forever.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress
from types import TracebackType

from tidings.delivery import sse
from tidings.delivery.broker import Broker, Envelope, Signal
from tidings.delivery.hub import Hub

log = logging.getLogger(__name__)


class Relay:
    def __init__(self, broker: Broker, hub: Hub, *, origin: str, sweep_interval: float) -> None:
        self.broker = broker
        self.hub = hub
        self.origin = origin
        self.sweep_interval = sweep_interval
        self._tasks: list[asyncio.Task[None]] = []
        self._poller: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Relay:
        self._tasks = [
            asyncio.create_task(self._listen(), name="tidings-broker-listener"),
            asyncio.create_task(self._sweep(), name="tidings-sweep"),
        ]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        self._stop_polling()

    # -- the broker ------------------------------------------------------------------------------

    async def _listen(self) -> None:
        delay, connected_once = 0.5, False
        while True:
            try:
                async for item in self.broker.listen(origin=self.origin):
                    if item is Signal.CONNECTED:
                        self.hub.broker_changed(connected=True)  # read events may have been lost
                        self._stop_polling()
                        if connected_once:
                            log.info("broker reconnected; catching up from the store")
                        connected_once, delay = True, 0.5
                        try:
                            await self.hub.catch_up()
                        except Exception as error:
                            log.warning("catch-up failed (%r); retrying every second", error)
                            self._start_polling(until_whole=True)
                    elif item is Signal.DISCONNECTED:
                        self.hub.broker_changed(connected=False)
                        log.warning("broker disconnected; polling the store until it is back")
                        self._start_polling(until_whole=False)
                    elif isinstance(item, bytes):
                        try:
                            await self.dispatch(item)
                        except Exception as error:  # a gap fill met a store outage
                            log.warning("delivery from the store failed (%r); retrying", error)
                            self._start_polling(until_whole=True)
                return
            except asyncio.CancelledError:
                self._stop_polling()
                raise
            except Exception as error:
                log.warning("broker listener failed (%r); polling, retry in %.1fs", error, delay)
                self.hub.broker_changed(connected=False)
                self._start_polling(until_whole=False)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def dispatch(self, raw: bytes) -> None:
        """Offer one broker message to the hub (a malformed one is logged and dropped)."""
        try:
            envelope = Envelope.decode(raw)
        except (ValueError, UnicodeDecodeError):
            log.warning("ignoring a malformed broker message")
            return
        if envelope.origin == self.origin:
            return  # delivered locally when it was published
        if envelope.kind == "n":
            await self.hub.deliver_raw(envelope.tenant, envelope.seq, envelope.payload)
        elif envelope.kind == "e" and envelope.event in sse.EPHEMERAL:  # every read-state event
            self.hub.deliver_ephemeral(
                envelope.tenant, envelope.user, envelope.event, envelope.payload
            )
        elif envelope.kind == "p":  # preferences changed elsewhere: caches forget (mutes.py)
            self.hub.preferences_changed(envelope.tenant, envelope.user or None)

    # -- the store behind it ---------------------------------------------------------------------

    async def _poll(self, until_whole: bool) -> None:
        """Catch up every second: while the broker is away, or (``until_whole``) until one
        catch-up succeeds after a failed one (the store was down when the broker was not)."""
        while True:
            await asyncio.sleep(1.0)
            try:
                await self.hub.catch_up()
            except Exception as error:
                log.debug("catch-up failed: %r", error)
                continue
            if until_whole:
                return

    def _start_polling(self, until_whole: bool) -> None:
        poller = self._poller
        if poller is not None and not poller.done():
            if until_whole:
                return
            poller.cancel()
        self._poller = asyncio.create_task(self._poll(until_whole), name="tidings-store-poll")

    def _stop_polling(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            self._poller = None

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(self.sweep_interval)
            try:
                await self.hub.catch_up()
            except Exception as error:
                log.debug("sweep failed: %r", error)
