"""In-process broker: one process, no network. Listener queues are bounded; an overflow drops
the message and the hub repairs the gap from the store on the next arrival. A message is not
put in the queue of a listener of its own origin (that instance delivered it locally): a lone
``tidings serve`` on ``memory://`` does not wake its relay to decode and drop every publish."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Self

from tidings.delivery.broker import Signal

log = logging.getLogger(__name__)


class MemoryBroker:
    def __init__(self, maxsize: int = 10_000) -> None:
        self._maxsize = maxsize
        self._queues: dict[asyncio.Queue[bytes | None], str | None] = {}  # → its origin
        self.dropped = 0

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for queue in self._queues:
            queue.put_nowait(None) if not queue.full() else None

    async def publish(self, message: bytes, *, origin: str | None = None) -> None:
        for queue, listener in self._queues.items():
            if origin is not None and listener == origin:
                continue
            try:
                queue.put_nowait(message)
            except asyncio.QueueFull:
                self.dropped += 1
                log.warning("memory broker listener full; message dropped (hub will catch up)")

    def reaches_others(self, origin: str | None) -> bool:
        """Whether :meth:`publish` with ``origin`` would put the message in any queue."""
        return any(origin is None or listener != origin for listener in self._queues.values())

    async def listen(self, *, origin: str | None = None) -> AsyncIterator[bytes | Signal]:
        queue: asyncio.Queue[bytes | None] = asyncio.Queue(self._maxsize)
        self._queues[queue] = origin
        try:
            yield Signal.CONNECTED
            while (item := await queue.get()) is not None:
                yield item
        finally:
            self._queues.pop(queue, None)
