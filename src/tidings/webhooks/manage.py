"""The webhooks' operations, as the routers (tenant key with ``admin``, operator) and the CLI
call them: each validates, runs one transaction, and wakes the local worker when it queued
something (other instances find it within ``TIDINGS_WEBHOOK_POLL_INTERVAL``).

It is also the service's :data:`tidings.hooks.EventSink` (:meth:`Webhooks.on_event`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.channels.egress import AddressPolicy, parse_networks
from tidings.config import Settings
from tidings.domain.notifications import utcnow
from tidings.store import Store
from tidings.webhooks import endpoints, queue
from tidings.webhooks.catalogue import KNOWN, check_types, check_url
from tidings.webhooks.endpoints import Endpoint


class Webhooks:
    def __init__(
        self,
        store: Store,
        settings: Settings,
        wake: Callable[[], None] = lambda: None,
        added: Callable[[], None] = lambda: None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.wake = wake
        self.added = added
        self.policy = AddressPolicy(parse_networks(settings.webhook_allow_networks))

    async def add(
        self,
        tenant: str,
        *,
        url: str,
        event_types: list[str],
        description: str | None = None,
        enabled: bool = True,
    ) -> tuple[Endpoint, str]:
        """A new endpoint and its ``whsec_…`` secret (shown this once)."""
        url = check_url(url, self.policy)
        types = check_types(event_types)
        async with self.store.write() as conn:
            created = await endpoints.create(
                conn,
                tenant,
                url=url,
                event_types=types,
                description=description,
                enabled=enabled,
                now=utcnow(),
                most=self.settings.webhook_max_endpoints,
            )
        self.added()
        return created

    async def endpoints(self, tenant: str) -> list[Endpoint]:
        async with self.store.read() as conn:
            return await endpoints.list_all(conn, tenant)

    async def get(self, tenant: str, endpoint_id: str) -> Endpoint:
        async with self.store.read() as conn:
            return await endpoints.get(conn, tenant, endpoint_id)

    async def change(self, tenant: str, endpoint_id: str, values: dict[str, Any]) -> Endpoint:
        """``values``: any of ``url``, ``event_types``, ``description``, ``enabled``."""
        if "url" in values:
            values["url"] = check_url(values["url"], self.policy)
        if "event_types" in values:
            values["event_types"] = check_types(values["event_types"])
        async with self.store.write() as conn:
            found = await endpoints.change(conn, tenant, endpoint_id, values, now=utcnow())
        if found.enabled:
            self.wake()
        return found

    async def remove(self, tenant: str, endpoint_id: str) -> None:
        async with self.store.write() as conn:
            await endpoints.remove(conn, tenant, endpoint_id)

    async def log(
        self,
        tenant: str,
        *,
        endpoint_id: str | None = None,
        before: int | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        async with self.store.read() as conn:
            return await queue.log_entries(
                conn, tenant, endpoint_id=endpoint_id, before=before, limit=limit
            )

    async def events(
        self, tenant: str, *, event_type: str | None = None, limit: int = 50
    ) -> list[dict[str, Any]]:
        async with self.store.read() as conn:
            return await queue.events(conn, tenant, event_type=event_type, limit=limit)

    async def replay(self, tenant: str, event_id: str, endpoint_id: str | None = None) -> list[str]:
        async with self.store.write() as conn:
            queued = await queue.replay(conn, tenant, event_id, endpoint_id, utcnow())
        if queued:
            self.wake()
        return queued

    async def on_event(
        self, conn: AsyncConnection | None, tenant: str, event_type: str, data: dict[str, Any]
    ) -> None:
        """The event sink: queue ``event_type`` in the caller's transaction (``conn``), or in
        one of its own right after the caller's commit (looked for in a read transaction first,
        so a tenant without endpoints costs no write)."""
        if event_type not in KNOWN:
            return
        if conn is not None:
            made = await queue.enqueue(conn, tenant, event_type, data, utcnow())
        else:
            async with self.store.read() as reading:
                if not await queue.subscribed(reading, tenant, event_type):
                    return
            async with self.store.write() as writing:
                made = await queue.enqueue(writing, tenant, event_type, data, utcnow())
        if made:
            self.wake()
