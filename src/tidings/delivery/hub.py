"""The hub: this instance's subscribers, per tenant, and in-order gap-free fan-out.

Invariants:
- Per tenant the hub keeps ``last``: every seq up to it has been offered to every subscriber
  registered at that time. An arrival with ``seq <= last`` is a duplicate and dropped; one with
  ``seq > last + 1`` is a gap, filled from the store *before* the arrival is offered; a gap
  the store no longer holds ends every stream of the tenant (``bye`` ``gap``, then ``reset``).
- A notification is encoded to SSE bytes once and the same bytes are offered to each matching
  subscriber: no task and no JSON encoding per subscriber per message.
- ``Subscriber.offer`` never blocks and never grows past ``maxlen``: a subscriber that would
  overflow is marked and told to leave; it resumes from the store on reconnect.
- What a stream's opening needs is kept per tenant by the same fan-out
  (:mod:`tidings.delivery.recent`): the ring of the latest offered notifications (every seq in
  ``(ring.base, last]``, no hole) and the users' views (unread count, latest five).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import anyio
import orjson

from tidings.delivery import sse
from tidings.delivery.edge import Cast
from tidings.delivery.recent import Entry, Ring, Views
from tidings.delivery.seqsource import SeqSource, StoreSeqs
from tidings.domain.notifications import Audience, Notification
from tidings.domain.principals import Principal
from tidings.errors import Code, TooManyRequests, Unavailable

if TYPE_CHECKING:
    from tidings.delivery.edge import Edge, Edges
    from tidings.delivery.slots import RedisSlots
    from tidings.metrics import Metrics
    from tidings.store import Store

log = logging.getLogger(__name__)
_conn_ids = itertools.count(1)
NO_FRAMES: deque[tuple[int, bytes]] = deque(maxlen=0)
"""Every subscriber's ``buffer`` until a frame must be held (shared, never appended to: a
deque allocates a 64-slot block, ~760 bytes, which most edge streams never need)."""


class Subscriber:
    """One open stream, fed by the hub. Owned by its ASGI stream task while that runs (the
    opening, or the whole stream without the edge protocol); after the opening, on the edge
    protocol, by its :class:`~tidings.delivery.edge.Edge` (``edge``), which writes directly."""

    __slots__ = (
        "_wake",
        "buffer",
        "conn",
        "edge",
        "encode",
        "lagging",
        "maxlen",
        "muted",
        "principal",
        "reason",
        "roles",
        "scope",
        "sending",
        "user",
    )

    def __init__(self, principal: Principal, maxlen: int) -> None:
        self.principal = principal
        self.user = principal.user
        self.roles = principal.roles
        self.maxlen = maxlen
        self.buffer: deque[tuple[int, bytes]] = NO_FRAMES  # see :meth:`hold`
        self._wake: asyncio.Event | None = None  # made on first use: edge streams need none
        self.edge: Edge | None = None
        self.reason: str | None = None  # why the stream must end: overflow, shutdown
        self.scope: anyio.CancelScope | None = None
        self.sending = False
        self.lagging = False
        self.conn = next(_conn_ids)
        # Types this user switched off in-app; set through :meth:`mute` (an edge stream with
        # muted types must be off its tenant's cast). A plain slot: read per frame offered.
        self.muted: frozenset[str] = frozenset()
        # Frame encoder hook: rewrites the bytes about to be written (whole SSE frames; b"" to
        # write nothing). None, as for /v1/stream: written as they are. (api/compat_stream.py)
        self.encode: Callable[[bytes], bytes] | None = None

    def mute(self, types: frozenset[str]) -> None:
        """Switch these types off for this stream (none: all on); never written to it."""
        self.muted = types
        if self.edge is not None:  # a stream with muted types is off its tenant's cast
            self.edge.restate()

    @property
    def wake(self) -> asyncio.Event:
        """The ASGI stream task's wake-up (made on first use)."""
        if self._wake is None:
            self._wake = asyncio.Event()
        return self._wake

    def to_edge(self, edge: Edge) -> None:
        """From now on ``edge`` writes this stream's frames; the task's state is dropped."""
        self.edge = edge
        self._wake = None
        self.scope = None

    def hold(self, seq: int, frame: bytes) -> None:
        """Append to ``buffer`` (made on first use; bound it before calling)."""
        if self.buffer is NO_FRAMES:
            self.buffer = deque()
        self.buffer.append((seq, frame))

    def take(self) -> list[tuple[int, bytes]]:
        """What ``buffer`` holds, in order; the buffer is dropped (see :data:`NO_FRAMES`)."""
        held = list(self.buffer)
        self.buffer = NO_FRAMES
        return held

    def offer(self, seq: int, frame: bytes) -> None:
        """Never blocks, never holds more than ``maxlen`` frames.

        On overflow: a stream stuck in a write is a stalled reader and is cut off at once; a
        stream that is merely behind a burst drops its buffer and catches up from the store
        (``lagging``), so memory stays bounded either way.
        """
        if self.reason is not None:
            return
        if self.edge is not None:
            self.edge.offer(seq, frame)
            return
        if len(self.buffer) >= self.maxlen:
            if self.sending:
                self.leave("overflow")
            else:
                self.lagging = True
                self.buffer = NO_FRAMES
                self.wake.set()
            return
        self.hold(seq, frame)
        self.wake.set()

    def leave(self, reason: str) -> None:
        """Ask the stream to end; cancel it outright when it is stuck writing (an overflow, or
        a shutdown that must not wait for a client that stopped reading)."""
        if self.edge is not None:
            self.edge.leave(reason)
            return
        if self.reason is None:
            self.reason = reason
        self.buffer = NO_FRAMES
        self.wake.set()
        if self.sending and self.scope is not None and reason in ("overflow", "shutdown"):
            self.scope.cancel()


@dataclass
class _Tenant:
    last: int
    ring: Ring
    views: Views
    cast: Cast  # its tenant-wide fan-out (delivery/edge.py): every subscriber on it or off it
    subscribers: set[Subscriber] = field(default_factory=set)
    # Per user a list (a set costs 216 bytes; a user has a few streams at most).
    by_user: dict[str, list[Subscriber]] = field(default_factory=dict)
    # Per role the streams whose principal has it (a stream's roles are fixed at its opening),
    # so a role-targeted notification costs its audience, not a scan of the tenant's streams.
    # Invariant: exactly the subscribers of the tenant with that role; no empty list is kept.
    by_role: dict[str, list[Subscriber]] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    idle_since: float | None = None  # the last stream left then; kept for a reconnect storm
    warmed: bool = False  # the ring's older part was read from the store (Hub.warm)


class Hub:
    """Local subscribers and fan-out for one process."""

    def __init__(
        self,
        store: Store | SeqSource,
        metrics: Metrics,
        *,
        buffer: int,
        max_per_user: int,
        max_per_tenant: int,
        batch: int = 500,
        ring: int = 256,
        views: int = 25_000,
        view_ttl: float = 60.0,
    ) -> None:
        # All the hub reads from the store (delivery/seqsource.py); a Store is adapted.
        self._seqs = store if isinstance(store, SeqSource) else StoreSeqs(store)
        self._metrics = metrics
        self._open = 0  # streams registered now (read by the streams_open gauge when scraped)
        metrics.streams_open.set_function(lambda: self._open)
        self._buffer = buffer
        self._max_per_user = max_per_user
        self._max_per_tenant = max_per_tenant
        self._batch = batch
        self._ring = ring
        self._views = views
        self._view_ttl = view_ttl
        # False while the broker is away: a read event may be lost, so no view is trusted.
        self.views_trusted = True
        self.broker_epoch = 0  # counts the broker's comings and goings (caches keyed on it)
        # Told (tenant, user or None) when preferences changed anywhere (channels/mutes.py).
        self.on_preferences: list[Callable[[str, str | None], None]] = []
        # Told the tenant of every notification the broker relays from another instance (the
        # channel workers' idle pause ends: channels/planner.py).
        self.on_relayed: list[Callable[[str], None]] = []
        self._tenants: dict[str, _Tenant] = {}
        self._starting: dict[str, asyncio.Lock] = {}
        self.closing = False
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop the streams run on
        # Cluster-wide caps (delivery/slots.py), set by the app when Redis holds the limits.
        self.slots: RedisSlots | None = None
        # The streams past their opening on the edge protocol (delivery/edge.py), made on first use.
        self.edges: Edges | None = None

    # -- subscribers ---------------------------------------------------------------------------

    @property
    def stream_count(self) -> int:
        return self._open

    def tenants(self) -> list[str]:
        return list(self._tenants)

    def last_seen(self, tenant: str) -> int | None:
        state = self._tenants.get(tenant)
        return None if state is None else state.last

    def has_stream(self, tenant: str, user: str) -> bool:
        """Whether ``user`` has an open stream on this instance (push skips live users)."""
        state = self._tenants.get(tenant)
        return state is not None and bool(state.by_user.get(user))

    def subscribers_of(self, tenant: str, user: str) -> list[Subscriber]:
        state = self._tenants.get(tenant)
        return [] if state is None else list(state.by_user.get(user, ()))

    def present(self) -> list[Principal]:
        """One principal per (tenant, user) with an open stream here (for presence records)."""
        return [
            next(iter(subs)).principal
            for state in self._tenants.values()
            for subs in state.by_user.values()
            if subs
        ]

    async def subscribe(self, principal: Principal) -> Subscriber:
        """Register a stream. Raises ``TooManyRequests`` past the caps, ``Unavailable`` while
        shutting down."""
        if self.closing:
            raise Unavailable("This instance is shutting down.", code=Code.SHUTTING_DOWN)
        self._loop = asyncio.get_running_loop()
        tenant = principal.tenant
        state = self._tenants.get(tenant)
        if state is None:
            lock = self._starting.setdefault(tenant, asyncio.Lock())
            async with lock:
                state = self._tenants.get(tenant)
                if state is None:
                    last = await self._seqs.latest(tenant)
                    state = self._tenants.setdefault(tenant, self._new_tenant(last))
            self._starting.pop(tenant, None)
        if len(state.subscribers) >= self._max_per_tenant:
            raise TooManyRequests(
                f"This tenant has {self._max_per_tenant} open streams already.",
                code=Code.TOO_MANY_STREAMS,
                retry_after=5,
            )
        state.idle_since = None
        mine = state.by_user.get(principal.user)
        if mine is not None and len(mine) >= self._max_per_user:
            raise TooManyRequests(
                f"This user has {self._max_per_user} open streams already; close one.",
                code=Code.TOO_MANY_STREAMS,
                retry_after=5,
            )
        sub = Subscriber(principal, self._buffer)
        if self.slots is not None:
            await self.slots.acquire(sub)
        state.subscribers.add(sub)
        state.cast.off.add(sub)  # on the cast once its edge stream is steady (delivery/edge.py)
        mine = state.by_user.get(principal.user)
        if mine is None:
            state.by_user[principal.user] = [sub]
        else:
            mine.append(sub)
        for role in sub.roles:
            holders = state.by_role.get(role)
            if holders is None:
                state.by_role[role] = [sub]
            else:
                holders.append(sub)
        self._open += 1
        return sub

    def _new_tenant(self, last: int) -> _Tenant:
        return _Tenant(
            last=last,
            ring=Ring(last, self._ring),
            views=Views(self._views, self._view_ttl),
            cast=Cast(last),
        )

    async def warm(self, tenant: str, state: _Tenant) -> None:
        """Read the notifications below a tenant's ring from the store, once per tenant state:
        the ring of a hub that has just started serving the tenant holds only what it offered
        since, so a stream resuming a little behind (the reconnect storm after a restart, when
        the publishes of the downtime landed before the streams came back) would otherwise be
        opened by the store alone, with reads of its own (docs/performance.md, "Session 16").
        Called by the opening for the first resume its ring does not cover; one read of at most
        the ring's free room, under the tenant's lock (other openings wait for it, a catch-up
        does not interleave). The rows are put before the ring's oldest only if they are consecutive
        seqs ending at its ``base`` (the ring's invariant: every seq in ``(base, last]``); a
        hole, or a ring that moved meanwhile, leaves it as it was."""
        if state.warmed:
            return
        async with state.lock:
            if state.warmed:
                return
            ring = state.ring
            base = ring.base
            room = (ring.entries.maxlen or 0) - len(ring.entries)
            if room <= 0 or base <= 0:
                state.warmed = True
                return
            rows = await self._seqs.after(tenant, max(0, base - room), upto=base, limit=room)
            state.warmed = True  # not before: a failed read (the store away) is tried again
            consecutive = rows and rows[-1].seq - rows[0].seq == len(rows) - 1
            if not consecutive or rows[-1].seq != base or ring.base != base:
                return
            older = []
            for row in rows:
                payload = row.encode()
                frame = sse.notification_frame(row.seq, payload)
                actor = row.actor.id if row.actor else None
                older.append(Entry(row.seq, row.type, row.audience, payload, frame, actor))
            ring.entries.extendleft(reversed(older))
            ring.base = rows[0].seq - 1

    async def committed(self, tenants: Sequence[str]) -> dict[str, int]:
        """The store's latest committed seq of each existing tenant among ``tenants`` (one
        read), whatever this hub has offered."""
        return await self._seqs.latest_many(tenants)

    def tenant_state(self, tenant: str) -> _Tenant | None:
        """The state of a tenant this hub serves (its ring, views and ``last``), if any."""
        return self._tenants.get(tenant)

    def broker_changed(self, connected: bool) -> None:
        """The broker went away or came back: read events may have been lost meanwhile, so
        every view is dropped, and none is kept until it is back."""
        self.views_trusted = connected
        self.broker_epoch += 1
        for state in self._tenants.values():
            state.views.clear()

    def unsubscribe(self, sub: Subscriber) -> None:
        state = self._tenants.get(sub.principal.tenant)
        if state is None or sub not in state.subscribers:
            return
        state.subscribers.discard(sub)
        state.cast.off.discard(sub)
        if self.slots is not None:
            self.slots.release(sub)
        mine = state.by_user.get(sub.user)
        if mine is not None and sub in mine:
            mine.remove(sub)
            if not mine:
                del state.by_user[sub.user]
        for role in sub.roles:
            holders = state.by_role.get(role)
            if holders is not None and sub in holders:
                holders.remove(sub)
                if not holders:
                    del state.by_role[role]
        if not state.subscribers:
            # Kept (served: fed and caught up) for ``view_ttl`` s, so the streams of a
            # reconnect storm find the ring and views still here; dropped by ``catch_up``.
            state.idle_since = time.monotonic()
            if self._view_ttl <= 0 and not state.lock.locked():
                del self._tenants[sub.principal.tenant]
        self._open -= 1
        if sub.reason == "overflow":
            self._metrics.dropped.labels(reason="overflow").inc()

    def shutdown(self) -> None:
        """Tell every stream to end with a retry hint; refuse new ones. Safe to call from
        another thread (the streams are then told on their own loop)."""
        self.closing = True
        loop = self._loop
        if loop is not None and loop.is_running() and _running_loop() is not loop:
            loop.call_soon_threadsafe(self._leave_all)
        else:
            self._leave_all()

    def _leave_all(self) -> None:
        for state in list(self._tenants.values()):  # edge streams unregister as they leave
            for sub in list(state.subscribers):
                sub.leave("shutdown")

    # -- delivery ------------------------------------------------------------------------------

    async def deliver(self, notification: Notification) -> None:
        """Offer a notification committed by this process."""
        await self._arrive(notification.tenant, notification.seq, notification)

    async def deliver_raw(self, tenant: str, seq: int, payload: bytes) -> None:
        """Offer a notification announced by the broker (payload empty: read it from the store)."""
        for listener in self.on_relayed:
            listener(tenant)
        await self._arrive(tenant, seq, payload or None)

    async def _arrive(self, tenant: str, seq: int, item: Notification | bytes | None) -> None:
        state = self._tenants.get(tenant)
        if state is None or seq <= state.last:
            return
        async with state.lock:
            if seq <= state.last:
                return
            if seq > state.last + 1 or item is None:
                await self._fill(tenant, state, seq if item is None else seq - 1)
                if seq <= state.last:
                    return
            if isinstance(item, Notification):
                actor = item.actor.id if item.actor else None
                self._dispatch(state, seq, item.type, item.audience, item.encode(), actor)
            elif item is not None:
                type_, audience, actor = _parsed(item)
                self._dispatch(state, seq, type_, audience, item, actor)

    async def catch_up(self, tenant: str | None = None) -> None:
        """Fill every tenant (or one) from the store up to its latest committed seq."""
        if tenant is None:
            self._drop_idle()
        names = [tenant] if tenant else list(self._tenants)
        latest: dict[str, int] = {}
        for start in range(0, len(names), self._batch):  # one query per batch of tenants
            latest.update(await self._seqs.latest_many(names[start : start + self._batch]))
        for name, seq in latest.items():
            state = self._tenants.get(name)
            if state is None or seq <= state.last:
                continue
            async with state.lock:
                if seq > state.last:
                    await self._fill(name, state, seq)

    async def _fill(self, tenant: str, state: _Tenant, upto: int) -> None:
        """Offer ``state.last < seq <= upto`` from the store, in order. Caller holds the lock."""
        while state.last < upto:
            rows = await self._seqs.after(tenant, state.last, upto=upto, limit=self._batch)
            if not rows or rows[0].seq != state.last + 1:
                # Committed (seq order is commit order) but no longer in the store (pruned):
                # no stream may skip them silently. Each ends; resuming, it is answered ``reset``.
                for sub in list(state.subscribers):  # an edge stream unregisters as it leaves
                    sub.leave("gap")
                state.ring.reset(upto if not rows else rows[0].seq - 1)
            if not rows:
                state.last = state.cast.top = upto
                break
            self._metrics.catch_up.inc(len(rows))
            for row in rows:
                actor = row.actor.id if row.actor else None
                self._dispatch(state, row.seq, row.type, row.audience, row.encode(), actor)

    def _drop_idle(self) -> None:
        """Forget the tenants without a stream for longer than ``view_ttl`` s."""
        before = time.monotonic() - self._view_ttl
        for name, state in list(self._tenants.items()):
            idle = state.idle_since
            if idle is not None and idle <= before and not state.lock.locked():
                del self._tenants[name]

    def _dispatch(
        self,
        state: _Tenant,
        seq: int,
        type_: str,
        audience: Audience | None,
        payload: bytes,
        actor: str | None,
    ) -> None:
        frame = sse.notification_frame(seq, payload)
        state.last = seq
        state.ring.push(Entry(seq, type_, audience, payload, frame, actor))
        if audience is None:
            state.cast.deliver(seq, frame)  # the cast's streams at once, the others one by one
            return
        state.cast.top = seq
        targets: set[Subscriber] = set()
        for user in audience.users:
            targets.update(state.by_user.get(user, ()))
        for role in audience.roles:
            targets.update(state.by_role.get(role, ()))
        for sub in targets:
            sub.offer(seq, frame)

    def preferences_changed(self, tenant: str, user: str | None) -> None:
        """A user's (or, ``user`` None, a whole tenant's) preferences changed, here or on
        another instance (a ``p`` broker message): every cache of them forgets."""
        for listener in list(self.on_preferences):
            listener(tenant, user)

    def deliver_ephemeral(self, tenant: str, user: str, event: str, payload: bytes) -> None:
        """Offer a read-state event to every stream of ``user`` on this instance."""
        state = self._tenants.get(tenant)
        if state is None:
            return
        state.views.forget(user)  # the user's read state changed: their view is stale
        frame = sse.frame(event, payload)
        for sub in state.by_user.get(user, ()):
            sub.offer(0, frame)


def _parsed(payload: bytes) -> tuple[str, Audience | None, str | None]:
    """A relayed notification's type, audience and actor id (what the ring keeps)."""
    parsed = orjson.loads(payload)
    raw = parsed.get("audience")
    actor = parsed.get("actor")
    return (
        str(parsed.get("type", "")),
        Audience.model_validate(raw) if raw else None,
        str(actor["id"]) if isinstance(actor, dict) and actor.get("id") else None,
    )


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
