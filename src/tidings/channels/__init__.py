"""Channels: reaching people who are not looking — preferences, reminders, web push and e-mail
digests, with a delivery log. See ``docs/channels.md``.

:class:`ChannelsExtension` plugs them into an app (:class:`tidings.extension.Extension`): its
routers, its schema branch (``channels``, in ``migrations/``), and at start a
:class:`~tidings.channels.runtime.Channels` whose planner wake-up is the ``after_publish`` hook
and whose preferences are the ``muted_types`` hook; its part of the operator's user erasure
(``DELETE /v1/admin/tenants/{t}/users/{u}``) is the ``erase_user`` hook.
``app.state.channels`` is the running instance; a test or simulation may set
``app.state.channels_clock`` before start.

Reminder scheduling for hosts running in-process (the demo) is in
:mod:`tidings.channels.reminders`: ``schedule``, ``cancel``, ``schedule_booking``,
``cancel_booking`` — each takes the connection of the caller's write transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from tidings.store.migrate import Branch

if TYPE_CHECKING:
    from fastapi import APIRouter, FastAPI

    from tidings.hooks import Hooks
    from tidings.service import Tidings

MIGRATIONS = Path(__file__).parent / "migrations"


class ChannelsExtension:
    name = "channels"
    migrations = Branch("channels", MIGRATIONS)

    def __init__(self) -> None:
        self._app: FastAPI | None = None

    def routers(self) -> Sequence[APIRouter]:
        from tidings.channels import admin, api

        return (api.router, admin.router)

    def configure(self, app: FastAPI) -> None:
        self._app = app

    async def start(self, service: Tidings, stack: AsyncExitStack) -> Hooks:
        from tidings.channels import erasure
        from tidings.channels.runtime import Channels

        state = self._app.state if self._app is not None else None
        channels = Channels(service, getattr(state, "channels_clock", None))
        hooks = await channels.start()
        stack.push_async_callback(channels.stop)
        if state is not None:
            state.channels = channels
        return replace(hooks, erase_user=[erasure.erase_user])


__all__ = ["MIGRATIONS", "ChannelsExtension"]
