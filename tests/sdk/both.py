"""Run one test body against both clients: :class:`Client`, and :class:`AsyncClient` driven to
completion on a private event loop (every call bounded by ``LIMIT`` seconds)."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

from tidings.client import AsyncClient, Client

LIMIT = 20.0


class Driven:
    """``AsyncClient``'s methods called like ``Client``'s: each awaited on this object's loop."""

    def __init__(self, url: str, **options: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self.client = self.loop.run_until_complete(self._open(url, options))

    @staticmethod
    async def _open(url: str, options: dict[str, Any]) -> AsyncClient:
        return AsyncClient(url, **options)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.client, name)
        if not inspect.iscoroutinefunction(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            return self.loop.run_until_complete(asyncio.wait_for(attr(*args, **kwargs), LIMIT))

        return call

    def close(self) -> None:
        self.loop.run_until_complete(self.client.aclose())
        self.loop.close()


class Clients:
    """``make(url, **options)``: a new client of one kind (``sync`` or ``async``)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.made: list[Any] = []

    def __call__(self, url: str, **options: Any) -> Any:
        client: Any = Client(url, **options) if self.kind == "sync" else Driven(url, **options)
        self.made.append(client)
        return client

    def close(self) -> None:
        for client in self.made:
            client.close()
