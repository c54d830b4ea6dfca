"""``create_app(settings)``: the only place that wires store, broker, hub, service and routers.

Nothing is opened at import time: the lifespan opens the engine, the broker and the hub, and
closes them in reverse order.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from pathlib import Path

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

import tidings
from tidings import channels, demo, outbox
from tidings.api import admin, compat, feed, health, problems, publish, stream, tokens
from tidings.api.compat_stream import router as compat_stream_router
from tidings.api.cors import CORS
from tidings.config import Settings
from tidings.delivery.broker import Envelope, Signal, from_url
from tidings.delivery.hub import Hub
from tidings.delivery.stream import UnfinishedStreams
from tidings.logs import RedactCredentials
from tidings.metrics import Metrics
from tidings.service import Tidings
from tidings.store import Store

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "web" / "static"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    settings.check_secrets()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        install_log_redaction()
        async with AsyncExitStack() as stack:
            store = Store(settings.database_url)
            stack.push_async_callback(store.close)
            # PostgreSQL down at start: wait for it (the port opens only once it answers).
            await store.wait_reachable(
                max_delay=settings.store_retry_max_delay,
                timeout=settings.store_wait_timeout,
                should_stop=lambda: getattr(app.state, "exit_requested", False),
            )
            if settings.is_sqlite or settings.auto_migrate:
                await store.migrate()
            metrics = Metrics()
            broker = from_url(settings.broker_url)
            await stack.enter_async_context(broker)
            hub = Hub(
                store,
                metrics,
                buffer=settings.subscriber_buffer,
                max_per_user=settings.max_streams_per_user,
                max_per_tenant=settings.max_streams_per_tenant,
                ring=settings.stream_ring,
                views=settings.stream_views,
                view_ttl=settings.stream_view_ttl,
            )
            service = Tidings(settings, store, broker, hub, metrics)
            await service.load_secrets()  # settings, else generated once in the store
            app.state.tidings = service
            if settings.shared_limits_url:  # stream caps across instances (delivery/slots.py)
                from tidings.delivery.slots import RedisSlots

                hub.slots = await stack.enter_async_context(
                    RedisSlots(
                        settings.shared_limits_url,
                        service.instance_id,
                        max_per_user=settings.max_streams_per_user,
                        max_per_tenant=settings.max_streams_per_tenant,
                        ttl=settings.stream_slot_ttl,
                    )
                )
            tasks = [
                asyncio.create_task(listen(service), name="tidings-broker-listener"),
                asyncio.create_task(sweep_forever(service), name="tidings-sweep"),
                asyncio.create_task(prune_forever(service), name="tidings-retention"),
            ]
            for hook in getattr(app.state, "startup_hooks", []):
                await hook(service, stack)
            try:
                yield
            finally:
                hub.shutdown()
                for task in tasks:
                    task.cancel()
                for task in tasks:
                    with suppress(asyncio.CancelledError):
                        await task

    docs = settings.docs if settings.docs is not None else settings.env != "production"
    app = FastAPI(
        title="tidings",
        version=tidings.__version__,
        summary="Real-time in-app notifications for multi-tenant SaaS",
        lifespan=lifespan,
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        openapi_url="/openapi.json" if docs else None,
    )
    app.state.settings = settings
    app.state.startup_hooks = []
    problems.install(app)
    for router in (
        publish.router,
        stream.router,
        feed.router,
        tokens.router,
        admin.router,
        compat.router,
        compat_stream_router,  # the booking dashboard's /sse/notifications
        health.router,
    ):
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC, check_dir=False), name="static")
    # -- extensions: each adds its routers / startup hooks in one line here -------------------
    demo.install(app)  # the Bounce House Rentals demo, when TIDINGS_DEMO is on
    channels.install(app)  # preferences, reminders, web push, e-mail digests
    outbox.install(app)  # the outbox consumer (TIDINGS_OUTBOX_URL) and its operator routes
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    app.add_middleware(TextTarget)
    # Cross-origin pages (TIDINGS_CORS_ORIGINS): browser-facing routes only (api/cors.py).
    app.add_middleware(
        CORS,
        origins=settings.cors_origins,
        credentials=settings.cors_credentials,
        max_age=settings.cors_max_age,
    )
    # Outermost: https and the client's address from trusted proxies only (server.py turns
    # uvicorn's own proxy handling off, so this setting is the one that counts).
    app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.forwarded_allow_ips)
    return app


async def listen(service: Tidings) -> None:
    """Feed the hub from the broker; poll the store while the broker is away (invariant 3)."""
    hub, delay, connected_once = service.hub, 0.5, False
    poller: asyncio.Task[None] | None = None

    async def poll(until_whole: bool) -> None:
        """Catch up every second: while the broker is away, or (``until_whole``) until one
        catch-up succeeds after a failed one (the store was down when the broker was not)."""
        while True:
            await asyncio.sleep(1.0)
            try:
                await hub.catch_up()
            except Exception as error:
                log.debug("catch-up failed: %r", error)
                continue
            if until_whole:
                return

    def start_polling(until_whole: bool) -> None:
        nonlocal poller
        if poller is not None and not poller.done():
            if until_whole:
                return
            poller.cancel()
        poller = asyncio.create_task(poll(until_whole))

    def stop_polling() -> None:
        nonlocal poller
        if poller is not None:
            poller.cancel()
            poller = None

    while True:
        try:
            async for item in service.broker.listen():
                if item is Signal.CONNECTED:
                    hub.broker_changed(connected=True)  # read events may have been lost
                    stop_polling()
                    if connected_once:
                        log.info("broker reconnected; catching up from the store")
                    connected_once, delay = True, 0.5
                    try:
                        await hub.catch_up()
                    except Exception as error:
                        log.warning("catch-up failed (%r); retrying every second", error)
                        start_polling(until_whole=True)
                elif item is Signal.DISCONNECTED:
                    hub.broker_changed(connected=False)
                    log.warning("broker disconnected; polling the store until it is back")
                    start_polling(until_whole=False)
                elif isinstance(item, bytes):
                    try:
                        await _dispatch(service, item)
                    except Exception as error:  # a gap fill met a store outage
                        log.warning("delivery from the store failed (%r); retrying", error)
                        start_polling(until_whole=True)
            return
        except asyncio.CancelledError:
            stop_polling()
            raise
        except Exception as error:
            log.warning("broker listener failed (%r); polling, retry in %.1fs", error, delay)
            hub.broker_changed(connected=False)
            start_polling(until_whole=False)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)


async def _dispatch(service: Tidings, raw: bytes) -> None:
    try:
        envelope = Envelope.decode(raw)
    except (ValueError, UnicodeDecodeError):
        log.warning("ignoring a malformed broker message")
        return
    if envelope.origin == service.instance_id:
        return  # delivered locally when it was published
    if envelope.kind == "n":
        await service.hub.deliver_raw(envelope.tenant, envelope.seq, envelope.payload)
    elif envelope.kind == "e" and envelope.event in ("read", "archived"):
        service.hub.deliver_ephemeral(
            envelope.tenant, envelope.user, envelope.event, envelope.payload
        )
    elif envelope.kind == "p":  # preferences changed elsewhere: caches forget (channels/mutes.py)
        service.hub.preferences_changed(envelope.tenant, envelope.user or None)


async def sweep_forever(service: Tidings) -> None:
    """Catch up from the store every ``sweep_interval`` s, whatever the broker says: a broker
    message lost without a disconnect (a publish that failed while listeners stayed connected)
    delays a notification by at most this long, never forever."""
    while True:
        await asyncio.sleep(service.settings.sweep_interval)
        try:
            await service.hub.catch_up()
        except Exception as error:
            log.debug("sweep failed: %r", error)


async def prune_forever(service: Tidings, every: float = 3600.0) -> None:
    while True:
        try:
            removed = await service.prune()
            if removed:
                log.info("retention pruned %d notifications", removed)
        except Exception as error:
            log.warning("retention pruning failed: %r", error)
        await asyncio.sleep(every)


class BodyLimit:
    """Refuse bodies over ``limit`` bytes with a 413 problem, before anything is parsed.

    A declared ``Content-Length`` over the limit is refused at once. A body without one
    (``Transfer-Encoding: chunked``) is read here first, up to ``limit`` bytes — no more is ever
    held — and then refused, or handed to the app whole. (Raising from inside the app's
    ``receive`` instead would reach the framework's body parser, which answers 400.)
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            if not declared.isdigit() or int(declared) > self.limit:
                await self._refuse(scope, receive, send)
                return
            await self.app(scope, receive, send)  # the server reads no more than declared
            return
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > self.limit:
                await self._refuse(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body, replayed = b"".join(chunks), False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problems.problem(
            413,
            "payload_too_large",
            "Payload too large",
            f"The request body exceeds {self.limit} bytes.",
        )
        await response(scope, receive, send)


class TextTarget:
    """Refuse a request whose path or query holds NUL (``%00``) with a 400 problem.

    Bodies are text-checked by their models (:class:`tidings.domain.inputs.StrictModel`); the
    URL is the other place text comes from (headers and cookies cannot carry NUL), and no store
    can hold NUL, so no route ever needs it.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (
            b"%00" in scope.get("raw_path", b"")
            or b"%00" in scope.get("query_string", b"")
            or "\x00" in scope.get("path", "")
        ):
            response = problems.problem(
                400, "bad_request", "Bad request", "The URL must not contain NUL (%00)."
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def install_log_redaction() -> None:
    """Keep credentials (``?access_token=``, unsubscribe tokens, anything JWT-shaped, however
    percent-encoded) out of uvicorn's access and error logs: see :func:`tidings.logs.redact`."""
    for name in ("uvicorn.access", "uvicorn.error"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactCredentials) for f in logger.filters):
            logger.addFilter(RedactCredentials())
    # A stream cut off on purpose is an expected event, not an ERROR (delivery/stream.py).
    errors = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, UnfinishedStreams) for f in errors.filters):
        errors.addFilter(UnfinishedStreams())
