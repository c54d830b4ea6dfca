"""``create_app(settings, extensions)``: wires the service, the routers and the extensions.

Nothing is opened at import time or by ``create_app``: the lifespan opens the service
(:func:`tidings.wiring.open_service`: store, broker, hub, relay), starts each extension and
plugs in the hooks they return, and on shutdown unwinds it all in reverse. Which extensions
run is the caller's choice (``tidings serve`` and ``tidings demo``:
:func:`tidings.extensions.bundled`); this module names none of them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.telemetry import TelemetryConfig
from starlette.staticfiles import StaticFiles
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

import tidings
from tidings import logs
from tidings.api import admin, compat, feed, health, problems, publish, stream, templates, tokens
from tidings.api.compat_stream import router as compat_stream_router
from tidings.api.cors import CORS
from tidings.api.fastpublish import FastPublish
from tidings.api.guards import BodyLimit, TextTarget
from tidings.config import Settings
from tidings.delivery.stream import UnfinishedStreams
from tidings.extension import Extension
from tidings.extensions import schema_for
from tidings.wiring import open_service

STATIC = Path(__file__).parent / "web" / "static"
ROUTERS = (
    publish.router,
    stream.router,
    feed.router,
    tokens.router,
    admin.router,
    compat.router,
    compat_stream_router,  # the booking dashboard's /sse/notifications
    health.router,
    templates.router,  # per-type notification templates (issue 10 item 5)
)


_NO_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}


def create_app(settings: Settings | None = None, extensions: Sequence[Extension] = ()) -> FastAPI:
    settings = settings or Settings()
    settings.check_secrets()
    extensions = tuple(extensions)
    schema = schema_for(extensions)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        logs.install_redaction()
        # A stream cut off on purpose is an expected event, not an ERROR (delivery/stream.py).
        logs.add_filter("uvicorn.error", UnfinishedStreams())

        def should_stop() -> bool:  # an exit signal arrived while waiting for the store
            return bool(getattr(app.state, "exit_requested", False))

        async with (
            open_service(settings, schema, should_stop=should_stop) as service,
            AsyncExitStack() as stack,
        ):
            app.state.tidings = service
            service.plug([await ext.start(service, stack) for ext in extensions])
            try:
                yield
            finally:
                service.hub.shutdown()  # streams leave before the extensions stop

    docs = settings.docs if settings.docs is not None else settings.env != "production"
    app = FastAPI(
        title="tidings",
        version=tidings.__version__,
        summary="Real-time in-app notifications for multi-tenant SaaS",
        lifespan=lifespan,
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        openapi_url="/openapi.json" if docs else None,
        # FastAPI's native OpenTelemetry looks for configured providers on every request (a
        # third of a lone publish's Python): only when asked for (TIDINGS_OPENTELEMETRY).
        telemetry=None if settings.opentelemetry else _NO_TELEMETRY,
    )
    app.state.settings = settings
    problems.install(app)
    for router in ROUTERS:
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC, check_dir=False), name="static")
    # The publish routes' ordinary requests, answered without FastAPI's per-request work
    # (api/fastpublish.py); innermost, so every guard below and every extension's runs first.
    app.add_middleware(FastPublish)
    for ext in extensions:
        for router in ext.routers():
            app.include_router(router)
        ext.configure(app)
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
