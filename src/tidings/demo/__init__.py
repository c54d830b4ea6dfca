"""The Bounce House Rentals demo: a server-rendered dashboard for two rental businesses that
exercises tidings end to end (publish in the same transaction as the change, the bell, the feed).

Off by default; ``TIDINGS_DEMO=1`` or ``tidings demo`` mounts it on tidings' own app, as the
extension :class:`DemoExtension` (:class:`tidings.extension.Extension`): its pages, its seeding
at start, and its schema branch (``demo``, in ``migrations/``), so a database the demo never ran
on has none of its tables.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from typing import TYPE_CHECKING

from tidings.store.migrate import Branch

if TYPE_CHECKING:
    from fastapi import APIRouter, FastAPI

    from tidings.hooks import Hooks
    from tidings.service import Tidings

MIGRATIONS = Path(__file__).parent / "migrations"


class DemoInProduction(ValueError):
    """``TIDINGS_DEMO`` with ``TIDINGS_ENV=production``: refused at start."""


REFUSAL = (
    "the demo cannot run with TIDINGS_ENV=production: it has public sign-ins with a published "
    "password and an anonymous booking form; unset TIDINGS_DEMO"
)


def check_not_production(env: str) -> None:
    if env == "production":
        raise DemoInProduction(REFUSAL)


class DemoExtension:
    """The demo as an extension. Raises :class:`DemoInProduction` for ``env="production"``."""

    name = "demo"
    migrations = Branch("demo", MIGRATIONS)

    def __init__(self, env: str) -> None:
        check_not_production(env)

    def routers(self) -> Sequence[APIRouter]:
        from tidings.demo.mount import routers

        return routers()

    def configure(self, app: FastAPI) -> None:
        from tidings.demo.mount import configure

        configure(app)

    async def start(self, service: Tidings, stack: AsyncExitStack) -> Hooks:
        from tidings.demo.mount import start

        return await start(service)


__all__ = ["MIGRATIONS", "REFUSAL", "DemoExtension", "DemoInProduction", "check_not_production"]
