"""Running tidings under uvicorn, with a shutdown that streams hear about.

Uvicorn waits for open connections before it runs the lifespan shutdown, and an SSE stream is
an open connection that never ends by itself. :class:`Server` therefore tells the hub at the
first exit signal: every stream gets ``event: bye`` with a short retry hint and closes, new
streams are refused with 503, in-flight publishes finish, then the process exits.

:class:`EdgeProtocol` is the HTTP protocol both ``tidings serve`` and the test server run: it
opens a plain stream request itself, below the framework (:mod:`tidings.api.opener`), and
hands a stream's transport to the hub once its opening is written (ARCHITECTURE.md, "The edge").

A SIGTERM that ends in a graceful shutdown exits with status 0 (an orchestrator's ordinary stop
is not a failure); uvicorn would re-raise the signal and so end with -15 / 143. SIGINT keeps
uvicorn's behaviour, and a forced exit (a second signal) is not graceful.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import socket
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any, cast

import httptools
import uvicorn
from fastapi import FastAPI
from uvicorn._types import ASGI3Application, ASGISendEvent
from uvicorn.logging import TRACE_LOG_LEVEL
from uvicorn.protocols.http.flow_control import FlowControl
from uvicorn.protocols.http.httptools_impl import (
    HEADER_VALUE_RE,
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)
from uvicorn.protocols.utils import get_client_addr, get_path_with_query_string
from uvicorn.server import ServerState

from tidings.api.fastpublish import PATHS as PUBLISH_PATHS
from tidings.api.fastpublish import edge_publisher
from tidings.api.opener import Opener, Ticket, opener_of
from tidings.api.stream import plain_request
from tidings.delivery.edge import Edge
from tidings.delivery.hub import Subscriber
from tidings.delivery.stream import EDGE, HEADERS

log = logging.getLogger(__name__)
log_stream = logging.getLogger("tidings.delivery.stream")
access_log = logging.getLogger("uvicorn.access")
TICKS_PER_WAKE = 10  # uvicorn's main loop ticks every 0.1 s; ours wakes every 10th tick
STREAM_PATH = "/v1/stream"
# Streams the edge may take over: /v1/stream and the compatible /sse/notifications.
STREAM_PATHS = frozenset({STREAM_PATH, "/sse/notifications"})
# The raw request targets the opener takes (path -> legacy wire): exactly these, no query
# string aside; anything else (an escaped path, a trailing slash…) goes through the app.
OPENED = {STREAM_PATH.encode(): False, b"/sse/notifications": True}
# Request headers that make a stream request not plain: a body, an upgrade, 100-continue.
NOT_PLAIN = frozenset({b"transfer-encoding", b"expect", b"upgrade"})
# The most bytes EdgeProtocol reads before it decides; a longer head goes to uvicorn as is.
HEAD_LIMIT = 64 * 1024


class EdgeProtocol(asyncio.Protocol):
    """The HTTP protocol of ``tidings serve`` (``http=EdgeProtocol``): the edge
    (ARCHITECTURE.md, "The edge").

    **A plain stream request never meets the framework.** A connection starts here: this small
    protocol parses its first request's head with httptools and keeps the bytes. A plain
    ``GET /v1/stream`` (or ``/sse/notifications``) on HTTP/1.1 with a stream token is given to
    the app's :class:`~tidings.api.opener.Opener` as a :class:`~tidings.api.opener.Ticket`; the
    opener verifies the token, registers the subscriber and makes the opening together with
    the other streams of the same loop iteration. Then this protocol writes the response head
    (as uvicorn would: its status line, its ``date`` and ``server`` headers, the route's
    headers and CORS, chunked) and the opening in ONE write, logs the access line as uvicorn
    would, and hands the transport to the :class:`~tidings.delivery.edge.Edge`, whose
    :class:`Handed` protocol takes this one's place.

    **Everything else is uvicorn's, unchanged.** Any other request, and a stream request the
    opener does not open (any error, a long resume), is *delegated*: an :class:`AppProtocol`
    (uvicorn's httptools protocol) takes the transport and is fed every byte received so far,
    so it answers exactly as if this protocol did not exist (the route's own refusals, byte
    for byte; ``tests/delivery/test_opener.py``). So are all connections when the app is not a
    started tidings app, or uvicorn runs with ``root_path`` or ``limit_concurrency``.

    Invariants: each connection is answered by exactly one of the two; this protocol stands in
    uvicorn's ``server_state.connections`` until it delegates or hands over (so a graceful
    shutdown waits for it and tells it to close); it holds at most :data:`HEAD_LIMIT` bytes
    before it delegates; its parser's reference to it is dropped as soon as the head is read,
    so nothing of a connection waits for the cyclic GC.
    """

    __slots__ = (
        "app",
        "app_state",
        "config",
        "data",
        "gone",
        "headers",
        "loop",
        "opener",
        "origin",
        "parser",
        "paused",
        "server_state",
        "stopping",
        "ticket",
        "transport",
        "url",
        "verdict",
    )

    def __init__(
        self,
        config: uvicorn.Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        if not config.loaded:
            config.load()
        self.config = config
        self.server_state = server_state
        self.app_state = app_state
        self.loop = _loop
        self.transport: asyncio.Transport | None = None
        self.app: AppProtocol | None = None  # who answers, once delegated
        self.opener: Opener | None = None
        self.parser: httptools.HttpRequestParser | None = None
        self.data = b""  # every byte received until the decision (fed to the AppProtocol)
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.origin: str | None = None
        self.verdict: Ticket | bool | None = None  # a Ticket (taken), False (delegate)
        self.ticket: Ticket | None = None  # with the opener, not answered yet
        self.paused = False  # the transport's flow control, until the edge or app has it
        self.gone = False
        self.stopping = False  # shutdown() came while the opener had the request

    # -- connection ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self.transport = transport
        config = self.config
        opener = opener_of(config.app)
        if opener is None or config.root_path or config.limit_concurrency is not None:
            self._delegate()
            return
        self.opener = opener
        self._connections().add(self)
        self.parser = httptools.HttpRequestParser(self)

    def data_received(self, data: bytes) -> None:
        app = self.app
        if app is not None:  # transports that cannot swap protocols land here
            app.data_received(data)
            return
        if self.verdict is not None:  # with the opener: kept for the route if it declines
            self.data += data
            if len(self.data) >= HEAD_LIMIT and self.transport is not None:
                self.transport.pause_reading()  # until the opener answers (_opened)
            return
        parser = self.parser
        if parser is None:
            return
        self.data += data
        try:
            parser.feed_data(data)
        except httptools.HttpParserError:  # malformed, or an upgrade: uvicorn's to answer
            self.verdict = False
        verdict = self.verdict
        if verdict is None:
            if len(self.data) >= HEAD_LIMIT:
                self._delegate()
            return
        self.parser = None  # the parser refers to this protocol: no cycle left behind
        self.headers = []
        if verdict is False:
            self._delegate()
            return
        assert isinstance(verdict, Ticket) and self.opener is not None
        self.ticket = verdict
        self.opener.submit(verdict)

    def eof_received(self) -> None:
        if self.app is not None:
            self.app.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        app = self.app
        if app is not None:
            app.connection_lost(exc)
            return
        self._connections().discard(self)
        self.gone = True
        self.parser = None
        self.data = b""
        # A ticket still with the opener: _opened finds the client gone and lets go.

    def pause_writing(self) -> None:
        if self.app is not None:
            self.app.pause_writing()
        else:
            self.paused = True

    def resume_writing(self) -> None:
        if self.app is not None:
            self.app.resume_writing()
        else:
            self.paused = False

    def shutdown(self) -> None:
        """uvicorn's graceful shutdown: an idle connection (no whole request head yet) is
        closed; one whose stream is being opened is told by the hub (it leaves with ``bye``,
        or the route answers 503 and closes)."""
        if self.app is not None:
            self.app.shutdown()
        elif self.ticket is not None:
            self.stopping = True
        elif self.transport is not None:
            self.transport.close()

    def _connections(self) -> set[Any]:
        """uvicorn's open connections (typed there as its own protocols only)."""
        connections: set[Any] = self.server_state.connections
        return connections

    # -- the request's head (httptools callbacks) --------------------------------------------

    def on_url(self, url: bytes) -> None:
        if self.verdict is None:
            self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.verdict is None:
            self.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        if self.verdict is None:
            self.verdict = self._take() or False

    def _take(self) -> Ticket | None:
        """A ticket for the opener when this request is a plain stream request, else None."""
        assert self.parser is not None
        taken = _plain(self.parser, self.url, self.headers, self._opened)
        if taken is None:
            return None
        ticket, self.origin = taken
        if access_log.isEnabledFor(logging.INFO) and access_log.hasHandlers():
            path, _, query = self.url.partition(b"?")
            ticket.scope = self._scope(path, query)
        return ticket

    def _scope(self, path: bytes, query: bytes) -> dict[str, Any]:
        """What uvicorn's access log line reads of a request's scope (client, path, query),
        as the app's proxy middleware sets it (``Opener.forwarded``)."""
        transport = self.transport
        assert transport is not None
        peer = transport.get_extra_info("peername")
        tcp = isinstance(peer, tuple | list) and len(peer) >= 2
        scope = {
            "type": "http",
            "client": (str(peer[0]), int(peer[1])) if tcp else None,
            "scheme": "https" if transport.get_extra_info("sslcontext") else "http",
            "headers": self.headers,
            "root_path": "",
            "path": path.decode("ascii"),
            "query_string": query,
        }
        assert self.opener is not None
        forwarded: dict[str, Any] = self.opener.forwarded(scope)
        return forwarded

    # -- the opener's answer ---------------------------------------------------------------

    def _opened(self, ticket: Ticket, body: bytes | None) -> None:
        """The opener's answer: write the head and the opening, hand the transport to the
        edge; or (``body`` None) delegate: the route answers."""
        self.ticket = None
        opener, sub = self.opener, ticket.sub
        assert opener is not None
        if len(self.data) >= HEAD_LIMIT and not self.gone and self.transport is not None:
            self.transport.resume_reading()
        if body is None or sub is None:
            if not self.gone:
                self._delegate(declined=True)
            return
        transport = self.transport
        if self.gone or transport is None or transport.is_closing():
            _dropped(opener, sub)
            return
        try:
            self._hand_over(opener, transport, ticket, sub, body)
        except Exception:  # never a subscriber left behind without its stream
            log.exception("stream hand-over failed conn=%d", sub.conn)
            _dropped(opener, sub)
            transport.close()

    def _hand_over(
        self,
        opener: Opener,
        transport: asyncio.Transport,
        ticket: Ticket,
        sub: Subscriber,
        body: bytes,
    ) -> None:
        """Write the head and the opening in one write; the edge takes the transport."""
        _write_opening(transport, self.server_state, opener, self.origin, ticket.scope, body)
        self.data = b""
        if transport.is_closing():  # the write found the client gone
            _dropped(opener, sub)
            return
        edge = Edge(opener.edges, sub, ticket.sent)
        connections = self._connections()
        handed = Handed(edge, transport, connections)
        connections.discard(self)
        connections.add(handed)
        transport.set_protocol(handed)
        edge.attach(transport, chunked=True, paused=self.paused)
        if sub.reason is not None:  # told to leave during its opening (shutdown, a gap)
            edge.leave(sub.reason)
        elif self.stopping:
            handed.shutdown()

    def _delegate(self, *, declined: bool = False) -> None:
        """uvicorn answers from here on: an :class:`AppProtocol` takes the transport and is
        fed every byte received so far (``declined``: the opener has had the first request
        and left it to the route, which answers it without asking the opener again)."""
        transport = self.transport
        assert transport is not None
        self.parser = None
        self._connections().discard(self)
        app = AppProtocol(
            config=self.config,
            server_state=self.server_state,
            app_state=self.app_state,
            _loop=self.loop,
        )
        self.app = app
        app.declined = declined
        app.connection_made(transport)
        transport.set_protocol(app)
        if self.paused:
            app.pause_writing()
        data, self.data = self.data, b""
        if data:
            app.data_received(data)
        if self.stopping:
            app.shutdown()


class AppProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, for every connection :class:`EdgeProtocol` delegates
    (ARCHITECTURE.md, "The edge"): every request runs through the ASGI app as in uvicorn, with
    three additions.

    - A sized answer's head goes out with its body in one write (:class:`SizedHeadCycle`).
    - A later plain stream request on a kept-alive connection (a browser's ``EventSource``
      often reuses the connection its page's ``fetch`` used) is opened by the opener too:
      uvicorn builds its request cycle as always, but its ASGI task is held back
      (:meth:`_start_asgi_task`) until the opener answers; the head and opening are written as
      :class:`EdgeProtocol` writes them, or, when the opener leaves the request to the route,
      the held task starts as if the opener did not exist.
    - ``GET /v1/stream`` (and ``/sse/notifications``) finds the scope extension
      ``tidings.edge``: once the route has written the stream's head and opening (a stream
      the opener left to it, e.g. a long resume), it calls it with an
      :class:`~tidings.delivery.edge.Edge`, and this protocol hands the edge its transport:
      the ASGI call returns (uvicorn is told the client left, so it logs nothing and writes
      nothing more).

    Either way, once the edge has the transport, the transport's protocol becomes a
    :class:`Handed` that takes this protocol's place in uvicorn's
    ``server_state.connections``, and this protocol object is freed.

    Relies on uvicorn's ``HttpToolsProtocol`` internals (``scope``, ``cycle``, ``flow``,
    ``transport``, ``_start_asgi_task``; ``RequestResponseCycle.disconnected``/
    ``chunked_encoding``), pinned by ``requirements/lock.txt`` and checked by
    ``tests/delivery/test_edge.py``.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.edge: Edge | None = None
        self.declined = False  # the opener has had this connection's next request already
        self._opener: Opener | None = None
        self._taken: Ticket | None = None  # taken by the opener, its cycle not built yet
        self._held: tuple[RequestResponseCycle, ASGI3Application] | None = None
        self._origin: str | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """uvicorn's, with the addresses read from the transport's ``sockname``/``peername``
        rather than through ``get_extra_info("socket")`` (which builds and detaches a
        ``socket.socket`` twice per connection under uvloop)."""
        self.connections.add(self)
        self.transport = transport
        self.flow = FlowControl(transport)
        self.server = _address(transport.get_extra_info("sockname"))
        peer = transport.get_extra_info("peername")
        tcp = isinstance(peer, tuple | list) and len(peer) >= 2
        self.client = (str(peer[0]), int(peer[1])) if tcp else None
        self.scheme = "https" if transport.get_extra_info("sslcontext") else "http"
        if self.logger.level <= TRACE_LOG_LEVEL:
            prefix = f"{self.client[0]}:{self.client[1]} - " if self.client else ""
            self.logger.log(TRACE_LOG_LEVEL, "%sHTTP connection made", prefix)

    def on_headers_complete(self) -> None:
        self._taken = self._take()
        super().on_headers_complete()
        cycle = self.cycle
        if type(cycle) is RequestResponseCycle:  # made just now; its task has not run yet
            cycle.__class__ = SizedHeadCycle
        if self.scope.get("path") in STREAM_PATHS and cycle is not None:
            extensions: dict[str, Any] = self.scope.setdefault("extensions", {})
            extensions[EDGE] = lambda edge: self._attach(cycle, edge)

    def _take(self) -> Ticket | None:
        """A ticket for the opener when this request is a plain stream request that can be
        answered now (none pending before it), else None."""
        if self.declined:  # EdgeProtocol's opener left this request to the route
            self.declined = False
            return None
        if (
            (self.cycle is not None and not self.cycle.response_complete)
            or self.pipeline
            or self.root_path
            or self.limit_concurrency is not None
            or self.edge is not None
        ):
            return None
        opener = opener_of(self.config.app)
        if opener is None:
            return None
        taken = _plain(self.parser, self.url, self.headers, self._opened)
        if taken is None:
            return None
        self._opener = opener
        ticket, self._origin = taken
        return ticket

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: ASGI3Application) -> None:
        ticket, self._taken = self._taken, None
        if ticket is None or self._opener is None:
            scope = cycle.scope
            if scope["method"] == "POST" and scope["path"] in PUBLISH_PATHS and app is self.app:
                publisher = edge_publisher(app)  # below the app's layers (api/fastpublish.py)
                if publisher is not None:
                    app = cast(ASGI3Application, publisher)
            super()._start_asgi_task(cycle, app)
            return
        self._held = (cycle, app)  # started only if the opener leaves it to the route
        self._opener.submit(ticket)

    def _opened(self, ticket: Ticket, body: bytes | None) -> None:
        """The opener's answer: write the head and the opening, hand the transport to the
        edge; or (``body`` None) let the route answer."""
        held, self._held = self._held, None
        opener = self._opener
        sub = ticket.sub
        assert held is not None and opener is not None
        cycle, app = held
        gone = cycle.disconnected or self.transport.is_closing()
        if body is None or sub is None:
            if not gone:
                super()._start_asgi_task(cycle, app)
            return
        if gone:
            _dropped(opener, sub)
            return
        try:
            scope = None
            if access_log.isEnabledFor(logging.INFO) and access_log.hasHandlers():
                scope = opener.forwarded(cycle.scope)
            origin, self._origin = self._origin, None
            cycle.response_started = True
            cycle.chunked_encoding = True
            _write_opening(self.transport, self.server_state, opener, origin, scope, body)
            edge = Edge(opener.edges, sub, ticket.sent)
            if not self._attach(cycle, edge):  # the write found the client gone
                _dropped(opener, sub)
            elif sub.reason is not None:  # told to leave during its opening (shutdown, a gap)
                edge.leave(sub.reason)
        except Exception:  # never a subscriber left behind without its stream
            log.exception("stream hand-over failed conn=%d", sub.conn)
            _dropped(opener, sub)
            self.transport.close()

    def _attach(self, cycle: RequestResponseCycle, edge: Edge) -> bool:
        """Give ``edge`` the transport; False when the client is gone already."""
        # The extension's closure holds the cycle whose scope holds the closure: a reference
        # cycle that only the cyclic GC would free, with this protocol and its request state
        # in it (21 objects per connect; docs/performance.md). Broken here, all is freed as
        # soon as the last reference goes.
        extensions = cycle.scope.get("extensions")
        if extensions is not None:
            extensions.pop(EDGE, None)
        if cycle.disconnected or self.transport.is_closing():
            return False
        cycle.disconnected = True  # the ASGI call ends here; uvicorn writes nothing more
        self.edge = edge
        paused = self.flow.write_paused
        if self.cycle is cycle:  # drop the request's state: the edge needs none of it
            self.cycle = None  # type: ignore[assignment]
            self.scope = None  # type: ignore[assignment]
            self.headers = None  # type: ignore[assignment]
            # Nor the parser or uvicorn's flow control (its callbacks go to the edge now).
            self.parser = None  # type: ignore[assignment]
            self.flow = None  # type: ignore[assignment]
            self.url = b""
            # Nor its pipeline (an empty deque holds a 64-slot block) and address tuples.
            self.pipeline = None  # type: ignore[assignment]
            self.client = self.server = None
        transport = self.transport
        edge.attach(transport, chunked=bool(cycle.chunked_encoding), paused=paused)
        # From here the transport's callbacks go to a tiny protocol that routes them to the
        # edge, and uvicorn's bookkeeping of open connections holds that one instead of this
        # protocol object: this object and all it references are freed (issue 8, memory per
        # stream; docs/performance.md).
        self._unset_keepalive_if_required()
        connections: set[Any] = self.connections
        handed = Handed(edge, transport, connections)
        connections.discard(self)
        connections.add(handed)
        transport.set_protocol(handed)
        return True

    def data_received(self, data: bytes) -> None:
        if self.edge is None:
            super().data_received(data)
        # A stream's client has nothing more to say; what it sends is ignored.

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self.edge is not None:
            self.edge.lost()

    def pause_writing(self) -> None:
        if self.edge is None:
            super().pause_writing()
        else:
            self.edge.pause_writing()

    def resume_writing(self) -> None:
        if self.edge is None:
            super().resume_writing()
        else:
            self.edge.resume_writing()

    def shutdown(self) -> None:
        if self.edge is None:
            super().shutdown()
        else:
            self.edge.sub.leave("shutdown")


class SizedHeadCycle(RequestResponseCycle):
    """uvicorn's request cycle, whose response head, when it has a ``content-length`` (a sized
    body follows: every JSON answer, problem and file), is written together with the first
    part of the body: one ``write``, one TCP segment and one wake-up of the client instead of
    two. Everything else is uvicorn's: the head is built, checked and logged by its ``send``;
    only the moment of its write moves. A head without a length (a stream, chunked) is written
    at once as before. If no body follows (the app failed after starting its answer), the
    connection is closed as uvicorn closes it, without the head."""

    _held: bytes | None = None

    async def send(self, message: ASGISendEvent) -> None:
        if message["type"] == "http.response.start" and not self.response_started:
            sized = any(name.lower() == b"content-length" for name, _ in message.get("headers", ()))
            if sized:
                real, held = self.transport, _Held()
                self.transport = held  # type: ignore[assignment]
                try:
                    await super().send(message)
                finally:
                    self.transport = real
                self._held = b"".join(held.parts) or None
                return
        head = self._held
        if head is not None and message["type"] == "http.response.body":
            self._held = None
            real, joined = self.transport, _Joined(self.transport, head)
            self.transport = joined  # type: ignore[assignment]
            try:
                await super().send(message)
            finally:
                self.transport = real
                joined.flush()  # nothing was written (HEAD, an error): the head still goes
            return
        await super().send(message)


class _Held:
    """Takes the head uvicorn writes while its start message is sent."""

    __slots__ = ("parts",)

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.parts.append(data)


class _Joined:
    """The transport while the first body part is sent: its first write carries the head."""

    __slots__ = ("_head", "_real")

    def __init__(self, real: asyncio.Transport, head: bytes) -> None:
        self._real, self._head = real, head

    def write(self, data: bytes) -> None:
        head, self._head = self._head, b""
        self._real.write(head + data if head else data)

    def flush(self) -> None:
        head, self._head = self._head, b""
        if head and not self._real.is_closing():  # the client may have left meanwhile
            self._real.write(head)

    def close(self) -> None:
        self.flush()  # nothing was written yet (HEAD): the head goes before the close
        self._real.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def _plain(
    parser: httptools.HttpRequestParser,
    url: bytes,
    headers: list[tuple[bytes, bytes]],
    done: Callable[[Ticket, bytes | None], None],
) -> tuple[Ticket, str | None] | None:
    """A ticket for the opener and the request's ``Origin``, when the request whose head
    ``parser`` has just read is a plain stream request: ``GET`` on HTTP/1.1, kept alive, no
    upgrade, no body, no ``Expect``, exactly ``/v1/stream`` or ``/sse/notifications`` with a
    plain query, and a stream token and resume point as the route reads them
    (:func:`~tidings.api.stream.plain_request`). ``headers`` have lower-case names."""
    if (
        parser.get_method() != b"GET"
        or parser.get_http_version() != "1.1"
        or not parser.should_keep_alive()
        or parser.should_upgrade()
    ):
        return None
    path, _, query = url.partition(b"?")
    legacy = OPENED.get(path)
    if legacy is None or b"%00" in query or b"#" in query or not query.isascii():
        return None
    origin = None
    for name, value in headers:
        if name in NOT_PLAIN or (name == b"content-length" and value != b"0"):
            return None
        if name == b"origin" and origin is None:
            if HEADER_VALUE_RE.search(value):
                return None  # uvicorn refuses to echo it (the route answers 500 as ever)
            origin = value.decode("latin-1")
    request = plain_request(headers, query, legacy=legacy)
    if request is None:
        return None
    return Ticket(request[0], request[1], done, legacy=legacy), origin


def _write_opening(
    transport: asyncio.Transport,
    server_state: ServerState,
    opener: Opener,
    origin: str | None,
    scope: Any,
    body: bytes,
) -> None:
    """A stream's head (as uvicorn writes it) and its opening, in ONE write; with ``scope``
    (access logging on), uvicorn's access line first, as its request cycle writes it."""
    head = _head(server_state.default_headers, opener.headers(origin))
    if scope is not None:
        access_log.info(
            '%s - "%s %s HTTP/%s" %d',
            get_client_addr(scope),
            "GET",
            get_path_with_query_string(scope),
            "1.1",
            200,
        )
    transport.write(b"".join((head, b"%x\r\n" % len(body), body, b"\r\n")))


def _address(info: Any) -> tuple[str, int | None] | None:
    """The server address as uvicorn's ``get_local_addr`` gives it: ``(host, port)`` of an
    IPv4 or IPv6 socket, ``(path, None)`` of a Unix socket, else ``None``."""
    if isinstance(info, tuple | list) and len(info) >= 2:
        return (str(info[0]), int(info[1]))
    if isinstance(info, str):
        return (info, None)
    return None


# The head of the last stream opened without CORS headers, and uvicorn's default headers it
# was made with (see _head).
_kept: tuple[list[tuple[bytes, bytes]] | None, bytes] = (None, b"")


def _head(defaults: list[tuple[bytes, bytes]], headers: list[tuple[bytes, bytes]]) -> bytes:
    """A stream response's head (status line, uvicorn's ``date``/``server`` headers, the
    route's headers and CORS, chunked), as uvicorn writes it. Reused while uvicorn's default
    headers are the same list (it makes a new one as the ``date`` changes, once a second) and
    the headers are the opener's shared ``HEADERS`` (no CORS); with CORS headers (made per
    origin) it is built each time."""
    global _kept
    if headers is HEADERS and _kept[0] is defaults:
        return _kept[1]
    parts = [STATUS_LINE[200]]
    for name, value in (*defaults, *headers):
        parts += (name, b": ", value, b"\r\n")
    parts.append(b"transfer-encoding: chunked\r\n\r\n")
    head = b"".join(parts)
    if headers is HEADERS:
        _kept = (defaults, head)
    return head


class Handed(asyncio.Protocol):
    """The protocol of a stream's transport once the edge has it (:meth:`EdgeProtocol._attach`
    swaps it in with ``transport.set_protocol``): the transport's flow control
    (``pause_writing``/``resume_writing``) and ``connection_lost`` go to the :class:`Edge`,
    what the client sends is ignored, and it stands in uvicorn's ``server_state.connections``
    for the stream (``shutdown`` tells the stream to leave with ``bye``; ``connection_lost``
    removes it, so a graceful shutdown waits for the stream exactly as before).

    Invariant: three references and nothing else, so an open stream holds this instead of
    uvicorn's protocol object and its request state (issue 8, memory per stream)."""

    __slots__ = ("connections", "edge", "transport")

    def __init__(self, edge: Edge, transport: asyncio.BaseTransport, connections: set[Any]) -> None:
        self.edge = edge
        self.transport = transport
        self.connections = connections

    def data_received(self, data: bytes) -> None:
        """A stream's client has nothing more to say; what it sends is ignored."""

    def connection_lost(self, exc: Exception | None) -> None:
        self.connections.discard(self)
        self.edge.lost()

    def pause_writing(self) -> None:
        self.edge.pause_writing()

    def resume_writing(self) -> None:
        self.edge.resume_writing()

    def shutdown(self) -> None:
        self.edge.sub.leave("shutdown")


def _dropped(opener: Opener, sub: Subscriber) -> None:
    """A stream opened for a client that left before it was handed over."""
    opener.service.hub.unsubscribe(sub)
    p = sub.principal
    log_stream.info(
        "stream closed tenant=%s user=%s conn=%d reason=disconnect sent=0",
        p.tenant,
        p.user,
        sub.conn,
    )


class Server(uvicorn.Server):
    """uvicorn's server, with a graceful shutdown streams hear about (module docstring) and a
    main loop that wakes once a second, not ten times: its tick refreshes the ``date`` header
    (once a second in uvicorn too) and checks for exit, and an exit request (a signal, or
    ``should_exit`` set from any thread) ends the wait at once."""

    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        self._exit_requested = False
        self._ring: Callable[[], object] | None = None  # ends main_loop's wait (while it runs)
        super().__init__(config)
        self._app = app

    @property
    def should_exit(self) -> bool:
        return self._exit_requested

    @should_exit.setter
    def should_exit(self, value: bool) -> None:
        self._exit_requested = value
        ring = self._ring
        if value and ring is not None:
            ring()

    async def main_loop(self) -> None:
        loop = asyncio.get_running_loop()
        woken = asyncio.Event()
        self._ring = lambda: loop.call_soon_threadsafe(woken.set)
        try:
            counter = 0
            should_exit = await self.on_tick(counter)
            while not should_exit:
                counter = (counter + TICKS_PER_WAKE) % 864000  # uvicorn's ticks are 0.1 s
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(woken.wait(), TICKS_PER_WAKE / 10)
                should_exit = await self.on_tick(counter)
        finally:
            self._ring = None

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """uvicorn's graceful shutdown, without waiting out its timeout for clients that stopped
        reading: a connection uvicorn has already closed (a stream cut off at shutdown) but
        whose unread output keeps it open is aborted, so shutdown ends at once and logs no
        "timeout graceful shutdown exceeded" ERROR for an expected event."""

        async def abort_unread() -> None:
            while True:
                for connection in list(self.server_state.connections):
                    transport = getattr(connection, "transport", None)
                    if transport is not None and transport.is_closing():
                        transport.abort()
                await asyncio.sleep(0.1)

        aborter = asyncio.create_task(abort_unread())
        try:
            await super().shutdown(sockets)
        finally:
            aborter.cancel()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self._app.state.exit_requested = True  # ends a start-up wait for the store
        service = getattr(self._app.state, "tidings", None)
        if service is not None and not service.hub.closing:
            log.info("exit signal %s: closing %d streams", sig, service.hub.stream_count)
            service.hub.shutdown()
        super().handle_exit(sig, frame)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        with super().capture_signals():
            try:
                yield
            finally:
                if not self.force_exit:  # graceful: SIGTERM is not re-raised, exit status 0
                    captured = self._captured_signals
                    captured[:] = [s for s in captured if s != signal.SIGTERM]


def serve(
    app: FastAPI,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    log_level: str = "info",
    sock: socket.socket | None = None,
    backlog: int = 4096,
    **kwargs: Any,
) -> None:
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level.lower(),
        timeout_graceful_shutdown=15,
        # The app believes X-Forwarded-* from TIDINGS_FORWARDED_ALLOW_IPS only (app.py).
        proxy_headers=False,
        http=EdgeProtocol,
        # uvicorn's default (2048) is below nginx's and Nchan's 4096: a reconnect storm of
        # 5,000 streams would overflow it and pay a 1 s SYN retry (TIDINGS_BACKLOG).
        backlog=backlog,
        **kwargs,
    )
    server = Server(config, app)
    tune_gc()
    server.run(sockets=[sock] if sock is not None else None)


def tune_gc() -> None:
    """Tens of thousands of long-lived streams make CPython's cyclic GC scan a large, mostly
    immortal heap: move what exists at start out of its reach and collect young objects less
    eagerly (docs/performance.md measured full collections of ~1.7 s at 10,000 streams). A
    stream leaves nothing for the collector (``tests/delivery/test_edge.py``)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
