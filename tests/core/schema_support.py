"""Synchronous helpers of the schema and statement tests: a migration, work on a connection by
URL, and a synchronous SQLite engine on a file made from ``tables.py``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from sqlalchemy import Connection, Engine, create_engine

from tests.services import run_sync
from tidings.store import Store
from tidings.store.migrate import Schema
from tidings.store.tables import metadata

T = TypeVar("T")


def run_on(url: str, work: Callable[[Connection], T]) -> T:
    """``work(conn)`` on a synchronous view of a connection of a store over ``url``, committed."""

    async def go() -> T:
        store = Store(url)
        try:
            async with store.engine.connect() as conn:
                result = await conn.run_sync(work)
                await conn.commit()
                return result
        finally:
            await store.close()

    return run_sync(go)


def migrate(url: str, schema: Schema) -> None:
    """Upgrade the database at ``url`` as a server's start does (bounded: 60 s)."""

    async def go() -> None:
        store = Store(url)
        try:
            await asyncio.wait_for(store.migrate(schema), 60)
        finally:
            await store.close()

    run_sync(go)


def sqlite_engine(directory: Path) -> Iterator[Engine]:
    """A synchronous engine on ``directory/t.db`` with every table of ``tables.py`` (a
    module-scoped fixture's body: yields it, then disposes of it)."""
    engine = create_engine(f"sqlite:///{directory / 't.db'}")
    metadata.create_all(engine)
    yield engine
    engine.dispose()
