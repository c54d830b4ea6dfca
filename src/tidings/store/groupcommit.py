"""Group commit: publishes that arrive together share one write transaction and one commit.

A :class:`GroupCommitter` holds a queue of publish requests and at most one writer task per
store. The task starts the moment the queue stops being empty and takes whatever is queued then
(up to ``max_notifications``); requests that arrive while a group commits form the next group.
Between two groups the task lets the loop run its other ready work (streams, connects) first.

Invariants:
- No added latency when idle: nothing waits for company. A lone request is taken by the writer
  task at once and commits alone; there is no timer anywhere in the committer.
- Durable before answered: a request's future is resolved only after its group committed and
  its notifications were announced (``announce``), in seq order per tenant, before the next
  group starts.
- All-or-nothing per request, failing alone: a request refused inside the group (unknown
  tenant, idempotency-key mismatch) writes nothing and the others commit. If the group's
  transaction fails as a whole (a constraint error, say), each of its requests runs again in a
  transaction of its own, so only the culprit fails. A store that is unavailable fails them all.
- Seqs are assigned by :func:`tidings.store.notifications.insert_group` under the tenant locks,
  so gap-free per-tenant seqs and idempotency are exactly as for a lone publish.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import partial

from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.domain.notifications import NewNotification, Notification, utcnow
from tidings.errors import Unavailable
from tidings.store import notifications as nq
from tidings.store.engine import Store

log = logging.getLogger(__name__)

Results = list[tuple[Notification, bool]]
InTransaction = Callable[[AsyncConnection, list[Notification]], Awaitable[bool]]
"""Called inside the group's transaction with its new notifications; True if it announced them
(a transactional broker: PostgreSQL NOTIFY leaves at commit)."""
Announce = Callable[[list[Notification], bool], Awaitable[None]]
"""Called after the commit with the group's new notifications and whether to broadcast them."""

MAX_NOTIFICATIONS = 1000
LOOP_MAX_NOTIFICATIONS = 300
# On SQLite in a file every group commits through ``Store.run_write``: on the loop while the
# write lock is free, with no hand-off per statement. Groups of more than 100 notifications used
# to go through aiosqlite's thread a statement at a time, where the thread's rows and the loop's
# Python competed for the GIL; on the loop a batch publish of 32 x 100 costs 0.69x the CPU per
# notification (median of eight pairs, docs/performance.md, session 18). Such a group holds the
# loop for the whole transaction, so there groups are at most ``LOOP_MAX_NOTIFICATIONS`` (5-8 ms
# of the loop's time each on our 2-core VM, where one group of 1,000 held it 17-19 ms) and the
# writer task lets the loop take a turn between groups; the larger groups saved nothing
# measurable.


@dataclass(eq=False)
class _Waiter:
    request: nq.Request
    future: asyncio.Future[Results] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )

    @property
    def size(self) -> int:
        return len(self.request.items)


class GroupCommitter:
    """Commits concurrent publish requests in shared transactions (one writer per store)."""

    def __init__(
        self,
        store: Store,
        *,
        in_transaction: InTransaction,
        announce: Announce,
        max_notifications: int | None = None,
    ) -> None:
        self.store = store
        if max_notifications is None:  # a group that runs on the loop holds it: smaller
            on_loop = store.writes_in_thread
            max_notifications = LOOP_MAX_NOTIFICATIONS if on_loop else MAX_NOTIFICATIONS
        self.max_notifications = max_notifications
        self.group_sizes: deque[int] = deque(maxlen=1000)  # requests per committed group
        self._in_transaction = in_transaction
        self._announce = announce
        self._queue: deque[_Waiter] = deque()
        self._task: asyncio.Task[None] | None = None

    async def publish(
        self, tenant: str, items: Sequence[NewNotification], keys: Sequence[str | None]
    ) -> Results:
        """Store ``items`` for ``tenant`` (all or none); answered after the commit."""
        waiter = _Waiter(nq.Request(tenant, tuple(items), tuple(keys)))
        self._queue.append(waiter)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._drain(), name="tidings-group-commit"
            )
        return await waiter.future

    async def _drain(self) -> None:
        group: list[_Waiter] = []
        try:
            while self._queue:
                group = self._take()
                if group:
                    await self._commit(group)
                group = []
                if self._queue:
                    await _let_the_loop_run()
        except BaseException:  # cancelled (the loop is closing): nobody is left hanging
            failure = Unavailable("The publish was interrupted; retry it.")
            for waiter in [*group, *self._queue]:
                _settle(waiter, failure)
            self._queue.clear()
            raise
        finally:
            self._task = None

    def _take(self) -> list[_Waiter]:
        """What is queued now, up to ``max_notifications`` (always at least one request)."""
        group: list[_Waiter] = []
        total = 0
        while self._queue:
            waiter = self._queue[0]
            if waiter.future.done():  # its caller went away before it was taken
                self._queue.popleft()
                continue
            if group and total + waiter.size > self.max_notifications:
                break
            group.append(self._queue.popleft())
            total += waiter.size
        return group

    async def _commit(self, group: list[_Waiter]) -> None:
        try:
            outcomes, published, announced = await self._transact(group)
        except Unavailable as error:
            for waiter in group:
                _settle(waiter, error)
            return
        except Exception as error:
            if len(group) == 1:
                _settle(group[0], error)
                return
            log.info(
                "group of %d failed (%r); committing its requests one by one", len(group), error
            )
            for waiter in group:
                await self._commit([waiter])
            return
        self.group_sizes.append(len(group))
        try:
            await self._announce(published, not announced)
        except Exception:  # the store has them; hubs catch up by seq
            log.exception("announcing a group failed")
        for waiter, outcome in zip(group, outcomes, strict=True):
            _settle(waiter, outcome)

    async def _transact(
        self, group: list[_Waiter]
    ) -> tuple[list[nq.Outcome], list[Notification], bool]:
        requests = [w.request for w in group]
        if self.store.writes_in_thread:
            # SQLite in a file: the whole transaction on a synchronous connection, no hand-off
            outcomes, published = await self.store.run_write(
                partial(nq.insert_group_sync, requests=requests, now=utcnow())
            )
            return outcomes, published, False  # no transactional broker announces on SQLite
        async with self.store.write() as conn:
            outcomes, published = await nq.insert_group(conn, requests, now=utcnow())
            announced = bool(published) and await self._in_transaction(conn, published)
        return outcomes, published, announced


async def _let_the_loop_run() -> None:
    """Return after one whole turn of the loop: the callbacks of what its poll found meanwhile
    (sockets ready, due timers: the streams' edge and clock) run before the caller goes on (a
    group on SQLite runs on the loop without yielding). One ``sleep(0)`` is not enough: the
    loop queues what its poll finds after this task's next step. Tasks those callbacks wake
    run after it."""
    await asyncio.sleep(0)
    await asyncio.sleep(0)


def _settle(waiter: _Waiter, outcome: nq.Outcome | BaseException) -> None:
    if waiter.future.done():
        return
    if isinstance(outcome, BaseException):
        waiter.future.set_exception(outcome)
    else:
        waiter.future.set_result(outcome)
