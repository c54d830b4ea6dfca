"""The streaming response of ``GET /v1/stream``: one structured-concurrency scope per stream.

Order of a stream (invariant 3, nothing lost, nothing twice):
1. The subscriber is registered with the hub *before* anything is read from the store, so
   every seq committed later is buffered for it.
2. ``ready`` (or ``reset``) is sent, then the store is replayed for ``resume < seq <= latest``.
3. Live frames follow; any with ``seq <= sent`` (already replayed) are dropped.

The body sender and a disconnect listener run in one task group; whichever ends first cancels
the other. Every write has a timeout; cleanup (unsubscribe) is in ``finally``.

A stream cut off on purpose (too slow, its buffer overflowed while stuck in a write, or a
client that stopped reading when the server shuts down) ends without finishing its response.
That is an expected event, logged at INFO as ``stream closed … reason=…``; uvicorn's own
"ASGI callable returned without completing response." ERROR line for it is dropped by
:class:`UnfinishedStreams` (installed on ``uvicorn.error``), and for nothing else.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import math
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypeVar

import anyio
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from tidings.delivery import sse
from tidings.delivery.edge import Edge, Edges, frame_type
from tidings.delivery.hub import Subscriber
from tidings.delivery.opening import from_memory, from_store
from tidings.domain.notifications import Notification
from tidings.store import notifications as nq

if TYPE_CHECKING:
    from tidings.service import Tidings

log = logging.getLogger(__name__)
T = TypeVar("T")

# Set in the request's own task when a stream ends unfinished on purpose; uvicorn logs its
# "returned without completing response" in that same task, right after the app returns.
_cut_short: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "tidings_stream_cut_short", default=False
)
INCOMPLETE = "ASGI callable returned without completing response."
# The ASGI scope extension by which the edge protocol (tidings.server.EdgeProtocol) offers to
# take a stream's transport after its opening; absent under a plain uvicorn run.
EDGE = "tidings.edge"
DETACHED = "detached"


def edges_of(service: Tidings) -> Edges:
    """The hub's edge streams, made on first use with the service's settings."""
    hub = service.hub
    if hub.edges is None:
        settings = service.settings
        hub.edges = Edges(
            hub,
            service.store,
            service.metrics,
            keepalive=settings.keepalive,
            send_timeout=settings.send_timeout,
            retry_ms=settings.retry_ms,
            buffer=settings.subscriber_buffer,
        )
    return hub.edges


class UnfinishedStreams(logging.Filter):
    """Drop uvicorn's ERROR for a stream this module cut short on purpose (see the module doc)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.msg == INCOMPLETE and _cut_short.get())


HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache, no-transform"),
    (b"x-accel-buffering", b"no"),
    (b"connection", b"keep-alive"),
]


async def _whole(read: Awaitable[T]) -> T:
    """Await a store read shielded from the stream's cancellation (a disconnect, a slow write,
    an overflow): a query cancelled midway makes the driver abandon its connection's close,
    which asyncio then logs as an ERROR ("Task was destroyed but it is pending!"). Reads are
    short and bounded by the store's timeouts; a cancellation that came meanwhile lands at the
    next await."""
    with anyio.CancelScope(shield=True):
        result = await read
    return result  # noqa: RET504 - after the scope: a shield scope may swallow the exit


class EventStream(Response):
    """ASGI response for one subscriber. Owns ``sub`` and unsubscribes it when done."""

    media_type = "text/event-stream"

    def __init__(self, service: Tidings, sub: Subscriber, resume: int | None) -> None:
        # Deliberately not calling Response.__init__: there is no body to render.
        self.status_code = 200
        self.background = None
        self.service = service
        self.sub = sub
        self.resume = resume
        self.sent = 0
        self._timer: asyncio.TimerHandle | None = None  # next ping / token expiry wake-up
        self._timer_at = 0.0
        self._finished = False  # the response's last (more_body=False) message was sent
        self._attach: Callable[[Edge], bool] | None = None  # the edge protocol's, if it runs

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        sub = self.sub
        p = sub.principal
        log.info(
            "stream open tenant=%s user=%s conn=%d resume=%s",
            p.tenant,
            p.user,
            sub.conn,
            self.resume,
        )
        reason = "disconnect"
        self._attach = scope.get("extensions", {}).get(EDGE)
        try:
            if self._attach is not None:
                # On the edge the opening is all this task does, and it is short: no listener
                # task. A client gone meanwhile makes the writes no-ops and the hand-over fail.
                with anyio.CancelScope() as body_scope:
                    sub.scope = body_scope
                    reason = await self._run(send)
                return
            async with anyio.create_task_group() as tg:

                async def listen() -> None:
                    while (await receive())["type"] != "http.disconnect":
                        pass
                    tg.cancel_scope.cancel()

                tg.start_soon(listen)
                with anyio.CancelScope() as body_scope:
                    sub.scope = body_scope
                    reason = await self._run(send)
                tg.cancel_scope.cancel()
        except OSError:
            reason = "write-error"
        finally:
            if reason != DETACHED:  # else the edge owns the stream now (and logs its close)
                self._close(reason)

    def _close(self, reason: str) -> None:
        sub = self.sub
        p = sub.principal
        if sub.reason in ("overflow", "slow"):
            reason = sub.reason
        if self._timer is not None:
            self._timer.cancel()
        if not self._finished:
            _cut_short.set(True)
        self.service.hub.unsubscribe(sub)
        log.info(
            "stream closed tenant=%s user=%s conn=%d reason=%s sent=%d",
            p.tenant,
            p.user,
            sub.conn,
            reason,
            self.sent,
        )

    async def _write(self, send: Send, body: bytes) -> None:
        # A plain loop timer bounds the write instead of anyio.fail_after: the same limit for
        # a fraction of the cost on the per-delivery path (docs/performance.md).
        if self.sub.encode is not None:  # the per-subscriber frame encoder hook (hub.py)
            body = self.sub.encode(body)
            if not body:
                return
        self.sub.sending = True
        timer = asyncio.get_running_loop().call_later(
            self.service.settings.send_timeout, self._stuck
        )
        try:
            await send({"type": "http.response.body", "body": body, "more_body": True})
        finally:
            self.sub.sending = False
            timer.cancel()

    def _ring(self) -> None:
        self._timer = None
        self.sub.wake.set()

    def _stuck(self) -> None:
        """A write outlasted ``send_timeout``: end the stream as too slow."""
        sub = self.sub
        if sub.sending and sub.scope is not None and sub.reason is None:
            sub.reason = "slow"
            self.service.metrics.dropped.labels(reason="slow").inc()
            sub.scope.cancel()

    async def _run(self, send: Send) -> str:
        try:
            return await self._run_inner(send)
        except TimeoutError:
            self.sub.reason = self.sub.reason or "slow"
            self.service.metrics.dropped.labels(reason="slow").inc()
            return "slow"

    async def _run_inner(self, send: Send) -> str:
        service, sub, settings = self.service, self.sub, self.service.settings
        await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
        sub.mute(await _whole(service.muted(sub.principal)))  # types switched off in-app
        limit = settings.replay_limit
        opening = await _whole(
            from_memory(service.hub, service.store, sub, self.resume, replay_limit=limit)
        )
        if opening is None:  # a resume only the store can answer
            opening = await _whole(from_store(service.store, sub, self.resume, replay_limit=limit))
        self.sent = opening.sent
        await self._write(send, sse.retry(settings.retry_ms) + opening.data)
        if opening.replayed:
            service.metrics.delivered.inc(opening.replayed)
        if opening.replay_to is not None:
            await self._replay(send, opening.replay_to)
        if self._attach is not None and self.sub.reason is None:
            # The edge protocol takes the transport: no task, no await per frame from here.
            if self._attach(Edge(edges_of(service), self.sub, self.sent)):
                return DETACHED
            return "disconnect"
        return await self._live(send)

    async def _page(self, latest: int | None) -> list[Notification]:
        async with self.service.store.read() as conn:
            return await nq.fetch_after(
                conn, self.sub.principal.tenant, self.sent, upto=latest, limit=200
            )

    async def _replay(self, send: Send, latest: int | None) -> None:
        """Send visible notifications with ``sent < seq <= latest`` (no bound: all committed)."""
        sub = self.sub
        while latest is None or self.sent < latest:
            rows = await _whole(self._page(latest))
            if not rows:
                break
            chunk = [
                sse.notification_frame(r.seq, r.encode())
                for r in rows
                if r.visible_to(sub.user, sub.roles) and r.type not in sub.muted
            ]
            self.sent = rows[-1].seq
            if chunk:
                await self._write(send, b"".join(chunk))
                self.service.metrics.delivered.inc(len(chunk))
        if latest is not None:
            self.sent = max(self.sent, latest)

    async def _live(self, send: Send) -> str:
        sub, settings = self.sub, self.service.settings
        expires = sub.principal.expires_at.timestamp()
        next_ping = time.monotonic() + settings.keepalive
        while True:
            if sub.reason is not None:
                await self._goodbye(send, sse.frame("bye", {"reason": sub.reason}))
                return sub.reason
            to_expiry = expires - datetime.now(UTC).timestamp()
            if to_expiry <= 0:
                await self._goodbye(send, sse.frame("expired", {"reason": "token_expired"}))
                return "expired"
            if sub.lagging:
                sub.lagging = False
                self.service.metrics.catch_up.inc()
                await self._replay(send, None)
                continue
            if not sub.buffer:
                wake = sub.wake
                # One timer wakes the stream for its next ping or its token's expiry; it is
                # re-armed only once it has fired or must fire sooner, not per message.
                now = time.monotonic()
                wait = max(0.0, min(next_ping - now, to_expiry))
                due = now + (wait if math.isfinite(wait) else 60)
                if self._timer is None or self._timer_at > due:
                    if self._timer is not None:
                        self._timer.cancel()
                    self._timer = asyncio.get_running_loop().call_later(due - now, self._ring)
                    self._timer_at = due
                wake.clear()
                await wake.wait()
                if not sub.buffer and sub.reason is None and time.monotonic() >= next_ping:
                    await self._write(send, sse.PING)
                    next_ping = time.monotonic() + settings.keepalive
                continue
            frames = []
            delivered = 0
            while sub.buffer:
                seq, frame = sub.buffer.popleft()
                if seq:
                    if seq <= self.sent:
                        continue
                    self.sent = seq
                    if sub.muted and frame_type(frame) in sub.muted:
                        continue
                    delivered += 1
                frames.append(frame)
            if frames:
                await self._write(send, b"".join(frames))
                self.service.metrics.delivered.inc(delivered)
                next_ping = time.monotonic() + settings.keepalive

    async def _goodbye(self, send: Send, frame: bytes) -> None:
        retry = sse.retry(self.service.settings.retry_ms if self.sub.reason != "shutdown" else 500)
        body = retry + frame
        if self.sub.encode is not None:  # the per-subscriber frame encoder hook (hub.py)
            body = self.sub.encode(body)
        with anyio.move_on_after(1):
            await send({"type": "http.response.body", "body": body, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            self._finished = True
