"""The Bounce House Rentals demo: a server-rendered dashboard for two rental businesses that
exercises tidings end to end (publish in the same transaction as the change, the bell, the feed).

Off by default; ``TIDINGS_DEMO=1`` or ``tidings demo`` mounts it on tidings' own app.
"""

from __future__ import annotations

from fastapi import FastAPI


class DemoInProduction(ValueError):
    """``TIDINGS_DEMO`` with ``TIDINGS_ENV=production``: refused at start."""


REFUSAL = (
    "the demo cannot run with TIDINGS_ENV=production: it has public sign-ins with a published "
    "password and an anonymous booking form; unset TIDINGS_DEMO"
)


def check_not_production(env: str) -> None:
    if env == "production":
        raise DemoInProduction(REFUSAL)


def install(app: FastAPI) -> None:
    """Mount the demo on ``app`` when its settings say ``demo``; otherwise do nothing.
    Raises :class:`DemoInProduction` for the demo in production."""
    if not app.state.settings.demo:
        return
    check_not_production(app.state.settings.env)
    from tidings.demo.mount import mount

    mount(app)


__all__ = ["REFUSAL", "DemoInProduction", "check_not_production", "install"]
