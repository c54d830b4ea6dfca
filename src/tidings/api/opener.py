"""Opening streams below the framework: ``GET /v1/stream`` and ``/sse/notifications`` without
an ASGI cycle (ARCHITECTURE.md, "Flow: connect and reconnect").

The edge protocol (:class:`tidings.server.EdgeProtocol`) reads a stream request's token and
resume point with :func:`tidings.api.stream.plain_request` and hands it to :class:`Opener` as
a :class:`Ticket`. Tickets that arrive in one loop iteration, or while the previous batch is
being opened, are opened together by ONE task (one batch at a time, as a group commit: no wait
when idle, batches as large as the load in a connect storm):

1. each token is verified (``Tidings.verify_token``: its cache, then HS256 or the signing key
   of its ``kid``) and a subscriber registered (``Hub.subscribe``: caps, shutting down);
2. the users' muted types are asked of the channels' hook, all at once (its misses share one
   read; ``channels/runtime.py``);
3. the openings are made together (:func:`tidings.delivery.opening.open_many`): the views the
   hub does not keep are read in ONE read transaction for the whole batch;
4. each ticket is answered once (:meth:`Ticket.answer`): ``done(ticket, body)`` with
   ``retry`` + ``ready``/``reset`` + the replay (the protocol writes the head and that body in
   one write and hands the transport to the edge), or ``done(ticket, None)``.

``None`` means "let the route answer": every request the opener does not open plainly (an
invalid or expired token, a cap reached, shutting down, a resume only the store can replay, a
store error) runs through the ASGI app as if the opener did not exist, so every error, its
status, headers and problem+json body, is the route's own. The invariants of the ASGI path
hold unchanged: the subscriber is registered before the opening is read (invariant 3), the
same opening functions answer, and the same log lines are written.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.datastructures import MutableHeaders
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from tidings.api.compat_stream import legacy_frames
from tidings.api.cors import CORS
from tidings.delivery import sse
from tidings.delivery.opening import open_many
from tidings.delivery.stream import HEADERS, edges_of

if TYPE_CHECKING:
    from tidings.config import Settings
    from tidings.delivery.edge import Edges
    from tidings.delivery.hub import Subscriber
    from tidings.domain.principals import Principal
    from tidings.service import Tidings

log = logging.getLogger("tidings.delivery.stream")  # the ASGI path's stream lines, alike


class Ticket:
    """One stream request taken by the edge protocol, until :class:`Opener` answers it."""

    __slots__ = ("done", "legacy", "principal", "resume", "scope", "sent", "sub", "token")

    def __init__(
        self,
        token: str,
        resume: int | None,
        done: Callable[[Ticket, bytes | None], None] | None,
        *,
        legacy: bool = False,
    ) -> None:
        self.token = token
        self.resume = resume
        self.done = done
        self.legacy = legacy
        self.principal: Principal | None = None
        self.sub: Subscriber | None = None
        self.sent = 0  # the seq the opening accounts for (the edge's ``sent``)
        self.scope: Any = None  # for uvicorn's access line (only when it is written)

    def answer(self, body: bytes | None) -> None:
        """Answer once: the opening's body, or ``None`` (the route answers)."""
        done, self.done = self.done, None
        if done is not None:
            done(self, body)


class Opener:
    """The edge opener of one app (see the module docstring). Made by :func:`opener_of`."""

    def __init__(self, service: Tidings, settings: Settings) -> None:
        self.service = service
        self.edges: Edges = edges_of(service)
        self.retry = sse.retry(settings.retry_ms)
        self.replay_limit = settings.replay_limit
        self.cors = CORS(
            None,  # type: ignore[arg-type]  # only its header rules are used, never called
            settings.cors_origins,
            credentials=settings.cors_credentials,
            max_age=settings.cors_max_age,
        )
        # The client address of the access log line, as the app's proxy middleware sets it.
        self._proxy = ProxyHeadersMiddleware(_nothing, trusted_hosts=settings.forwarded_allow_ips)
        self._queue: list[Ticket] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self.batches = 0  # batches opened (each: at most one read for views, one for mutes)
        self.opened = 0  # streams opened here (the rest went through the route)

    def forwarded(self, scope: Any) -> Any:
        """A copy of ``scope`` with ``client`` and ``scheme`` as ``ProxyHeadersMiddleware``
        (app.py, ``TIDINGS_FORWARDED_ALLOW_IPS``) sets them for the route (it never waits)."""
        scope = dict(scope)
        call = self._proxy(scope, _nothing, _nothing)  # type: ignore[arg-type]
        with contextlib.suppress(StopIteration):
            call.send(None)
        return scope

    def headers(self, origin: str | None) -> list[tuple[bytes, bytes]]:
        """The stream response's headers, CORS included as ``api/cors.py`` adds them."""
        cors = self.cors
        if not (cors.any or cors.origins):
            return HEADERS
        out = MutableHeaders(raw=list(HEADERS))
        cors.decorate(out, origin if origin is not None and cors.allows(origin) else None)
        return out.raw

    def submit(self, ticket: Ticket) -> None:
        """Open ``ticket`` with the others of this loop iteration, or, while a batch is being
        opened, with every ticket that arrives meanwhile (as a group commit batches)."""
        if not self._queue and not self._tasks:
            asyncio.get_running_loop().call_soon(self._start)
        self._queue.append(ticket)

    def _start(self) -> None:
        batch, self._queue = self._queue, []
        if not batch:
            return
        self.batches += 1
        task = asyncio.get_running_loop().create_task(self._open(batch))
        self._tasks.add(task)
        task.add_done_callback(self._next)

    def _next(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if self._queue:
            self._start()

    async def _open(self, batch: list[Ticket]) -> None:
        try:
            ready = await self._subscribe(batch)
            if ready:
                await self._answer(ready)
        except Exception:  # never leave a ticket unanswered: the route answers (and logs)
            log.warning("edge opener failed for %d streams; the route answers", len(batch))
            for ticket in batch:
                if ticket.sub is not None and ticket.done is not None:
                    self.service.hub.unsubscribe(ticket.sub)
                    ticket.sub = None
                ticket.answer(None)

    async def _subscribe(self, batch: list[Ticket]) -> list[Ticket]:
        service = self.service
        ready = []
        for ticket in batch:
            try:
                ticket.principal = await service.verify_token(ticket.token)
                ticket.sub = await service.hub.subscribe(ticket.principal)
            except Exception:  # the route answers: 401, 429, 503… as it always has
                ticket.answer(None)
                continue
            ready.append(ticket)
        return ready

    async def _answer(self, ready: list[Ticket]) -> None:
        service = self.service
        subs = [t.sub for t in ready if t.sub is not None]
        if service.muted_types_many is not None:
            muted = await service.muted_many([sub.principal for sub in subs])
            for sub, types in zip(subs, muted, strict=True):
                sub.mute(types)
        openings = await open_many(
            service.hub,
            service.store,
            [(sub, t.resume) for sub, t in zip(subs, ready, strict=True)],
            replay_limit=self.replay_limit,
        )
        hub, delivered = service.hub, service.metrics.delivered
        for ticket, sub, opening in zip(ready, subs, openings, strict=True):
            if opening is None or opening.replay_to is not None:
                hub.unsubscribe(sub)  # a long resume: the route replays it from the store
                ticket.sub = None
                ticket.answer(None)
                continue
            p = sub.principal
            log.info(
                "stream open tenant=%s user=%s conn=%d resume=%s",
                p.tenant,
                p.user,
                sub.conn,
                ticket.resume,
            )
            body = self.retry + opening.data
            if ticket.legacy:
                sub.encode = legacy_frames
                body = legacy_frames(body)
            if opening.replayed:
                delivered.inc(opening.replayed)
            ticket.sent = opening.sent
            self.opened += 1
            ticket.answer(body)


async def _nothing(*_: Any) -> None:
    return None


def opener_of(app: object) -> Opener | None:
    """The edge opener of ``app`` (a tidings app whose lifespan has opened its service), made
    on first use; ``None`` for anything else (then every request goes through the app)."""
    state = getattr(app, "state", None)
    if state is None:
        return None
    opener: Opener | None = getattr(state, "edge_opener", None)
    if opener is None:
        service = getattr(state, "tidings", None)
        settings = getattr(state, "settings", None)
        if service is None or settings is None:
            return None
        opener = Opener(service, settings)
        state.edge_opener = opener
    elif opener.service is not getattr(state, "tidings", None):  # the app was started again
        state.edge_opener = None
        return opener_of(app)
    return opener
