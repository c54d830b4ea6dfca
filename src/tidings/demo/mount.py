"""Wires the demo into tidings' FastAPI app (for :class:`tidings.demo.DemoExtension`): routers,
static files, templates, the service worker at the site's root, and the seeding that runs at
start-up (after the store is migrated, before the first request).

The service worker (``sw.js``, the same file as ``/static/sw.js``) is also served as ``/sw.js``:
a worker's scope can be at most its own directory, and push clicks should find and focus the
dashboard's ``/demo`` pages, so the bell registers ``/sw.js`` (``sw-url``) with the scope ``/``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from fastapi import APIRouter, FastAPI
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles

from tidings.demo import deliveries, live, pages, preferences, signin, widget
from tidings.demo import tables as _tables  # noqa: F401  (registers the demo tables)
from tidings.demo.cookies import SecureCookies
from tidings.demo.passwords import dummy_hash
from tidings.demo.seed import seed
from tidings.demo.templating import build_templates
from tidings.demo.throttle import SignInThrottle
from tidings.hooks import Hooks
from tidings.ratelimit import RateLimiter
from tidings.service import Tidings

STATIC = Path(__file__).parent / "static"
SERVICE_WORKER = Path(__file__).parent.parent / "web" / "static" / "sw.js"


def routers() -> Sequence[APIRouter]:
    return (
        signin.api,
        signin.router,
        pages.router,
        live.router,
        preferences.router,
        deliveries.router,
        widget.router,
    )


def configure(app: FastAPI) -> None:
    app.state.demo_templates = build_templates()
    app.state.demo_limiter = RateLimiter(widget.RATE)
    app.state.demo_sign_in_throttle = SignInThrottle()
    app.add_middleware(SecureCookies)
    app.mount("/demo/static", StaticFiles(directory=STATIC), name="demo-static")

    async def service_worker() -> Response:
        return FileResponse(
            SERVICE_WORKER,
            media_type="text/javascript",
            headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
        )

    app.add_api_route("/sw.js", service_worker, include_in_schema=False)

    async def home() -> Response:
        return RedirectResponse("/demo", status_code=307)

    if not any(getattr(route, "path", None) == "/" for route in app.routes):
        app.add_api_route("/", home, include_in_schema=False)


async def start(service: Tidings) -> Hooks:
    """Seed (idempotent) before the first request; the demo plugs no hooks into the service."""
    await seed(service)
    await asyncio.to_thread(dummy_hash)  # made before the first sign-in, off the loop
    return Hooks()
