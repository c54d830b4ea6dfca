"""PostgreSQL's pooled connections are pinged before use only after they sat idle
(``store/engine.py``, ``PING_IDLE``): a connection in steady use costs no ping, one that died
while idle is replaced before anyone uses it, one that died in steady use fails one
transaction as unavailable and the pool recovers at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text

from tests.services import PostgresServer
from tidings.errors import Unavailable
from tidings.store import Store

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]

BACKEND = text("SELECT pg_backend_pid()")


async def _backend(store: Store) -> int:
    async with store.write() as conn:
        return int((await conn.execute(BACKEND)).scalar_one())


async def _first_backend_ended(store: Store, server: PostgresServer, then_wait: float) -> int:
    """The backend of ``store``'s first transaction, ended by the server (as a restart or an
    idle-session timeout would end it) ``then_wait`` seconds ago."""
    first = await asyncio.wait_for(_backend(store), 10)
    await asyncio.to_thread(server.sql, f"SELECT pg_terminate_backend({first})")
    await asyncio.sleep(then_wait)
    return first


@pytest.fixture
async def store_factory(postgres_url: str) -> AsyncIterator[list[Store]]:
    made: list[Store] = []
    yield made
    for store in made:
        await asyncio.wait_for(store.close(), 10)


def _store(made: list[Store], url: str, ping_idle: float) -> Store:
    store = Store(url, ping_idle=ping_idle)
    made.append(store)
    return store


async def test_a_connection_in_steady_use_is_not_pinged_an_idle_one_is(
    postgres_url: str, store_factory: list[Store]
) -> None:
    store = _store(store_factory, postgres_url, ping_idle=0.5)
    first = await asyncio.wait_for(_backend(store), 10)
    for _ in range(20):  # back to back: the same connection, proven alive by its last use
        assert await asyncio.wait_for(_backend(store), 10) == first
    assert store.pings == 0
    await asyncio.sleep(0.7)
    assert await asyncio.wait_for(_backend(store), 10) == first  # pinged, alive, reused
    assert store.pings == 1
    assert await asyncio.wait_for(_backend(store), 10) == first
    assert store.pings == 1


async def test_a_connection_that_died_while_idle_is_replaced_before_use(
    postgres_url: str, postgres_server: PostgresServer, store_factory: list[Store]
) -> None:
    store = _store(store_factory, postgres_url, ping_idle=0.3)
    first = await _first_backend_ended(store, postgres_server, then_wait=0.5)
    again = await asyncio.wait_for(_backend(store), 10)  # no error: the ping found it dead
    assert again != first
    assert store.pings == 1


async def test_a_connection_that_died_in_steady_use_fails_once_then_the_pool_recovers(
    postgres_url: str, postgres_server: PostgresServer, store_factory: list[Store]
) -> None:
    store = _store(store_factory, postgres_url, ping_idle=60.0)
    first = await _first_backend_ended(store, postgres_server, then_wait=0.2)  # unknown to the pool
    with pytest.raises(Unavailable):
        await asyncio.wait_for(_backend(store), 10)
    again = await asyncio.wait_for(_backend(store), 10)
    assert again != first
    assert store.pings == 0
