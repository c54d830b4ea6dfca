"""``open_service(settings)``: the one place a :class:`~tidings.service.Tidings` is assembled.

The app's lifespan, the CLI, the demo runner and the tests all open the service here, so what
they run is the same object over the same store, with the settings' real hub limits.

``live=True`` (the server): wait for the store (PostgreSQL starting up), migrate when the
settings say so, enter the configured broker, load the secrets, share the stream caps across
instances (``TIDINGS_SHARED_LIMITS_URL``), and run the :class:`~tidings.delivery.relay.Relay`
(broker → hub, store catch-up) and the retention pruning until the context exits.
``live=False`` (a command, a test helper): the store and the service only, with an in-process
broker: what it publishes is committed, and every server's relay finds it in the store within
``TIDINGS_SWEEP_INTERVAL``.

On exit (in reverse): the hub tells its streams to leave, the relay and the loops stop, then the
broker and the store close.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager, suppress

from tidings.config import Settings
from tidings.delivery.broker import Broker, from_url
from tidings.delivery.hub import Hub
from tidings.delivery.memory import MemoryBroker
from tidings.delivery.relay import Relay
from tidings.metrics import Metrics
from tidings.service import Tidings
from tidings.store import Store
from tidings.store.migrate import Schema

log = logging.getLogger(__name__)
RETENTION_EVERY = 3600.0


@asynccontextmanager
async def open_service(
    settings: Settings,
    schema: Schema | None = None,
    *,
    live: bool = True,
    secrets: bool = True,
    migrate: bool | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> AsyncIterator[Tidings]:
    """The service over ``settings``' store. ``schema``: the branches to migrate (the core
    alone without one); ``migrate``: ``None`` = on SQLite or with ``TIDINGS_AUTO_MIGRATE``;
    ``secrets``: resolve the server secrets first (generated once into the store if unset);
    ``should_stop``: ends the wait for an unreachable store (an exit signal arrived)."""
    async with AsyncExitStack() as stack:
        store = Store(settings.database_url)
        stack.push_async_callback(store.close)
        if live:  # PostgreSQL down at start: wait for it (the port opens only once it answers)
            await store.wait_reachable(
                max_delay=settings.store_retry_max_delay,
                timeout=settings.store_wait_timeout,
                should_stop=should_stop,
            )
        if (settings.is_sqlite or settings.auto_migrate) if migrate is None else migrate:
            await store.migrate(schema)
        metrics = Metrics()
        broker: Broker = from_url(settings.broker_url) if live else MemoryBroker()
        await stack.enter_async_context(broker)
        hub = Hub(
            store,
            metrics,
            buffer=settings.subscriber_buffer,
            max_per_user=settings.max_streams_per_user,
            max_per_tenant=settings.max_streams_per_tenant,
            ring=settings.stream_ring,
            views=settings.stream_views,
            view_ttl=settings.stream_view_ttl,
        )
        service = Tidings(settings, store, broker, hub, metrics)
        if secrets:
            await service.load_secrets()
        if live:
            await _go_live(service, stack)
        yield service


async def _go_live(service: Tidings, stack: AsyncExitStack) -> None:
    settings, hub = service.settings, service.hub
    if settings.shared_limits_url:  # stream caps across instances (delivery/slots.py)
        from tidings.delivery.slots import RedisSlots

        hub.slots = await stack.enter_async_context(
            RedisSlots(
                settings.shared_limits_url,
                service.instance_id,
                max_per_user=settings.max_streams_per_user,
                max_per_tenant=settings.max_streams_per_tenant,
                ttl=settings.stream_slot_ttl,
            )
        )
    relay = Relay(
        service.broker,
        hub,
        origin=service.instance_id,
        sweep_interval=settings.sweep_interval,
    )
    retention = asyncio.create_task(prune_forever(service), name="tidings-retention")

    async def stop_retention() -> None:
        retention.cancel()
        with suppress(asyncio.CancelledError):
            await retention

    stack.push_async_callback(stop_retention)
    await stack.enter_async_context(relay)
    stack.callback(hub.shutdown)  # first on exit: streams leave before anything closes


async def prune_forever(service: Tidings, every: float = RETENTION_EVERY) -> None:
    """Delete notifications older than ``TIDINGS_RETENTION_DAYS``, now and every ``every`` s."""
    while True:
        try:
            removed = await service.prune()
            if removed:
                log.info("retention pruned %d notifications", removed)
        except Exception as error:
            log.warning("retention pruning failed: %r", error)
        await asyncio.sleep(every)
