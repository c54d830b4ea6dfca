"""The outbox consumer: publishes the rows a host inserts into ``tidings_outbox``.

One :class:`OutboxConsumer` per process, given the service and the settings
(``TIDINGS_OUTBOX_URL``). ``await start()`` / ``await stop()``, or ``async with``.

Invariants:
- Exactly once. A row is published with the idempotency key :attr:`Row.idempotency_key`
  through :meth:`Tidings.publish_many` (the normal path: limits, group commit, hub, broker,
  channels), then deleted in the transaction that claimed it. A crash or a lost connection
  between the two leaves the row; the next claim publishes it again and the store answers with
  the notification it already has (the key is kept with the notification for
  ``TIDINGS_RETENTION_DAYS``).
- Insert order per tenant. One instance at a time publishes a tenant (:mod:`tidings.outbox.rows`
  tells how), a tenant's claimed rows go out in id order in one request per chunk, and a
  tenant whose chunk failed for a passing reason (store unavailable) stops there for this
  round: its later rows stay in the outbox behind it.
- A bad row never blocks the rest. A row refused for what it is (invalid payload, unknown
  tenant, over a limit: any 4xx of the publish path) is moved to ``tidings_outbox_dead`` with its
  error and counted in ``tidings_outbox_dead``; the rows after it flow on.
- Woken by ``LISTEN tidings_outbox`` (the trigger of the documented DDL), else every
  ``TIDINGS_OUTBOX_POLL_INTERVAL`` seconds. After a round that did work it goes again at once.
- Neither the outbox database being down nor anything else stops the process: the consumer
  logs, backs off (0.5 s doubling up to 10 s) and retries.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Self

from pydantic import ValidationError

from tidings.config import Settings
from tidings.delivery.postgres import dsn_of
from tidings.domain.notifications import NewNotification
from tidings.errors import Code, TidingsError, Unavailable
from tidings.outbox import rows
from tidings.outbox.rows import Row
from tidings.outbox.schema import CHANNEL
from tidings.service import Tidings, audience_targets

if TYPE_CHECKING:
    import asyncpg

log = logging.getLogger(__name__)

MAX_BACKOFF = 10.0
CONTENDED_RETRY = 0.25  # seconds: another instance held every candidate tenant
LISTEN_CHECK = 5.0  # seconds between health checks of the listening connection
ERROR_CHARS = 2000


@dataclass
class _Outcome:
    published: list[int] = field(default_factory=list)
    dead: dict[int, str] = field(default_factory=dict)
    failed: bool = False  # a tenant stopped on a passing error: back off


def _is_bad_row(error: BaseException) -> bool:
    return isinstance(error, TidingsError) and error.status < 500


def _describe(error: BaseException) -> str:
    if isinstance(error, ValidationError):
        parts = [
            f"{'.'.join(str(p) for p in e['loc']) or 'payload'}: {e['msg']}"
            for e in error.errors(include_url=False)
        ]
        text = "validation_failed: " + "; ".join(parts)
    elif isinstance(error, TidingsError):
        text = f"{error.code}: {error.detail}"
    else:
        text = repr(error)
    return text[:ERROR_CHARS]


class OutboxConsumer:
    """Publishes ``tidings_outbox`` rows of the database at ``settings.outbox_url``."""

    def __init__(
        self, service: Tidings, settings: Settings | None = None, *, batch: int | None = None
    ) -> None:
        self.service = service
        self.settings = settings or service.settings
        if not self.settings.outbox_url:
            raise ValueError("TIDINGS_OUTBOX_URL is not set")
        self.dsn = dsn_of(self.settings.outbox_url)
        self.batch = batch or self.settings.outbox_batch
        self.poll_interval = self.settings.outbox_poll_interval
        # pg_stat_activity shows which process holds a claim (its advisory locks in pg_locks)
        self.application_name = f"tidings-outbox pid={os.getpid()}"
        self.lag = 0.0  # seconds: age of the oldest waiting row, as last seen
        self.listening = asyncio.Event()  # set while LISTEN is in place (tests wait on it)
        self.idle = asyncio.Event()  # set while resting after a round that found nothing to do
        self._wake = asyncio.Event()
        self._pool: asyncpg.Pool | None = None
        self._tasks: list[asyncio.Task[None]] = []

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Start listening and consuming in the background; returns at once (the outbox
        database may still be unreachable: the consumer retries on its own)."""
        self._tasks = [
            asyncio.create_task(self._consume(), name="tidings-outbox"),
            asyncio.create_task(self._listen(), name="tidings-outbox-listen"),
        ]
        log.info("outbox consumer started")

    async def stop(self) -> None:
        """Stop both tasks; a claim in progress is rolled back (its rows stay for later)."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._pool is not None:
            pool, self._pool = self._pool, None
            try:
                await asyncio.wait_for(pool.close(), timeout=5)
            except (TimeoutError, OSError):
                pool.terminate()
        log.info("outbox consumer stopped")

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def pool(self) -> asyncpg.Pool:
        """The connection pool to the outbox database (the operator routes use it too)."""
        if self._pool is None:
            import asyncpg

            try:
                self._pool = await asyncpg.create_pool(
                    self.dsn,
                    min_size=1,
                    max_size=3,
                    timeout=10,
                    server_settings={"application_name": self.application_name},
                )
            except (OSError, asyncpg.PostgresError, TimeoutError) as error:
                raise Unavailable(
                    f"The outbox database is unreachable: {error!r}", code=Code.OUTBOX_UNAVAILABLE
                ) from error
        return self._pool

    def wake(self) -> None:
        self.idle.clear()
        self._wake.set()

    # -- consuming -------------------------------------------------------------------------

    async def _consume(self) -> None:
        delay = 0.5
        while True:
            self._wake.clear()
            try:
                outcome, contended = await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("outbox round failed (%r); retrying in %.1fs", error, delay)
                await self._rest(delay)
                delay = min(delay * 2, MAX_BACKOFF)
                continue
            if outcome.failed:
                await self._rest(delay)
                delay = min(delay * 2, MAX_BACKOFF)
            elif outcome.published or outcome.dead:
                delay = 0.5  # there may be more: go again at once
            else:
                delay = 0.5
                if not self._wake.is_set():
                    self.idle.set()
                await self._rest(CONTENDED_RETRY if contended else self.poll_interval)
                self.idle.clear()

    async def _rest(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)

    async def run_once(self) -> tuple[_Outcome, bool]:
        """One round: claim a batch, publish it, delete or move aside its rows, commit.
        Returns what was done and whether other instances held every candidate tenant."""
        pool = await self.pool()
        async with pool.acquire() as conn:
            tenants = await rows.candidate_tenants(conn, self.batch)
            if not tenants:
                self._set_lag(0.0)
                return _Outcome(), False
            async with conn.transaction():
                mine = await rows.lock_tenants(conn, tenants)
                claimed = await rows.claim(conn, mine, self.batch)
                outcome = await self._publish(claimed)
                await rows.delete(conn, outcome.published)
                await rows.bury(conn, outcome.dead)
            self._set_lag(await rows.lag(conn))
        self.service.metrics.outbox_published.inc(len(outcome.published))
        self.service.metrics.outbox_dead.inc(len(outcome.dead))
        for row_id, error in outcome.dead.items():
            log.warning("outbox row %d moved to tidings_outbox_dead: %s", row_id, error)
        return outcome, not mine

    def _set_lag(self, seconds: float) -> None:
        self.lag = seconds
        self.service.metrics.outbox_lag.set(seconds)

    async def _publish(self, claimed: Sequence[Row]) -> _Outcome:
        outcome = _Outcome()
        by_tenant: dict[str, list[tuple[Row, NewNotification]]] = {}
        for row in claimed:
            try:
                new = NewNotification.model_validate_json(row.payload)
                self.service.check_limits(new)
            except (ValidationError, TidingsError) as error:
                if isinstance(error, TidingsError) and not _is_bad_row(error):
                    raise
                outcome.dead[row.id] = _describe(error)
                continue
            by_tenant.setdefault(row.tenant, []).append((row, new))
        results = await asyncio.gather(
            *(self._publish_tenant(tenant, items) for tenant, items in by_tenant.items())
        )
        for result in results:
            outcome.published += result.published
            outcome.dead.update(result.dead)
            outcome.failed = outcome.failed or result.failed
        return outcome

    async def _publish_tenant(
        self, tenant: str, items: list[tuple[Row, NewNotification]]
    ) -> _Outcome:
        """A tenant's rows in id order, a chunk per request; stops at a passing failure."""
        outcome = _Outcome()
        for chunk in self._chunks(items):
            try:
                await self.service.publish_many(
                    tenant, [new for _, new in chunk], keys=[r.idempotency_key for r, _ in chunk]
                )
            except Exception as error:
                if not _is_bad_row(error):
                    return self._stopped(tenant, outcome, error)
                if getattr(error, "code", "") == "tenant_not_found" or len(chunk) == 1:
                    outcome.dead.update({r.id: _describe(error) for r, _ in chunk})
                    continue
                if not await self._one_by_one(tenant, chunk, outcome):
                    return outcome
                continue
            outcome.published += [r.id for r, _ in chunk]
        return outcome

    async def _one_by_one(
        self, tenant: str, chunk: list[tuple[Row, NewNotification]], outcome: _Outcome
    ) -> bool:
        """Find the culprit of a refused chunk: each row alone. False if the tenant stopped."""
        for row, new in chunk:
            try:
                await self.service.publish(tenant, new, idempotency_key=row.idempotency_key)
            except Exception as error:
                if not _is_bad_row(error):
                    self._stopped(tenant, outcome, error)
                    return False
                outcome.dead[row.id] = _describe(error)
                continue
            outcome.published.append(row.id)
        return True

    def _stopped(self, tenant: str, outcome: _Outcome, error: BaseException) -> _Outcome:
        log.warning("outbox publish for tenant=%s failed (%r); its rows wait", tenant, error)
        outcome.failed = True
        return outcome

    def _chunks(
        self, items: list[tuple[Row, NewNotification]]
    ) -> Iterator[list[tuple[Row, NewNotification]]]:
        """Consecutive chunks within the per-request audience cap (TIDINGS_MAX_REQUEST_TARGETS)."""
        cap = self.settings.max_request_targets
        chunk: list[tuple[Row, NewNotification]] = []
        targets = 0
        for item in items:
            count = audience_targets(item[1])
            if chunk and targets + count > cap:
                yield chunk
                chunk, targets = [], 0
            chunk.append(item)
            targets += count
        if chunk:
            yield chunk

    # -- waking ----------------------------------------------------------------------------

    async def _listen(self) -> None:
        """LISTEN on a connection of its own; reconnect with backoff when it is lost. Each
        (re)connect wakes the consumer: rows may have come while nobody listened."""
        import asyncpg

        delay = 0.5
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(
                    self.dsn,
                    timeout=10,
                    server_settings={"application_name": f"{self.application_name} listen"},
                )
                await conn.add_listener(CHANNEL, self._on_notify)
                self.listening.set()
                self.wake()
                delay = 0.5
                while not conn.is_closed():
                    await asyncio.sleep(LISTEN_CHECK)
                    await conn.execute("SELECT 1", timeout=LISTEN_CHECK)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("outbox LISTEN failed (%r); polling, retry in %.1fs", error, delay)
            finally:
                self.listening.clear()
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(conn.close(), timeout=2)
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_BACKOFF)

    def _on_notify(self, *_: object) -> None:
        self.wake()
