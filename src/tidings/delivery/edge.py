"""The edge: a stream after its opening is a registered transport the hub writes to.

Once ``GET /v1/stream`` has written its head and opening (``retry``, ``ready``/``reset`` and
the replay, :mod:`tidings.delivery.stream`), the HTTP protocol (:mod:`tidings.server`) hands
the connection's transport to an :class:`Edge`. From then on there is no task, no Event and no
await per stream. A notification for the whole tenant is appended once to the tenant's
:class:`Cast`; every other frame (and every frame for a stream off the cast) goes through
:meth:`Edge.offer`, which appends the already-encoded frame to the stream's pending list. One
``loop.call_soon`` per fan-out batch (:class:`Edges`) writes each cast's frames as one chunk to
each of its streams, then each dirty stream's pending frames: ONE ``transport.write`` per
stream either way.

Invariants:
- Exactly once, in order: ``sent`` is the highest seq written (or replayed); a frame with
  ``seq <= sent`` is dropped, as on the ASGI path. On a cast, the cast's ``last`` stands for
  it (see :class:`Cast`).
- Bounded memory: a stream holds at most ``subscriber_buffer`` pending frames and the
  transport's own buffer, whose high-water mark is :func:`write_limit` bytes. Past either, the
  stream is *lagging*: it holds nothing, writes nothing, and once the transport drains
  (``resume_writing``) it catches up from the store (one short-lived task, only then). A
  stream whose transport stays paused past ``send_timeout`` is cut off (``slow``).
- One clock: :class:`Edges` keeps a wheel of ``tick``-wide slots; each stream sits in the slot
  of the next moment it may need something — a keep-alive ping (idle for ``keepalive``), its
  token's expiry (``expired``, close), or, while its transport is paused, the end of
  ``send_timeout`` (cut off as stuck) — and one timer, aligned to the slots' ends, looks only at
  the streams of the slots that have come due: each stream about once per ``keepalive``, not
  every stream every ``tick``. A write does not move a stream (no wheel work per frame): when its
  slot comes, a stream written to meanwhile is put back for ``keepalive`` after its last write.
- Every end goes through :meth:`Edge.leave` (the last frames, the final chunk, close) and,
  once the connection is gone, :meth:`Edge.lost` (unsubscribe, the ``stream closed`` log line).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable
from typing import TYPE_CHECKING, TypeVar

import anyio
import orjson

from tidings.delivery import sse

if TYPE_CHECKING:
    from tidings.delivery.hub import Hub, Subscriber
    from tidings.domain.notifications import Notification
    from tidings.metrics import Metrics
    from tidings.store import Store

log = logging.getLogger("tidings.delivery.stream")
T = TypeVar("T")

# Bytes a stream's transport may hold (beyond what the kernel took) before it counts as a slow
# reader: 1 KiB per frame TIDINGS_SUBSCRIBER_BUFFER allows, within [16 KiB, 64 KiB] (64 KiB is
# the transports' own default high-water mark, where the ASGI path's writes wait).
FRAME_BYTES = 1024
MIN_WRITE_LIMIT = 16 * 1024
MAX_WRITE_LIMIT = 64 * 1024
REPLAY_PAGE = 200
# How much sooner than due the clock may act on a stream (s): a ping written at a slot's end,
# a keep-alive later, falls due just after that later slot's end (by the timer's lateness);
# without this it would wait a whole further tick, every time.
EARLY = 0.02


def write_limit(subscriber_buffer: int) -> int:
    """The high-water mark of a stream's transport buffer (bytes): past it, the stream lags."""
    return max(MIN_WRITE_LIMIT, min(MAX_WRITE_LIMIT, subscriber_buffer * FRAME_BYTES))


class Edges:
    """Every edge stream of one hub: the coalescing flush and the one clock."""

    def __init__(
        self,
        hub: Hub,
        store: Store,
        metrics: Metrics,
        *,
        keepalive: float,
        send_timeout: float,
        retry_ms: int,
        buffer: int,
    ) -> None:
        self.hub = hub
        self.store = store
        self.metrics = metrics
        self.keepalive = keepalive
        self.send_timeout = send_timeout
        self.retry_ms = retry_ms
        self.buffer = buffer
        self.write_limit = write_limit(buffer)
        self.tick = min(1.0, keepalive / 2, send_timeout / 2)
        self.live: set[Edge] = set()
        self._dirty: list[Edge] = []
        self._casts: list[Cast] = []  # casts with frames to write at the flush
        self._joining: list[Edge] = []  # streams to put on their tenant's cast at the flush
        self._scheduled = False  # a flush is scheduled (loop.call_soon)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._clock: asyncio.TimerHandle | None = None
        # The wheel: slot n holds the streams to look at once the loop's clock reaches
        # n * tick (each stream in one slot, Edge.slot; an entry whose stream has since moved
        # to an earlier slot, or ended, is skipped). Slots span at most keepalive / tick.
        self._wheel: dict[int, list[Edge]] = {}
        self.examined = 0  # streams the clock has looked at (a measure of its cost)

    def add(self, edge: Edge) -> None:
        self.live.add(edge)
        loop = self._loop
        if self._clock is None or loop is None:
            self._loop = loop = asyncio.get_running_loop()
            self._clock = loop.call_at(self._slot(loop.time()) * self.tick, self._sweep)
        self.check_at(edge, self._due(edge, loop.time(), time.time()))

    def discard(self, edge: Edge) -> None:
        self.live.discard(edge)
        edge.slot = -1  # its entry in the wheel is skipped

    def _slot(self, when: float) -> int:
        """The first slot whose end is at or after ``when`` (loop time), less :data:`EARLY`."""
        return math.ceil((when - EARLY) / self.tick)

    def check_at(self, edge: Edge, when: float) -> None:
        """Look at ``edge`` once the loop's clock reaches ``when`` (or sooner, if it is already
        due sooner): the slot's timer is at most one ``tick`` late, and at most :data:`EARLY`
        early."""
        slot = self._slot(when)
        if 0 <= edge.slot <= slot:
            return
        edge.slot = slot
        due = self._wheel.get(slot)
        if due is None:
            self._wheel[slot] = [edge]
        else:
            due.append(edge)

    def _due(self, edge: Edge, now: float, epoch: float) -> float:
        """When the clock must next look at ``edge`` (loop time): ``keepalive`` after its last
        write (a stream catching up is written to by its task: not before another
        ``keepalive``), its token's expiry, and while it is paused, ``send_timeout`` after the
        pause — whichever comes first."""
        due = edge.written() + self.keepalive
        if due <= now:
            due = now + self.keepalive
        expiry = now + (edge.expires - epoch)
        if expiry < due:
            due = expiry
        if edge.sub.sending:
            stuck = edge.paused_at + self.send_timeout
            if stuck < due:
                due = stuck
        return due

    def _schedule(self) -> None:
        if not self._scheduled:
            self._scheduled = True
            loop = self._loop
            if loop is None:
                self._loop = loop = asyncio.get_running_loop()
            loop.call_soon(self._flush)

    def dirty(self, edge: Edge) -> None:
        self._schedule()
        self._dirty.append(edge)

    def cast_dirty(self, cast: Cast) -> None:
        self._schedule()
        self._casts.append(cast)

    def join_soon(self, edge: Edge) -> None:
        """Put ``edge`` on its tenant's cast at the flush, if it is steady then."""
        self._schedule()
        self._joining.append(edge)

    def _flush(self) -> None:
        """Write every dirty stream's pending frames, then each cast's frames to its members,
        ONE ``transport.write`` per stream for each; then put the streams that may join on
        their casts (only now: no cast has a frame pending).

        The per-stream path is written out here rather than as calls. Streams offered the same
        frames (the same objects: a tenant-wide notification to streams off the cast, or a
        batch of them) are usually next to each other in ``dirty``, so the chunk (HTTP/1.1
        chunked framing) is built once for a run of them and the same bytes go to each
        transport.
        """
        self._scheduled = False
        casts, self._casts = self._casts, []
        dirty, self._dirty = self._dirty, []
        joining, self._joining = self._joining, []
        loop = self._loop
        now = loop.time() if loop is not None else 0.0
        delivered = 0
        last: list[bytes] = []  # the frames of the last chunk built, its chunk and count
        chunk = b""
        counts = 0
        for edge in dirty:
            pending = edge.pending
            if pending is None:
                continue
            edge.pending = None
            sub = edge.sub
            if sub.reason is not None or sub.lagging:
                continue
            transport = edge.transport
            if transport is None or transport.is_closing():
                continue
            if sub.encode is not None or not edge.chunked:
                delivered += sum(1 for f in pending if f.startswith(b"id: "))
                edge.write(pending[0] if len(pending) == 1 else b"".join(pending), now)
                continue
            if pending != last:  # same frames as the stream before (same objects): reuse
                last = pending
                data = pending[0] if len(pending) == 1 else b"".join(pending)
                chunk = b"%x\r\n%s\r\n" % (len(data), data)
                counts = sum(1 for f in pending if f.startswith(b"id: "))
            delivered += counts
            edge.last_write = now
            transport.write(chunk)
            if edge.cast is None and edge.home is not None:
                joining.append(edge)
        # Then the casts: a member's own frames (above) were all offered before the cast had
        # any pending; a stream that left a cast this iteration took its frames along. Last,
        # the joins: once no cast has a frame pending.
        for cast in casts:
            delivered += cast.flush(now)
        for edge in joining:
            edge.join()
        if delivered:
            self.metrics.delivered.inc(delivered)

    def _sweep(self) -> None:
        """The clock: the streams of every slot that has come due — pinged if idle for
        ``keepalive``, ended if their token expired or their transport stayed paused past
        ``send_timeout``, and each put back in the slot of its next due moment."""
        loop = self._loop
        assert loop is not None
        now = loop.time()
        epoch = time.time()
        idle_before = now - self.keepalive + EARLY
        stuck_before = now - self.send_timeout + EARLY
        wheel = self._wheel
        current = math.floor(now / self.tick)
        for slot in sorted(n for n in wheel if n <= current):
            for edge in wheel.pop(slot):
                if edge.slot != slot:
                    continue  # moved to an earlier slot, or ended
                edge.slot = -1
                self.examined += 1
                sub = edge.sub
                if sub.reason is not None:
                    continue
                if edge.expires <= epoch + EARLY:
                    edge.leave("expired")
                    continue
                if sub.sending:
                    if edge.paused_at <= stuck_before:
                        self.metrics.dropped.labels(reason="slow").inc()
                        edge.leave("slow")
                        continue
                elif edge.written() <= idle_before and edge.task is None:
                    edge.write(sse.PING, now)
                self.check_at(edge, self._due(edge, now, epoch))
        if self.live:
            self._clock = loop.call_at((current + 1) * self.tick, self._sweep)
        else:
            self._clock = None
            wheel.clear()  # nothing live: every entry left is stale


class Edge:
    """One stream after its opening (see the module docstring). Owned by its protocol."""

    __slots__ = (
        "base",
        "cast",
        "chunked",
        "edges",
        "expires",
        "home",
        "last_write",
        "paused_at",
        "pending",
        "sent",
        "slot",
        "sub",
        "task",
        "transport",
    )

    def __init__(self, edges: Edges, sub: Subscriber, sent: int) -> None:
        self.edges = edges
        self.sub = sub
        self.sent = sent  # highest seq written to the transport or pending
        self.base = sent  # ``sent`` before the first pending frame: where a dropped batch resumes
        self.expires = sub.principal.expires_at.timestamp()
        self.transport: asyncio.WriteTransport | None = None
        self.chunked = True
        self.pending: list[bytes] | None = None
        self.last_write = 0.0
        self.paused_at = 0.0
        self.slot = -1  # its slot in the clock's wheel (Edges.check_at), -1 while in none
        self.task: asyncio.Task[None] | None = None
        self.home: Cast | None = None  # its tenant's cast (None without a hub)
        self.cast: Cast | None = None  # that cast while this stream is on it

    def attach(self, transport: asyncio.WriteTransport, *, chunked: bool, paused: bool) -> None:
        """Take over the transport: frames buffered during the opening go out, then live."""
        sub = self.sub
        self.transport = transport
        self.chunked = chunked
        loop = asyncio.get_running_loop()
        self.last_write = loop.time()
        transport.set_write_buffer_limits(high=self.edges.write_limit)
        self.edges.add(self)
        hub = self.edges.hub
        state = None if hub is None else hub.tenant_state(sub.principal.tenant)
        self.home = None if state is None else state.cast
        sub.to_edge(self)
        buffered = sub.take()
        if paused:
            self.pause_writing()
        elif sub.lagging:
            self._start_catch_up()
        else:
            for seq, frame in buffered:
                self.offer(seq, frame)
            if self.home is not None:
                self.edges.join_soon(self)

    # -- fan-out -------------------------------------------------------------------------------

    def offer(self, seq: int, frame: bytes) -> None:
        """Called by the hub for every frame meant for this stream and not cast to it (a
        tenant-wide notification is offered only while the stream is off its cast). A stream on
        the cast keeps its own pending frames beside it — written at the flush before the
        cast's, so only while the cast has none pending; otherwise it leaves the cast first,
        and its frames stay in order. Never blocks."""
        cast = self.cast
        if cast is not None:
            if cast.frames:
                self._off_cast()
            elif cast.last > self.sent:
                self.sent = cast.last  # what the cast wrote is its own now: ``base`` from here
        sub = self.sub
        if sub.lagging:
            return  # the catch-up reads it from the store
        if self.task is not None:  # catching up: buffer (bounded), drained when it ends
            if len(sub.buffer) >= sub.maxlen:
                sub.lagging = True
                sub.take()
            else:
                sub.hold(seq, frame)
            return
        pending = self.pending
        if seq:
            if seq <= self.sent:
                return
            if pending is None:
                self.base = self.sent
            self.sent = seq
            if sub.muted and frame_type(frame) in sub.muted:
                return
        if pending is None:
            self.pending = [frame]
            self.edges.dirty(self)
        elif len(pending) >= sub.maxlen:
            # More frames in one loop iteration than a stream may hold: catch up from the store.
            self._drop_pending()
            self._start_catch_up()
        else:
            pending.append(frame)

    def _drop_pending(self) -> None:
        """Forget the frames not yet written; the catch-up reads them again from ``base``."""
        if self.pending is not None:
            self.pending = None
            self.sent = self.base
        self.sub.lagging = True

    def written(self) -> float:
        """When this stream was last written to (loop time), its cast's writes included."""
        cast = self.cast
        if cast is None or cast.time < self.last_write:
            return self.last_write
        return cast.time

    def write(self, data: bytes, now: float) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if self.sub.encode is not None:  # the per-subscriber frame encoder hook (hub.py)
            data = self.sub.encode(data)
            if not data:
                return
        self.last_write = now
        transport.write(b"%x\r\n%s\r\n" % (len(data), data) if self.chunked else data)

    # -- flow control (called by the protocol) -------------------------------------------------

    def pause_writing(self) -> None:
        """The transport's buffer passed :func:`write_limit`: a slow reader; stop writing."""
        self._off_cast()
        sub = self.sub
        sub.sending = True
        sub.take()
        self._drop_pending()
        loop = asyncio.get_running_loop()
        self.paused_at = loop.time()
        if self in self.edges.live:  # cut off if still paused then (Edges._sweep)
            self.edges.check_at(self, self.paused_at + self.edges.send_timeout)

    def resume_writing(self) -> None:
        sub = self.sub
        sub.sending = False
        if sub.reason is None and sub.lagging:
            self._start_catch_up()

    # -- catch-up ------------------------------------------------------------------------------

    def _start_catch_up(self) -> None:
        if self.task is None and not self.sub.sending and self.sub.reason is None:
            self.task = asyncio.get_running_loop().create_task(self._catch_up())

    async def _catch_up(self) -> None:
        """Replay ``sent < seq`` from the store until nothing is left, then go live again."""
        sub, edges = self.sub, self.edges
        try:
            while sub.lagging and not sub.sending and sub.reason is None:
                sub.lagging = False
                edges.metrics.catch_up.inc()
                while not sub.lagging and sub.reason is None:
                    rows = await _whole(self._page())
                    if not rows:
                        break
                    if sub.sending:  # paused meanwhile: resume_writing starts over
                        sub.lagging = True
                        break
                    chunk = [
                        sse.notification_frame(r.seq, r.encode())
                        for r in rows
                        if r.visible_to(sub.user, sub.roles) and r.type not in sub.muted
                    ]
                    self.sent = max(self.sent, rows[-1].seq)
                    if chunk:
                        edges.metrics.delivered.inc(len(chunk))
                        self.write(b"".join(chunk), asyncio.get_running_loop().time())
        except Exception:  # a store failure: the client resumes by id elsewhere
            log.warning("stream catch-up failed conn=%d", sub.conn, exc_info=True)
            self.task = None
            self.leave("error")
            return
        self.task = None
        if sub.reason is not None or sub.lagging:
            return
        for seq, frame in sub.take():
            self.offer(seq, frame)
        if self.home is not None:
            self.edges.join_soon(self)

    async def _page(self) -> list[Notification]:
        from tidings.store import notifications as nq

        async with self.edges.store.read() as conn:
            return await nq.fetch_after(
                conn, self.sub.principal.tenant, self.sent, upto=None, limit=REPLAY_PAGE
            )

    # -- the cast ------------------------------------------------------------------------------

    def steady(self) -> bool:
        """Whether this stream may take its tenant's cast as it is: open, live, not paused,
        lagging or catching up, nothing of its own pending, and its frames unchanged on the way
        (chunked, no encoder hook, no muted types)."""
        sub = self.sub
        transport = self.transport
        return (
            transport is not None
            and self.pending is None
            and self.task is None
            and self.chunked
            and sub.reason is None
            and not sub.lagging
            and not sub.sending
            and not sub.muted
            and sub.encode is None
            and not transport.is_closing()
            and self in self.edges.live
        )

    def join(self) -> None:
        """Put this stream on its tenant's cast if it is steady and has exactly what the cast
        has had (every tenant-wide seq up to ``cast.last``, none the hub has not offered yet).
        Called at the flush only, after the casts were written: no cast frame is pending."""
        home = self.home
        if home is None or self.cast is not None or not self.steady():
            return
        if home.edges is None:
            home.edges = self.edges
        elif home.edges is not self.edges:
            return
        if not home.last <= self.sent <= home.top:
            return
        assert self.transport is not None
        home.off.discard(self.sub)
        home.members[self] = self.transport
        self.cast = home

    def _off_cast(self, spill: bool = False) -> None:
        """Take this stream off its cast: what the cast has written is now its own ``sent`` and
        ``last_write``; the cast's frames not yet written are its own pending ones, after those
        it had already (or, when the cast ``spill``s or they would be more than a stream may
        hold, it catches up from the store)."""
        cast = self.cast
        if cast is None:
            return
        self.cast = None
        del cast.members[self]
        cast.off.add(self.sub)
        if cast.time > self.last_write:
            self.last_write = cast.time
        sent = self.sent
        frames = cast.frames
        if frames:
            pending = self.pending  # its own, offered before the cast's: they go first
            if pending is None:
                self.base = max(sent, cast.base)
            if spill or (pending is not None and len(pending) + len(frames) > self.sub.maxlen):
                # More than a stream may hold: back to ``base``, caught up from the store.
                self.pending = None
                self.sent = self.base
                self.sub.lagging = True
                self._start_catch_up()
                return
            if pending is None:
                self.pending = list(frames)
                self.edges.dirty(self)
            else:
                pending.extend(frames)
        if cast.last > sent:
            self.sent = cast.last

    def restate(self) -> None:
        """Something :meth:`steady` reads, or its ``home``, changed (the user's muted types): on
        or off the cast."""
        if self.cast is not None:
            if self.home is not self.cast or not self.steady():
                self._off_cast()
        elif self.home is not None and self.steady():
            self.edges.join_soon(self)

    # -- ends ----------------------------------------------------------------------------------

    def leave(self, reason: str) -> None:
        """End the stream: ``bye`` (or ``expired``), the final chunk, close; the stream is
        unregistered at once. A reader stuck past ``send_timeout`` (``slow``) gets its ``bye``
        queued too, but if it still reads nothing for another ``send_timeout`` the connection
        is aborted, so what it left unread is freed."""
        self._off_cast()
        sub = self.sub
        if sub.reason is None:
            sub.reason = reason
        sub.take()
        self.pending = None
        transport = self.transport
        if transport is not None and not transport.is_closing():
            if reason == "expired":
                last = sse.frame("expired", {"reason": "token_expired"})
            else:  # on the wire, a reader cut off for falling behind is told "overflow"
                wire = "overflow" if sub.reason in ("slow", "error") else sub.reason
                last = sse.frame("bye", {"reason": wire})
            retry = sse.retry(self.edges.retry_ms if reason != "shutdown" else 500)
            self.write(retry + last, self.last_write)
            if self.chunked:
                transport.write(b"0\r\n\r\n")
            transport.close()
            if reason == "slow":
                loop = asyncio.get_running_loop()
                loop.call_later(self.edges.send_timeout, self._abort, transport)
        self._end()

    def _abort(self, transport: asyncio.WriteTransport) -> None:
        if self.transport is transport:
            transport.abort()

    def lost(self) -> None:
        """The connection is gone (closed by us or by the client)."""
        self.transport = None
        self._end()

    def _end(self) -> None:
        """Unregister the stream and log its end, once."""
        if self not in self.edges.live:
            return
        sub = self.sub
        self._off_cast()
        self.home = None
        self.edges.discard(self)
        if self.task is not None:
            self.task.cancel()
            self.task = None
        self.edges.hub.unsubscribe(sub)
        p = sub.principal
        log.info(
            "stream closed tenant=%s user=%s conn=%d reason=%s sent=%d",
            p.tenant,
            p.user,
            sub.conn,
            sub.reason or "disconnect",
            self.sent,
        )
        # The subscriber and this edge refer to each other: unregistered, the subscriber lets
        # go, so both are freed by reference counting, not left to the cyclic GC.
        sub.edge = None


class Cast:
    """One tenant's tenant-wide fan-out: its steady edge streams take each notification meant
    for every stream of the tenant (no audience) as ONE write of the same chunk to each
    transport, in a loop over the transports alone (ARCHITECTURE.md, "The cast").

    Invariants:
    - Each subscriber of the tenant is on the cast (``members``: steady edge streams, see
      :meth:`Edge.steady`) or in ``off`` (every other: opening, catching up, paused, muted
      types, an encoder hook, the ASGI path), never both; the hub offers a tenant-wide frame to
      the ``off`` ones only, one by one, as before.
    - A member has every tenant-wide seq up to ``last`` (written, or in ``frames``, written to
      every member at the flush), ``seq <= top`` only: its own ``sent`` and ``last_write``
      stand for the rest. A frame of its own (a targeted notification, a read event) while
      ``frames`` is empty waits in its own pending list beside the cast (the flush writes those
      first); once ``frames`` is not, such a frame, a pause, muted types or its end take it off
      first: ``frames`` follow its own pending frames, ``last`` becomes its ``sent``, so its
      frames stay in order and exactly once.
    - A stream joins only at the flush, after the cast's frames were written, and only with
      ``last <= sent <= top``: it has every seq the cast has had, and none the hub has yet to
      offer (a later cast frame is new to it).
    - ``frames`` hold at most the streams' buffer (``limit``): one more and every member leaves
      to catch up from the store, as a stream offered more than it may hold in one iteration.
    """

    __slots__ = ("base", "edges", "frames", "last", "limit", "members", "off", "time", "top")

    def __init__(self, last: int) -> None:
        self.members: dict[Edge, asyncio.WriteTransport] = {}
        self.off: set[Subscriber] = set()
        self.frames: list[bytes] = []  # tenant-wide frames to write to every member at the flush
        self.last = last  # the highest tenant-wide seq cast (or offered while nobody was on)
        self.base = last  # ``last`` before ``frames``
        self.top = last  # the highest seq the hub has offered (any audience)
        self.time = 0.0  # loop time of the last write to the members
        self.edges: Edges | None = None  # the flush's owner, set by the first member
        self.limit = 0

    def deliver(self, seq: int, frame: bytes) -> None:
        """Offer a tenant-wide notification to every subscriber of the tenant."""
        self.top = seq
        if self.members:
            frames = self.frames
            if not frames:
                edges = self.edges
                assert edges is not None
                self.base = self.last
                self.limit = edges.buffer
                edges.cast_dirty(self)
                frames.append(frame)
            elif len(frames) < self.limit:
                frames.append(frame)
            else:
                for member in list(self.members):
                    member._off_cast(spill=True)
                frames.clear()
        self.last = seq
        for sub in self.off:
            edge = sub.edge  # the common case, straight to the edge (one call less)
            if edge is not None and sub.reason is None:
                edge.offer(seq, frame)
            else:
                sub.offer(seq, frame)

    def flush(self, now: float) -> int:
        """Write the pending frames to every member: the same chunk, one write each. Returns
        the frames delivered."""
        frames, self.frames = self.frames, []
        self.base = self.last
        members = self.members
        if not frames or not members:
            return 0
        data = frames[0] if len(frames) == 1 else b"".join(frames)
        chunk = b"%x\r\n%s\r\n" % (len(data), data)
        # A copy: a write past a transport's high-water mark pauses it, and the pause takes its
        # stream off the cast (out of ``members``) before the loop goes on.
        transports = list(members.values())
        self.time = now
        written = iter(transports)
        while True:
            try:
                for transport in written:
                    transport.write(chunk)
            except Exception:  # its connection is gone under it (the loop closed it)
                log.debug("cast write failed", exc_info=True)
                for edge, of in list(members.items()):
                    if of is transport:
                        edge._off_cast()
                continue
            break
        return len(frames) * len(transports)


def frame_type(frame: bytes) -> str | None:
    """The ``type`` of a notification frame (only parsed for users with muted types)."""
    _, _, data = frame.partition(b"\ndata: ")
    try:
        value = orjson.loads(data.strip()).get("type")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return value if isinstance(value, str) else None


async def _whole(read: Awaitable[T]) -> T:
    """A store read shielded from cancellation (see :func:`tidings.delivery.stream._whole`)."""
    with anyio.CancelScope(shield=True):
        result = await read
    return result  # noqa: RET504 - after the scope: a shield scope may swallow the exit
