"""Wires the demo into tidings' FastAPI app: routers, static files, templates, and the seeding
that runs at start-up (after the store is migrated, before the first request)."""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path

from fastapi import FastAPI
from starlette.responses import RedirectResponse, Response
from starlette.staticfiles import StaticFiles

from tidings.demo import pages, signin, widget
from tidings.demo import tables as _tables  # noqa: F401  (registers the demo tables)
from tidings.demo.seed import seed
from tidings.demo.templating import build_templates
from tidings.ratelimit import RateLimiter
from tidings.service import Tidings

STATIC = Path(__file__).parent / "static"


def mount(app: FastAPI) -> None:
    app.state.demo_templates = build_templates()
    app.state.demo_limiter = RateLimiter(widget.RATE)
    for router in (signin.api, signin.router, pages.router, widget.router):
        app.include_router(router)
    app.mount("/demo/static", StaticFiles(directory=STATIC), name="demo-static")

    async def home() -> Response:
        return RedirectResponse("/demo", status_code=307)

    if not any(getattr(route, "path", None) == "/" for route in app.routes):
        app.add_api_route("/", home, include_in_schema=False)

    async def seed_on_start(service: Tidings, _stack: AsyncExitStack) -> None:
        await seed(service)

    app.state.startup_hooks.append(seed_on_start)
