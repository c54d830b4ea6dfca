"""Hub-level fixtures: a real store on a temp SQLite file and a hub over it (no server)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tidings.delivery.edge import Edge, Edges
from tidings.delivery.hub import Hub, Subscriber
from tidings.domain.notifications import utcnow
from tidings.metrics import Metrics
from tidings.server import Handed
from tidings.store import Store
from tidings.store import tenants as tq

TENANT = "jump-joy"
BUFFER = 4


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = Store(f"sqlite+aiosqlite:///{tmp_path}/hub.db")
    try:
        await store.migrate()
        async with store.write() as conn:
            await tq.create_tenant(conn, TENANT, TENANT, now=utcnow())
        yield store
    finally:
        await store.close()


@pytest.fixture
def hub(store: Store) -> Hub:
    return Hub(store, Metrics(), buffer=BUFFER, max_per_user=10, max_per_tenant=100)


@pytest.fixture
def loop_store(tmp_path: Path) -> Iterator[tuple[asyncio.AbstractEventLoop, Store]]:
    """An event loop of the test's own and a migrated store on it, for tests that drive the
    loop themselves (hypothesis examples, each run to completion on it)."""
    loop = asyncio.new_event_loop()
    store = Store(f"sqlite+aiosqlite:///{tmp_path}/loop.db")
    loop.run_until_complete(store.migrate())
    try:
        yield loop, store
    finally:
        loop.run_until_complete(store.close())
        loop.close()


async def handed_edge(edges: Edges, sub: Subscriber, sent: int, *, chunked: bool) -> socket.socket:
    """``sub`` as an edge stream on one end of a socket pair behind the real protocol of a
    handed-over stream (``server.Handed``); returns the other end, the test's reader."""
    edge = Edge(edges, sub, sent=sent)
    sub.to_edge(edge)
    ours, theirs = socket.socketpair()
    theirs.setblocking(False)
    transport, _ = await asyncio.get_running_loop().connect_accepted_socket(
        asyncio.Protocol, sock=ours
    )
    transport.set_protocol(Handed(edge, transport, set()))
    edge.attach(transport, chunked=chunked, paused=False)
    return theirs
