"""What the channels' workers (planner, push worker, digests, snoozes) depend on: a small typed
bundle the runtime builds once, instead of the whole :class:`~tidings.channels.runtime.Channels`.

Invariants: the workers import this module, never ``channels.runtime`` (checked by the
``channels-workers`` import-linter contract), so the runtime → workers edge is the only one and
there is no import cycle; every worker reads the same clock and the same instance id (the owner
of its leases) from here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from tidings.channels.clock import Clock
    from tidings.channels.webpush import PushSender
    from tidings.config import Settings
    from tidings.store import Store
    from tidings.store.readstate import Woken


class LiveUsers(Protocol):
    async def __call__(self, conn: AsyncConnection, tenant: str, users: Iterable[str]) -> set[str]:
        """Those of ``users`` with a live stream here or on another instance."""
        ...


class WakeSnoozed(Protocol):
    async def __call__(
        self,
        now: datetime,
        *,
        limit: int = 200,
        on_claim: Callable[[AsyncConnection, list[Woken]], Awaitable[None]] | None = None,
    ) -> list[Woken]:
        """End due snoozes (``Tidings.wake_snoozed``)."""
        ...


class Emit(Protocol):
    async def __call__(
        self, tenant: str, event: str, data: dict[str, Any], conn: AsyncConnection | None = None
    ) -> None:
        """``Tidings.emit``: ``push.sent``, ``digest.sent``… to the extensions' event sinks."""
        ...


@dataclass(frozen=True, slots=True)
class WorkerDeps:
    store: Store
    clock: Clock
    settings: Settings
    instance: str
    """This instance's id: the owner written on leases (push outbox, digest runs, presence)."""
    secret: Callable[[], str]
    """The token secret (signs unsubscribe links); read when used, it is loaded at start."""
    sender: Callable[[], PushSender | None]
    """The push sender, ``None`` until the VAPID keys are loaded."""
    live: LiveUsers
    wake_push: Callable[[], None]
    """Wake the push worker: new outbox rows are due."""
    wake_snoozed: WakeSnoozed
    emit: Emit
    """Tell the event sinks (webhooks) what happened, in the worker's transaction."""
