"""The typed seams through which an extension changes what the core does.

The service calls them; an extension supplies them, as :class:`Hooks`, from its
``start(service, stack)`` (:class:`tidings.extension.Extension`). The core never knows who
is behind a hook.

* :data:`AfterPublish` — called with the notifications a publish (or a ``transaction()``)
  created, after they committed and were offered to the hub; never with an empty list. A hook
  that raises is logged and the publish still succeeds (the store has it).
* :data:`MutedTypes` — the types a user switched off in-app: left out of their feed, unread
  count, snapshot and stream. Called per request and per stream opening, so it should cache.
  :data:`MutedTypesMany` (optional) answers the same for many users in one call (the stream
  opener's batch of a loop iteration): one await, no task per user.
* :data:`~tidings.store.erasure.UserEraser` — the extension's part of the operator's user
  erasure, run in the same transaction as the core's (:mod:`tidings.erasure`).
* :data:`EventSink` — told of what happened to a tenant's notifications (``notification.read``,
  ``push.sent``, … :meth:`tidings.service.Tidings.emit`): with the connection of the write
  transaction that made the change (inside a savepoint), or ``None`` right after its commit.
  A sink that raises is logged; the change stands (the webhooks are one).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.domain.notifications import Notification
from tidings.domain.principals import Principal
from tidings.store.erasure import UserEraser

AfterPublish = Callable[[list[Notification]], Awaitable[None]]
MutedTypes = Callable[[Principal], Awaitable[frozenset[str]]]
MutedTypesMany = Callable[[Sequence[Principal]], Awaitable[list[frozenset[str]]]]
EventSink = Callable[[AsyncConnection | None, str, str, dict[str, Any]], Awaitable[None]]
"""``(conn, tenant, event_type, data)``: see the module docstring."""


@dataclass(frozen=True)
class Hooks:
    """What one extension plugs into the service."""

    after_publish: Sequence[AfterPublish] = ()
    muted_types: MutedTypes | None = None
    muted_types_many: MutedTypesMany | None = None  # the same, for many (needs muted_types)
    erase_user: Sequence[UserEraser] = ()
    on_event: Sequence[EventSink] = ()


def muted_by_all(sources: Sequence[MutedTypes]) -> MutedTypes | None:
    """One :data:`MutedTypes` for several: a type any of them mutes is muted."""
    if len(sources) <= 1:
        return sources[0] if sources else None

    async def muted(principal: Principal) -> frozenset[str]:
        result: frozenset[str] = frozenset()
        for source in sources:
            result |= await source(principal)
        return result

    return muted


def muted_many_by_all(hooks: Sequence[Hooks]) -> MutedTypesMany | None:
    """One :data:`MutedTypesMany` for the hooks' muted types: the single source's own, or
    (several sources, or one without it) each principal asked of :func:`muted_by_all`."""
    sources = [h for h in hooks if h.muted_types is not None]
    if len(sources) == 1 and sources[0].muted_types_many is not None:
        return sources[0].muted_types_many
    one = muted_by_all([h.muted_types for h in sources if h.muted_types is not None])
    if one is None:
        return None
    each = one

    async def muted_many(principals: Sequence[Principal]) -> list[frozenset[str]]:
        return list(await asyncio.gather(*(each(p) for p in principals)))

    return muted_many


__all__ = [
    "AfterPublish",
    "EventSink",
    "Hooks",
    "MutedTypes",
    "MutedTypesMany",
    "UserEraser",
    "muted_by_all",
    "muted_many_by_all",
]
