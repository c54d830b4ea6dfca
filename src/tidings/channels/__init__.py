"""Channels: reaching people who are not looking — preferences, reminders, web push and e-mail
digests, with a delivery log. See ``docs/channels.md``.

``install(app)`` adds the routers and a startup hook; the hook builds :class:`Channels` once the
service exists (clock: ``app.state.channels_clock`` if a test or simulation set one), puts the
fan-out on ``service.after_publish`` and the in-app filter on ``service.muted_types``, and
starts the workers. ``app.state.channels`` is the running instance.

Reminder scheduling for hosts running in-process (the demo) is in
:mod:`tidings.channels.reminders`: ``schedule``, ``cancel``, ``schedule_booking``,
``cancel_booking`` — each takes the connection of the caller's write transaction.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI

    from tidings.service import Tidings


def install(app: FastAPI) -> None:
    from tidings.channels import admin, api, erasure
    from tidings.channels.runtime import Channels

    app.include_router(api.router)
    app.include_router(admin.router)
    # The channels' part of the operator's user erasure (DELETE /v1/admin/tenants/{t}/users/{u}).
    app.state.user_erasers = [*getattr(app.state, "user_erasers", ()), erasure.erase_user]

    async def start(service: Tidings, stack: AsyncExitStack) -> None:
        channels = Channels(service, getattr(app.state, "channels_clock", None))
        await channels.start()
        stack.push_async_callback(channels.stop)
        app.state.channels = channels

    app.state.startup_hooks.append(start)


__all__ = ["install"]
