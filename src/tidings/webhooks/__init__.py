"""Webhooks: a tenant's backend hears what happens to its notifications — created, read,
archived, snoozed, pushed, digested, reminded — as signed HTTP POSTs (Standard Webhooks),
delivered from a durable queue in the store. See ``docs/webhooks.md``.

:class:`WebhooksExtension` (:class:`tidings.extension.Extension`) brings the routes (the
tenant's, with an ``admin`` API key, and the operator's), its schema branch (``webhooks``, in
``migrations/``), and at start a :class:`~tidings.webhooks.worker.Deliverer` plus the hooks:
``on_event`` (:meth:`tidings.webhooks.manage.Webhooks.on_event`), an ``after_publish`` that
wakes the worker (which turns new notifications into ``notification.created`` events) when any
tenant has endpoints, and ``erase_user`` (:func:`tidings.webhooks.queue.erase_user`).
``app.state.webhooks`` is the :class:`~tidings.webhooks.manage.Webhooks` the routes use.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from typing import TYPE_CHECKING

from tidings.store.migrate import Branch

if TYPE_CHECKING:
    from fastapi import APIRouter, FastAPI

    from tidings.domain.notifications import Notification
    from tidings.hooks import Hooks
    from tidings.service import Tidings

MIGRATIONS = Path(__file__).parent / "migrations"


class WebhooksExtension:
    name = "webhooks"
    migrations = Branch("webhooks", MIGRATIONS)

    def __init__(self) -> None:
        self._app: FastAPI | None = None

    def routers(self) -> Sequence[APIRouter]:
        from tidings.webhooks import api

        return (api.tenant_router, api.operator_router)

    def configure(self, app: FastAPI) -> None:
        self._app = app

    async def start(self, service: Tidings, stack: AsyncExitStack) -> Hooks:
        from tidings.hooks import Hooks
        from tidings.webhooks import queue
        from tidings.webhooks.manage import Webhooks
        from tidings.webhooks.worker import Deliverer

        deliverer = Deliverer(service.store, service.settings, service.instance_id)
        hooks = Webhooks(service.store, service.settings, deliverer.wake, deliverer.has_endpoints)
        await deliverer.start()
        stack.push_async_callback(deliverer.stop)
        if self._app is not None:
            self._app.state.webhooks = hooks
            self._app.state.webhook_deliverer = deliverer

        async def published(items: list[Notification]) -> None:
            if deliverer.active:  # some tenant has endpoints (else the poll finds out)
                deliverer.wake()

        return Hooks(
            after_publish=[published], on_event=[hooks.on_event], erase_user=[queue.erase_user]
        )


__all__ = ["MIGRATIONS", "WebhooksExtension"]
