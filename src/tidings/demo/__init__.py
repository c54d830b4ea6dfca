"""The Bounce House Rentals demo: a server-rendered dashboard for two rental businesses that
exercises tidings end to end (publish in the same transaction as the change, the bell, the feed).

Off by default; ``TIDINGS_DEMO=1`` or ``tidings demo`` mounts it on tidings' own app.
"""

from __future__ import annotations

from fastapi import FastAPI


def install(app: FastAPI) -> None:
    """Mount the demo on ``app`` when its settings say ``demo``; otherwise do nothing."""
    if not app.state.settings.demo:
        return
    from tidings.demo.mount import mount

    mount(app)


__all__ = ["install"]
