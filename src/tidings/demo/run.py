"""``make demo`` / ``tidings demo``: migrate, seed the two rental businesses, print where to go
and how to sign in, then serve tidings with the demo mounted."""

from __future__ import annotations

import asyncio
import logging
import sys

from tidings.config import Settings


async def prepare(settings: Settings) -> str | None:
    """Migrate and seed (idempotent), and make a fresh API key for Jump Joy Rentals (``None``
    when that tenant is not the demo's)."""
    from tidings.delivery.hub import Hub
    from tidings.delivery.memory import MemoryBroker
    from tidings.demo import queries
    from tidings.demo import tables as _tables  # noqa: F401  (registers the demo tables)
    from tidings.demo.seed import seed
    from tidings.metrics import Metrics
    from tidings.service import Tidings
    from tidings.store import Store

    store = Store(settings.database_url)
    try:
        await store.migrate()
        metrics = Metrics()
        service = Tidings(
            settings,
            store,
            MemoryBroker(),
            Hub(store, metrics, buffer=1, max_per_user=1, max_per_tenant=1),
            metrics,
        )
        await seed(service)
        async with store.read() as conn:
            if "jump-joy" not in await queries.demo_tenants(conn):
                return None  # a tenant of that id exists and is not the demo's: no key for it
        _, key = await service.create_key("jump-joy", "demo", ["publish", "tokens"])
        return key
    finally:
        await store.close()


def banner(base: str, key: str | None) -> str:
    from tidings.demo.seed import PASSWORD, TENANTS

    users = "\n".join(f"    {u.email:<26} {u.role:<6} {t.name}" for t in TENANTS for u in t.users)
    outside = (
        f""" Or publish from outside (API key for Jump Joy Rentals):
    curl -X POST {base}/v1/notifications -H 'Authorization: Bearer {key}' \\
         -H 'Content-Type: application/json' \\
         -d '{{"type":"system","title":"Hello from curl","body":"Published with an API key"}}'
"""
        if key
        else "\n"
    )
    return f"""
Bounce House Rentals demo — tidings

  Open:           {base}/demo          (pick a demo user, or sign in below)
  Booking page:   {base}/book/jump-joy   {base}/book/bounce-bros

  Demo sign-in (password for everyone: {PASSWORD}):
{users}

  Try it: open the dashboard in two windows, request a booking on the booking page,
  and watch the bell.{outside}"""


def run_demo(host: str, port: int) -> None:
    from tidings.app import create_app
    from tidings.demo import DemoInProduction, check_not_production
    from tidings.server import serve

    settings = Settings(demo=True)
    try:
        check_not_production(settings.env)
    except DemoInProduction as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    key = asyncio.run(prepare(settings))
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    print(banner(f"http://{shown}:{port}", key), flush=True)
    serve(create_app(settings), host=host, port=port, log_level=settings.log_level)
