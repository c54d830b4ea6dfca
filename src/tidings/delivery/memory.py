"""In-process broker: one process, no network. Listener queues are bounded; an overflow drops
the message and the hub repairs the gap from the store on the next arrival."""

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
        self._queues: set[asyncio.Queue[bytes | None]] = set()
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

    async def publish(self, message: bytes) -> None:
        for queue in self._queues:
            try:
                queue.put_nowait(message)
            except asyncio.QueueFull:
                self.dropped += 1
                log.warning("memory broker listener full; message dropped (hub will catch up)")

    async def listen(self) -> AsyncIterator[bytes | Signal]:
        queue: asyncio.Queue[bytes | None] = asyncio.Queue(self._maxsize)
        self._queues.add(queue)
        try:
            yield Signal.CONNECTED
            while (item := await queue.get()) is not None:
                yield item
        finally:
            self._queues.discard(queue)
