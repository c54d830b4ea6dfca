"""The delivery worker: one per instance, cooperating with the others through the store.

Each round it turns new notifications into events (:func:`queue.tail_notifications`), then
**claims endpoints**, not deliveries: an enabled endpoint whose oldest pending delivery is due
and whose lease is free gets this instance's lease (``owner``, ``lease_until``), taken in a
write transaction (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, SQLite's one writer otherwise), so
exactly one instance delivers to an endpoint at a time and sends its deliveries one by one in
queue order: **one in flight per endpoint, in order**. Each claimed endpoint is drained by its
own task, at most ``TIDINGS_WEBHOOK_CONCURRENCY`` at once, so a slow receiver holds one slot
for at most ``TIDINGS_WEBHOOK_TIMEOUT`` per attempt and never delays another tenant's.

After an attempt, one transaction records it (:mod:`tidings.webhooks.attempts`: delivered,
retried with backoff, given up, the endpoint disabled). The lease is renewed with each attempt
and released when the task ends; an instance that dies leaves a lease that expires.
"""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import suppress
from datetime import datetime, timedelta

from sqlalchemy import delete, exists, func, or_, select, true, update

from tidings.channels.clock import as_utc
from tidings.config import Settings
from tidings.domain.notifications import utcnow
from tidings.store import Store
from tidings.webhooks import attempts, queue, signing
from tidings.webhooks.attempts import Job
from tidings.webhooks.sender import Outcome, Sender
from tidings.webhooks.tables import (
    webhook_deliveries,
    webhook_endpoints,
    webhook_events,
    webhook_log,
)

log = logging.getLogger(__name__)
_E = webhook_endpoints.c
_D = webhook_deliveries.c
DRAIN = 100  # deliveries sent under one claim before the endpoint is let go


class Deliverer:
    def __init__(self, store: Store, settings: Settings, instance: str) -> None:
        self.store = store
        self.settings = settings
        self.instance = instance
        self.sender = Sender(settings)
        self.lease = timedelta(seconds=settings.webhook_timeout + 10.0)
        self._wake = asyncio.Event()
        self._running: dict[str, asyncio.Task[None]] = {}
        self._task: asyncio.Task[None] | None = None
        self._pruned = 0.0
        self.active = True
        """Some tenant has an endpoint (checked each round; set at once by a local add): a
        publish wakes the worker only then."""

    def wake(self) -> None:
        self._wake.set()

    def has_endpoints(self) -> None:
        self.active = True
        self._wake.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="tidings-webhooks")

    async def stop(self) -> None:
        tasks = [t for t in (self._task, *self._running.values()) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with suppress(asyncio.CancelledError, Exception):
                await task
        with suppress(Exception):  # let the others take over at once
            async with self.store.write() as conn:
                await conn.execute(
                    update(webhook_endpoints)
                    .where(_E.owner == self.instance)
                    .values(lease_until=None, owner=None)
                )
        await self.sender.close()

    async def _run(self) -> None:
        base = self.settings.webhook_poll_interval
        longest = max(base, self.settings.idle_poll_max)
        pause = base
        while True:
            self._wake.clear()
            try:
                await self.round()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("webhooks round failed (will retry): %r", error)
                self.active = True
            # No endpoint anywhere: nothing can be due, so look less and less often (an endpoint
            # added here wakes the worker; one added on another instance is seen within
            # TIDINGS_IDLE_POLL_MAX). With endpoints, every poll interval as always.
            pause = base if self.active else min(pause * 2, longest)
            with suppress(TimeoutError):
                async with asyncio.timeout(pause):
                    await self._wake.wait()

    async def round(self) -> None:
        now = utcnow()
        async with self.store.read() as conn:
            self.active = (await conn.execute(select(_E.id).limit(1))).first() is not None
        if not self.active:
            return
        await queue.tail_notifications(self.store, now)
        free = self.settings.webhook_concurrency - len(self._running)
        if free > 0:
            for endpoint in await self._claim(now, free):
                task = asyncio.create_task(
                    self._drain(endpoint), name=f"tidings-webhook-{endpoint}"
                )
                self._running[endpoint] = task
        if time.monotonic() - self._pruned > 3600:
            await self._prune(now)

    # -- claiming ----------------------------------------------------------------------------

    async def _claim(self, now: datetime, most: int) -> list[str]:
        """Lease up to ``most`` endpoints whose oldest pending delivery is due. Looked for in a
        read transaction first: an idle round (each publish wakes one) writes nothing."""
        first = webhook_deliveries.alias("first")
        head = (
            select(func.min(first.c.id))
            .where(first.c.endpoint_id == _E.id, first.c.state == "pending")
            .correlate(webhook_endpoints)
            .scalar_subquery()
        )
        due = exists().where(_D.id == head, _D.due_at <= now)
        query = (
            select(_E.id)
            .where(
                _E.enabled == true(),
                or_(_E.lease_until.is_(None), _E.lease_until < now),
                _E.id.not_in(list(self._running)) if self._running else true(),
                due,
            )
            .order_by(_E.lease_until.nulls_first(), _E.id)
            .limit(most)
        )
        async with self.store.read() as conn:
            if (await conn.execute(query.limit(1))).first() is None:
                return []
        async with self.store.write() as conn:
            if conn.dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True, of=webhook_endpoints)
            claimed = list((await conn.execute(query)).scalars())
            if claimed:
                await conn.execute(
                    update(webhook_endpoints)
                    .where(_E.id.in_(claimed))
                    .values(owner=self.instance, lease_until=now + self.lease)
                )
        return claimed

    async def _drain(self, endpoint: str) -> None:
        try:
            for _ in range(DRAIN):
                job = await self._head(endpoint, utcnow())
                if job is None:
                    break
                moment = int(time.time())
                outcome = await self.sender.post(
                    job.url, signing.headers(job.secret, job.event, moment, job.body), job.body
                )
                if not await self._finish(job, outcome):
                    break
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.warning("webhook endpoint %s: delivery failed: %r", endpoint, error)
        finally:
            self._running.pop(endpoint, None)
            with suppress(Exception):
                async with self.store.write() as conn:
                    await conn.execute(
                        update(webhook_endpoints)
                        .where(_E.id == endpoint, _E.owner == self.instance)
                        .values(lease_until=None, owner=None)
                    )
            self.wake()  # more may be due meanwhile (or another endpoint waits for a slot)

    async def _head(self, endpoint: str, now: datetime) -> Job | None:
        """The endpoint's oldest pending delivery if it is due and the lease is still ours."""
        async with self.store.read() as conn:
            row = (
                await conn.execute(
                    select(
                        _D.id,
                        _D.tenant_id,
                        _D.attempts,
                        _D.due_at,
                        _E.url,
                        _E.secret,
                        webhook_events.c.id.label("event"),
                        webhook_events.c.body,
                    )
                    .join(webhook_endpoints, _E.id == _D.endpoint_id)
                    .join(webhook_events, webhook_events.c.id == _D.event_id)
                    .where(
                        _D.endpoint_id == endpoint,
                        _D.state == "pending",
                        _E.enabled == true(),
                        _E.owner == self.instance,
                    )
                    .order_by(_D.id)
                    .limit(1)
                )
            ).first()
        if row is None or as_utc(row.due_at) > now:
            return None
        return Job(
            row.id,
            row.tenant_id,
            endpoint,
            row.url,
            row.secret,
            row.event,
            row.body.encode(),
            row.attempts,
        )

    # -- after an attempt --------------------------------------------------------------------

    async def _finish(self, job: Job, outcome: Outcome) -> bool:
        """Record the attempt; True if the endpoint may go on with its next delivery."""
        async with self.store.write() as conn:
            return await attempts.record(conn, job, outcome, self.settings, self.lease)

    async def _prune(self, now: datetime) -> None:
        cutoff = now - timedelta(days=self.settings.retention_days)
        async with self.store.write() as conn:
            await conn.execute(delete(webhook_log).where(webhook_log.c.at < cutoff))
            await conn.execute(delete(webhook_events).where(webhook_events.c.created_at < cutoff))
        self._pruned = time.monotonic()
