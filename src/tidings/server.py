"""Running tidings under uvicorn, with a shutdown that streams hear about.

Uvicorn waits for open connections before it runs the lifespan shutdown, and an SSE stream is
an open connection that never ends by itself. :class:`Server` therefore tells the hub at the
first exit signal: every stream gets ``event: bye`` with a short retry hint and closes, new
streams are refused with 503, in-flight publishes finish, then the process exits.

:class:`EdgeProtocol` is the HTTP protocol both ``tidings serve`` and the test server run: it
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
from collections.abc import Iterator
from types import FrameType
from typing import Any

import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from tidings.delivery.edge import Edge
from tidings.delivery.stream import EDGE

log = logging.getLogger(__name__)
STREAM_PATH = "/v1/stream"
# Streams the edge may take over: /v1/stream and the compatible /sse/notifications.
STREAM_PATHS = frozenset({STREAM_PATH, "/sse/notifications"})


class EdgeProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, plus the edge (ARCHITECTURE.md, "The edge").

    Every request runs through the ASGI app unchanged. ``GET /v1/stream`` additionally finds
    the scope extension ``tidings.edge``: once the app has written the stream's head and
    opening, it calls it with an :class:`~tidings.delivery.edge.Edge`, and this protocol hands
    the edge its transport: the ASGI call returns (uvicorn is told the client left, so it logs
    nothing and writes nothing more), and from then on the hub writes the stream's frames to
    the transport directly, and this protocol routes the transport's flow control
    (``pause_writing``/``resume_writing``) and ``connection_lost`` to the edge.

    Relies on uvicorn's ``HttpToolsProtocol`` internals (``scope``, ``cycle``, ``flow``,
    ``transport``; ``RequestResponseCycle.disconnected``/``chunked_encoding``), pinned by
    ``requirements/lock.txt`` and checked by ``tests/delivery/test_edge.py``.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.edge: Edge | None = None

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        cycle = self.cycle
        if self.scope.get("path") in STREAM_PATHS and cycle is not None:
            extensions: dict[str, Any] = self.scope.setdefault("extensions", {})
            extensions[EDGE] = lambda edge: self._attach(cycle, edge)

    def _attach(self, cycle: RequestResponseCycle, edge: Edge) -> bool:
        """Give ``edge`` the transport; False when the client is gone already."""
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
        edge.attach(self.transport, chunked=bool(cycle.chunked_encoding), paused=paused)
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


class Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        super().__init__(config)
        self._app = app

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
        **kwargs,
    )
    server = Server(config, app)
    # Tens of thousands of long-lived streams make CPython's cyclic GC scan a large, mostly
    # immortal heap: move what exists at start out of its reach and collect young objects less
    # eagerly (docs/performance.md measured full collections of ~1.7 s at 10,000 streams).
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
    server.run(sockets=[sock] if sock is not None else None)
