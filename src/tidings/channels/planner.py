"""The fan-out: for each committed notification, once, decide who is pushed and who gets it in
a digest, and write that down (push outbox rows, delivery log rows).

Exactly once per notification, whatever the number of instances: a per-tenant cursor
(``channel_cursors.last_seq``) is read ``FOR UPDATE`` (PostgreSQL; on SQLite the write
transaction holds the write lock), the next batch after it is planned, and the outbox rows, the
log rows and the advanced cursor commit together. Seq order is commit order, so a cursor never
passes a notification that could still commit below it.

The publish path only *wakes* the planner (``after_publish`` hook, no I/O, noting the tenants);
notifications published by other instances are found by polling ``tenants.last_seq > cursor``
every second. Cost follows the work there is:

- While nothing happens the poll backs off: after each full poll that found nothing pending
  (and no publish here or relayed from another instance meanwhile) the pause doubles, up to
  ``TIDINGS_IDLE_POLL_MAX``; a publish here or a notification the broker relays
  (``Hub.on_relayed``) brings it back to a second at once. So an idle instance does not read
  the store every second, and a busy one polls exactly as before; the longest a notification
  waits for its plan is that maximum, and only when its instance died before planning it and
  no other notification moved anywhere since.

- Woken by local publishes, the planner plans just their tenants (no query for pending ones),
  and under continuous publishing it rests ``MIN_GAP`` seconds between the end of a pass and
  the start of the next (publishes that arrive meanwhile are planned together; a planner idle
  for longer starts at once): one planning transaction per tenant per pass, not per publish
  group, so it does not take the SQLite write lock turn about with the group committer.
- Only users who can receive something are read: those with a push subscription, and, when
  e-mail is configured, those with an address. A tenant with none of them (no channel for
  anyone) has its cursor moved to its last seq without reading a notification.
- Such a tenant is then remembered (:class:`Unreachable`): its publishes do not wake the
  planner (no wake-up, no SQL; a pass woken by others skips it too), and its cursor is moved
  on by the full poll (once per ``interval``): ONE ``UPDATE`` per such tenant, all in one
  write transaction, which moves the cursor only if the store still holds no channel of the
  tenant (else the tenant is planned fully), instead of a planning transaction each; with
  many tenants publishing, that poll was the planner's main cost. The memory only ever
  *defers* planning to that poll, never skips a notification: the poll checks the store. It is
  forgotten at once, here and on every other instance, when a user of the tenant gains a
  channel (a push subscription saved, preferences or an e-mail address recorded: the ``p``
  broker message, ``Hub.on_preferences``), which also wakes the planner for the tenant (its
  publishes since woke nothing); it is ignored while the broker is away or once it came back.
- Parsed profiles and tenant defaults are kept while their stored row is unchanged (compared
  with the row read in the planning transaction, so a change anywhere is seen at once).
Tenants that existed when migration ``0003_channels`` ran got a cursor at their last seq (no
history is pushed); tenants created later start at 0. Notifications older than
``TIDINGS_PUSH_MAX_AGE`` are never pushed (``skipped: stale``), e.g. after a long outage.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable, Generator
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Connection, bindparam, exists, func, insert, or_, select, update

from tidings.channels import deliverylog, profiles
from tidings.channels._sql import upsert
from tidings.channels.clock import as_utc
from tidings.channels.deliverylog import entry
from tidings.channels.preferences import Effective
from tidings.channels.profiles import Profile
from tidings.channels.tables import channel_cursors, channel_users, push_outbox, push_subscriptions
from tidings.domain.notifications import Notification
from tidings.store import notifications as nq
from tidings.store.tables import tenants

if TYPE_CHECKING:
    from tidings.channels.deps import WorkerDeps
    from tidings.delivery.hub import Hub

log = logging.getLogger(__name__)
T = TypeVar("T")
BATCH = 100
MIN_GAP = 0.05  # seconds from the end of a pass to the next one woken by publishes
_C = channel_cursors.c
_S = push_subscriptions.c
_U = channel_users.c
# The full poll's move of a remembered-unreachable tenant's cursor (Planner._skip): from the
# cursor it read to the tenant's last seq, only if the store still holds no push subscription
# of the tenant (and, with e-mail on, no address): the store decides, in one statement, built
# once.
_SKIP = (
    update(channel_cursors)
    .where(
        _C.tenant_id == bindparam("tenant"),
        _C.last_seq == bindparam("cursor"),
        ~exists().where(_S.tenant_id == bindparam("tenant")),
    )
    .values(last_seq=bindparam("last"), updated_at=bindparam("now"))
)
_SKIP_MAILING = _SKIP.where(
    ~exists().where(_U.tenant_id == bindparam("tenant"), _U.email.is_not(None))
)
# The full poll's read: (tenant, its cursor or None, its last seq) of every tenant with
# something not planned yet.
_PENDING = (
    select(tenants.c.id, _C.last_seq, tenants.c.last_seq)
    .select_from(tenants.outerjoin(channel_cursors, _C.tenant_id == tenants.c.id))
    .where(or_(_C.last_seq.is_(None), tenants.c.last_seq > _C.last_seq))
)
Pending = tuple[str, int | None, int]
"""A tenant with something not planned yet: (tenant, its cursor or None, its last seq)."""


def _run_steps_sync(conn: Connection, steps: Generator[tuple[Any, Any], Any, T]) -> T:
    """Run :meth:`Planner._poll_steps` in the caller's transaction of a synchronous
    connection: the first statement's rows, then each statement's result, sent back."""
    statement, params = next(steps)
    answer: Any = conn.execute(statement, params).all()
    while True:
        try:
            statement, params = steps.send(answer)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        answer = conn.execute(statement, params)


@dataclass
class Recipient:
    profile: Profile
    prefs: Effective
    devices: list[int]
    live: bool


class Unreachable:
    """Tenants in which, when last planned, nobody could be pushed or mailed (see the module
    docstring): an entry holds while the hub's broker epoch is the one it was noted in."""

    __slots__ = ("_hub", "_tenants", "on_reachable")

    def __init__(self, on_reachable: Callable[[str], None] | None = None) -> None:
        self._hub: Hub | None = None
        self._tenants: dict[str, int] = {}
        # Told of a tenant that was remembered here and may be reachable now: publishes it
        # had meanwhile woke nothing, so the planner looks at it at once (not at its poll).
        self.on_reachable = on_reachable

    def watch(self, hub: Hub) -> None:
        """Be told by ``hub`` of preference and channel changes (here and elsewhere)."""
        self._hub = hub
        hub.on_preferences.append(self.reachable)

    def close(self) -> None:
        if self._hub is not None and self.reachable in self._hub.on_preferences:
            self._hub.on_preferences.remove(self.reachable)
        self._tenants.clear()

    def note(self, tenant: str) -> None:
        hub = self._hub
        if hub is not None and hub.views_trusted:
            self._tenants[tenant] = hub.broker_epoch

    def __contains__(self, tenant: str) -> bool:
        hub = self._hub
        epoch = self._tenants.get(tenant)
        if hub is None or epoch is None:
            return False
        if epoch != hub.broker_epoch or not hub.views_trusted:
            del self._tenants[tenant]
            return False
        return True

    def forget(self, tenant: str) -> None:
        """Not remembered any more (the planner found a channel there itself)."""
        self._tenants.pop(tenant, None)

    def reachable(self, tenant: str, user: str | None = None) -> None:
        """A user of ``tenant`` may have gained a channel (here or on another instance): not
        remembered any more, and if it was, :attr:`on_reachable` hears of it."""
        if self._tenants.pop(tenant, None) is not None and self.on_reachable is not None:
            self.on_reachable(tenant)


class Planner:
    def __init__(self, deps: WorkerDeps) -> None:
        self.ch = deps
        self._wake = asyncio.Event()
        self._woken: set[str] = set()  # tenants published to here since the last pass
        self.profiles = profiles.ProfileCache()
        self.unreachable = Unreachable(on_reachable=self._reachable)
        self.interval = 1.0  # the full poll's base pause (s)
        self.idle_max = max(self.interval, deps.settings.idle_poll_max)
        self.every = self.interval  # the pause now: doubles per idle full poll, up to idle_max
        self._active = False  # a publish here or relayed since the last full poll

    def activity(self, tenant: str | None = None) -> None:
        """Something was published (here or relayed from another instance): the full poll goes
        back to its base pause, at once if it was resting longer."""
        self._active = True
        if self.every > self.interval:
            self.every = self.interval
            self._wake.set()

    def _reachable(self, tenant: str) -> None:
        """A tenant left :class:`Unreachable`: its publishes since did not wake this planner,
        so a pass plans it now."""
        self._woken.add(tenant)
        self._wake.set()

    async def on_publish(self, published: list[Notification]) -> None:
        """``service.after_publish`` hook: no I/O, just note the tenants and wake the planner;
        not for a tenant known :class:`Unreachable` (its pass would skip it: the full poll moves
        its cursor), so a publish nobody can be pushed for costs no wake-up here."""
        if published:
            self.activity()
            woken = {item.tenant for item in published}
            woken.difference_update([t for t in woken if t in self.unreachable])
            if woken:
                self._woken.update(woken)
                self._wake.set()

    async def run_forever(self) -> None:
        loop = asyncio.get_running_loop()
        tenants: list[str] | None = None  # None: every pending tenant (start, and each poll)
        polled = loop.time()
        while True:
            full = tenants is None
            if full:
                polled = loop.time()
            try:
                planned = await self.run_once(tenants)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("channel fan-out failed (will retry): %r", error)
                planned = -1  # not idle: try again at the base pause
            if full:
                idle = planned == 0 and not self._active
                self.every = min(self.every * 2, self.idle_max) if idle else self.interval
                self._active = False
            ended = loop.time()
            with suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(0.0, polled + self.every - ended))
            if self._wake.is_set():
                rest = MIN_GAP - (loop.time() - ended)
                if rest > 0:  # publishing continuously: let the next ones join this pass
                    await asyncio.sleep(rest)
                self._wake.clear()
            # every ``self.every`` a full poll (other instances' publishes), else the woken ones
            tenants = None if loop.time() - polled >= self.every else sorted(self._woken)
            self._woken.clear()

    async def run_once(self, tenants: list[str] | None = None) -> int:
        """Plan what is pending for ``tenants`` (default: every tenant with something pending);
        of given ``tenants``, those known :class:`Unreachable` are left to the next full poll."""
        planned = 0
        if tenants is None:
            pending, planned, skipped = await self._full_poll()
            tenants = [tenant for tenant, _, _ in pending if tenant not in skipped]
        else:
            tenants = [t for t in tenants if t not in self.unreachable]
        for tenant in tenants:
            more = True
            while more:
                done, more = await self._plan(tenant)
                planned += done
        return planned

    async def _full_poll(self) -> tuple[list[Pending], int, set[str]]:
        """The full poll's reads and writes (:meth:`_poll_steps`): every tenant with something
        not planned yet, and of those remembered :class:`Unreachable`, the notifications
        covered and the tenants whose cursors were moved.

        On SQLite in a file all of it is ONE write transaction on a synchronous connection
        (``Store.run_write``: on the loop when the write lock is free, as the group commit):
        through aiosqlite and SQLAlchemy's async execution the same two tiny statements cost
        ~3.6 ms of CPU, once a second while anything is published (docs/performance.md,
        session 12). Elsewhere a read transaction, then a write transaction if there is
        anything to write."""
        store, now = self.ch.store, self.ch.clock.now()
        stmt = _SKIP_MAILING if self.ch.settings.smtp_host else _SKIP
        steps = self._poll_steps(stmt, now)
        if store.writes_in_thread:
            return await store.run_write(lambda conn: _run_steps_sync(conn, steps))
        async with store.read() as conn:
            statement, params = next(steps)
            rows = (await conn.execute(statement, params)).all()
        try:
            statement, params = steps.send(rows)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        async with store.write() as conn:
            while True:
                answer = await conn.execute(statement, params)
                try:
                    statement, params = steps.send(answer)
                except StopIteration as done:
                    return done.value  # type: ignore[no-any-return]

    def _poll_steps(
        self, skip: Any, now: datetime
    ) -> Generator[tuple[Any, Any], Any, tuple[list[Pending], int, set[str]]]:
        """The full poll's statements, one ``yield`` each: first the read of ``(tenant,
        cursor, last seq)`` of every tenant with something not planned yet (its rows are sent
        back), the cursor ``None`` for a tenant that had none; then the writes (their results
        are sent back):

        - a cursor at 0 for tenants without one: created after migration 0003 (which gave
          every tenant that existed then a cursor at its last seq), planned from the start;
        - the full poll's turn for tenants remembered :class:`Unreachable`: each cursor moved
          from what the poll read to the tenant's last seq by ONE statement (``skip``) that
          also checks, in the store, that nobody of the tenant has a channel, instead of a
          planning transaction of several statements each. A tenant not moved (a channel
          appeared without this instance hearing of it, or another planner moved the cursor
          meanwhile) is planned as any other.
        """
        rows = yield (_PENDING, None)
        missing = [tenant for tenant, cursor, _ in rows if cursor is None]
        if missing:
            values = [{"tenant_id": t, "last_seq": 0, "updated_at": now} for t in missing]
            yield (
                upsert(self.ch.store.engine)(channel_cursors)
                .values(values)
                .on_conflict_do_nothing(index_elements=["tenant_id"]),
                None,
            )
        pending = [
            (tenant, None if cursor is None else int(cursor), int(last))
            for tenant, cursor, last in rows
        ]
        covered, moved = 0, set()
        for tenant, cursor, last in pending:
            if cursor is None or tenant not in self.unreachable:
                continue
            params = {"tenant": tenant, "cursor": cursor, "last": last, "now": now}
            if (yield (skip, params)).rowcount == 1:
                covered += last - cursor
                moved.add(tenant)
        return pending, covered, moved

    async def _plan(self, tenant: str) -> tuple[int, bool]:
        """(notifications covered, whether more may be pending) for the next batch."""
        ch, now = self.ch, self.ch.clock.now()
        async with ch.store.write() as conn:
            cursor = (
                await conn.execute(
                    select(_C.last_seq).where(_C.tenant_id == tenant).with_for_update()
                )
            ).scalar_one_or_none()
            if cursor is None:  # a tenant created after migration 0003: plan from the start
                stmt = upsert(conn)(channel_cursors).values(
                    tenant_id=tenant, last_seq=0, updated_at=now
                )
                await conn.execute(stmt.on_conflict_do_nothing(index_elements=["tenant_id"]))
                # Read it back locked: another instance's planner may have inserted it first
                # (ours then waited for its commit and did nothing) and advanced it already.
                cursor = (
                    await conn.execute(
                        select(_C.last_seq).where(_C.tenant_id == tenant).with_for_update()
                    )
                ).scalar_one()
            devices = await self._devices(conn, tenant)
            emailing = bool(self.ch.settings.smtp_host)
            if not devices and not (emailing and await profiles.any_email(conn, tenant)):
                self.unreachable.note(tenant)
                return await self._skip_to_last(conn, tenant, int(cursor), now), False
            self.unreachable.forget(tenant)
            batch = await nq.fetch_after(conn, tenant, int(cursor), limit=BATCH)
            if not batch:
                return 0, False
            recipients = await self._recipients(conn, tenant, devices, emailing)
            backlog = 0
            if devices:
                backlog = (
                    await conn.execute(
                        select(func.count())
                        .select_from(push_outbox)
                        .where(push_outbox.c.tenant_id == tenant)
                    )
                ).scalar_one()
            outbox: list[dict[str, Any]] = []
            logs: list[dict[str, Any]] = []
            for item in batch:
                for recipient in recipients:
                    self._decide(item, recipient, now, outbox, logs, int(backlog))
            if outbox:
                await conn.execute(insert(push_outbox), outbox)
            await deliverylog.write(conn, logs)
            await self._advance(conn, tenant, batch[-1].seq, now)
        if outbox:
            ch.wake_push()
        return len(batch), len(batch) == BATCH

    async def _skip_to_last(self, conn: Any, tenant: str, cursor: int, now: datetime) -> int:
        """Nobody of ``tenant`` can be pushed or mailed: move the cursor past everything
        committed (``tenants.last_seq``: every seq up to it has committed) without reading it."""
        last = (
            await conn.execute(select(tenants.c.last_seq).where(tenants.c.id == tenant))
        ).scalar_one_or_none()
        if last is None or int(last) <= cursor:
            return 0
        await self._advance(conn, tenant, int(last), now)
        return int(last) - cursor

    async def _advance(self, conn: Any, tenant: str, seq: int, now: datetime) -> None:
        await conn.execute(
            update(channel_cursors)
            .where(_C.tenant_id == tenant)
            .values(last_seq=seq, updated_at=now)
        )

    async def _devices(self, conn: Any, tenant: str) -> dict[str, list[int]]:
        devices: dict[str, list[int]] = defaultdict(list)
        rows = await conn.execute(select(_S.id, _S.user_id).where(_S.tenant_id == tenant))
        for sub_id, user in rows:
            devices[user].append(int(sub_id))
        return devices

    async def _recipients(
        self, conn: Any, tenant: str, devices: dict[str, list[int]], emailing: bool
    ) -> list[Recipient]:
        known = await profiles.reachable(conn, tenant, bool(devices), emailing, self.profiles)
        defaults = await self.profiles.tenant_prefs(conn, tenant)
        known = [p for p in known if devices.get(p.user) or (emailing and p.email)]
        live = await self.ch.live(conn, tenant, [p.user for p in known if devices[p.user]])
        return [
            Recipient(p, p.effective(defaults), devices.get(p.user, []), p.user in live)
            for p in known
        ]

    def _decide(
        self,
        item: Notification,
        r: Recipient,
        now: datetime,
        outbox: list[dict[str, Any]],
        logs: list[dict[str, Any]],
        backlog: int,
    ) -> None:
        user = r.profile.user
        if not item.visible_to(user, frozenset(r.profile.roles)) or item.by(user):
            return  # not theirs to see, or their own action (its actor: issue 10)
        settings = self.ch.settings

        def note(channel: Any, status: Any, reason: str | None = None, **kw: Any) -> None:
            logs.append(
                entry(
                    item.tenant, item.seq, channel, status, at=now, user=user, reason=reason, **kw
                )
            )

        if r.devices:
            delay = settings.push_unread_delay
            if not r.prefs.allows(item.type, "push"):
                note("push", "skipped", "preference")
            elif r.prefs.quiet_at(now):
                note("push", "skipped", "quiet_hours")
            elif as_utc(item.created_at) < now - timedelta(seconds=settings.push_max_age):
                note("push", "skipped", "stale")
            elif r.live and delay <= 0:
                note("push", "skipped", "live_stream")
            elif backlog + len(outbox) >= settings.push_queue_limit:
                note("push", "failed", "queue_full")
            else:
                due = now + timedelta(seconds=delay) if r.live else now
                for device in r.devices:
                    outbox.append(
                        {
                            "tenant_id": item.tenant,
                            "seq": item.seq,
                            "user_id": user,
                            "subscription_id": device,
                            "state": "pending",
                            "attempts": 0,
                            "due_at": due,
                            "created_at": now,
                        }
                    )
                    detail = {"unless_read_by": due.isoformat()} if r.live else None
                    note("push", "queued", None, target=f"device:{device}", detail=detail)
        if r.profile.email and settings.smtp_host:
            digest = r.prefs.digest
            if digest.cadence == "off" or not r.prefs.master("email"):
                return
            if not r.prefs.allows(item.type, "email"):
                note("email", "skipped", "preference", target="email")
                return
            when = "hourly" if digest.cadence == "hourly" else f"daily at {digest.hour:02d}:00"
            note(
                "email",
                "queued",
                None,
                target="email",
                detail={"digest": f"{when} {r.prefs.zone_name}"},
            )
