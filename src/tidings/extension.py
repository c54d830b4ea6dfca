"""The :class:`Extension` protocol: how a package plugs into tidings without the core naming it.

``create_app(settings, extensions)`` takes them from its caller (``tidings serve``, ``tidings
demo``, a host application, a test); the channels and the demo are two. An extension brings

* ``name`` — also the label of its Alembic branch;
* ``migrations`` — its schema history (:class:`tidings.store.migrate.Branch`), or ``None``;
* ``routers()`` — its FastAPI routers, included after the core's;
* ``configure(app)`` — anything else the app needs at build time (middleware, static files,
  ``app.state``), before the first request; no I/O;
* ``start(service, stack)`` — run by the lifespan once the service is open (store migrated,
  secrets loaded, relay running): start workers, registering their cleanup on ``stack`` (it
  unwinds at shutdown, before the service closes), and return the :class:`tidings.hooks.Hooks`
  it plugs into the service.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AsyncExitStack
from typing import Protocol

from fastapi import APIRouter, FastAPI

from tidings.hooks import Hooks
from tidings.service import Tidings
from tidings.store.migrate import Branch


class Extension(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def migrations(self) -> Branch | None: ...

    def routers(self) -> Sequence[APIRouter]: ...

    def configure(self, app: FastAPI) -> None: ...

    async def start(self, service: Tidings, stack: AsyncExitStack) -> Hooks: ...


__all__ = ["Extension"]
