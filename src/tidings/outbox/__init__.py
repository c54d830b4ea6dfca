"""The outbox: a host publishes by inserting into ``tidings_outbox`` in its own PostgreSQL
transaction; tidings publishes each row exactly once, in insert order per tenant. See
``docs/outbox.md``.

``install(app)`` adds the operator routes (``/v1/admin/outbox/…``) and, when
``TIDINGS_OUTBOX_URL`` is set, a startup hook that starts an :class:`OutboxConsumer` with the
service and stops it with the app (``app.state.outbox`` is the running consumer). The
consumer itself needs nothing but the service and the settings, so any other wiring
(an extension seam, a test) can run it as ``async with OutboxConsumer(service, settings)``.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import TYPE_CHECKING

from tidings.outbox.schema import SQL

if TYPE_CHECKING:
    from fastapi import FastAPI

    from tidings.outbox.consumer import OutboxConsumer
    from tidings.service import Tidings


def install(app: FastAPI) -> None:
    from tidings.outbox import admin
    from tidings.outbox.consumer import OutboxConsumer

    app.include_router(admin.router)
    app.state.outbox = None
    if not app.state.settings.outbox_url:
        return

    async def start(service: Tidings, stack: AsyncExitStack) -> None:
        consumer = OutboxConsumer(service, app.state.settings)
        await consumer.start()
        stack.push_async_callback(consumer.stop)
        app.state.outbox = consumer

    app.state.startup_hooks.append(start)


def __getattr__(name: str) -> type[OutboxConsumer]:
    if name == "OutboxConsumer":  # lazily: the consumer imports the service
        from tidings.outbox.consumer import OutboxConsumer

        return OutboxConsumer
    raise AttributeError(name)


__all__ = ["SQL", "OutboxConsumer", "install"]
