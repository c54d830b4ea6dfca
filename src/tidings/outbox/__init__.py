"""The outbox: a host publishes by inserting into ``tidings_outbox`` in its own PostgreSQL
transaction; tidings publishes each row exactly once, in insert order per tenant. See
``docs/outbox.md``.

:class:`OutboxExtension` (:class:`tidings.extension.Extension`) adds the operator routes
(``/v1/admin/outbox/…``) and, when ``TIDINGS_OUTBOX_URL`` is set, starts an
:class:`OutboxConsumer` with the service and stops it with the app (``app.state.outbox`` is the
running consumer). The
consumer itself needs nothing but the service and the settings, so any other wiring
(an extension seam, a test) can run it as ``async with OutboxConsumer(service, settings)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING

from tidings.outbox.schema import SQL

if TYPE_CHECKING:
    from fastapi import APIRouter, FastAPI

    from tidings.hooks import Hooks
    from tidings.outbox.consumer import OutboxConsumer
    from tidings.service import Tidings
    from tidings.store.migrate import Branch


class OutboxExtension:
    name = "outbox"
    migrations: Branch | None = None  # its table lives in the host's database (docs/outbox.md)

    def __init__(self) -> None:
        self._app: FastAPI | None = None

    def routers(self) -> Sequence[APIRouter]:
        from tidings.outbox import admin

        return (admin.router,)

    def configure(self, app: FastAPI) -> None:
        self._app = app
        app.state.outbox = None

    async def start(self, service: Tidings, stack: AsyncExitStack) -> Hooks:
        from tidings.hooks import Hooks
        from tidings.outbox.consumer import OutboxConsumer

        if service.settings.outbox_url:
            consumer = OutboxConsumer(service, service.settings)
            await consumer.start()
            stack.push_async_callback(consumer.stop)
            if self._app is not None:
                self._app.state.outbox = consumer
        return Hooks()


def __getattr__(name: str) -> type[OutboxConsumer]:
    if name == "OutboxConsumer":  # lazily: the consumer imports the service
        from tidings.outbox.consumer import OutboxConsumer

        return OutboxConsumer
    raise AttributeError(name)


__all__ = ["SQL", "OutboxConsumer", "OutboxExtension"]
