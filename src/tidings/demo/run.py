"""``make demo`` / ``tidings demo``: migrate, seed the two rental businesses, and print where to
go and how to sign in (:func:`announce`); the command then serves tidings with the demo
mounted."""

from __future__ import annotations

import asyncio
import logging
import sys

from tidings.config import Settings
from tidings.store.migrate import Schema


async def prepare(settings: Settings) -> str | None:
    """Migrate (the core, the channels and the demo) and seed (idempotent), and make a fresh
    API key for Jump Joy Rentals (``None`` when that tenant is not the demo's)."""
    from tidings.demo import queries
    from tidings.demo.seed import seed
    from tidings.wiring import open_service

    async with open_service(settings, schema(), live=False, secrets=False, migrate=True) as service:
        await seed(service)
        async with service.store.read() as conn:
            if "jump-joy" not in await queries.demo_tenants(conn):
                return None  # a tenant of that id exists and is not the demo's: no key for it
        _, key = await service.create_key("jump-joy", "demo", ["publish", "tokens"])
        return key


def schema() -> Schema:
    """The demo's schema: the core, the channels (its reminders) and its own branch."""
    from tidings.channels import ChannelsExtension
    from tidings.demo import DemoExtension

    return Schema(wanted=(DemoExtension.name, ChannelsExtension.name))


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


def announce(settings: Settings, host: str, port: int) -> None:
    """Refuse production (exit 2), set up logging, migrate and seed, and print the banner.
    The caller (``tidings demo``) then serves the app with the demo extension."""
    from tidings.demo import DemoInProduction, check_not_production

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
