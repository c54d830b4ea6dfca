"""The edge's two frame bounds, driven directly (invariant 5): no server, a real store, a real
socket pair. The stream-level tests (``test_edge.py``, the cluster slow-subscriber run) see the
same bounds from outside, but only after seconds; these fail at once when a bound is removed.

- Frames offered within one loop iteration are held in ``pending`` — at most
  ``subscriber_buffer`` of them; past that the stream drops them and catches up from the store.
- Frames offered while a catch-up runs are held in the subscriber's buffer — at most
  ``subscriber_buffer``; past that it lags and the catch-up reads them from the store.
Either way every notification then arrives exactly once, in order.
"""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from tests.delivery.conftest import BUFFER, TENANT
from tidings.delivery import sse
from tidings.delivery.edge import Edge, Edges
from tidings.delivery.hub import Hub
from tidings.domain.notifications import NewNotification, Notification, utcnow
from tidings.domain.principals import Principal
from tidings.metrics import Metrics
from tidings.store import Store
from tidings.store import notifications as nq

pytestmark = pytest.mark.anyio
ID = re.compile(rb"^id: (\d+)$", re.MULTILINE)


async def commit(store: Store, count: int) -> list[Notification]:
    async with store.write() as conn:
        return [
            (
                await nq.insert(
                    conn, TENANT, NewNotification(type="system", title="t"), now=utcnow()
                )
            )[0]
            for _ in range(count)
        ]


@pytest.fixture
async def edge(hub: Hub, store: Store) -> AsyncIterator[tuple[Edge, socket.socket]]:
    """An edge stream on one end of a socket pair; the test reads the other end."""
    principal = Principal(TENANT, "ana", frozenset(), datetime.now(UTC) + timedelta(hours=1))
    sub = await hub.subscribe(principal)
    edges = Edges(hub, store, Metrics(), keepalive=60, send_timeout=10, retry_ms=500, buffer=BUFFER)
    stream = Edge(edges, sub, sent=0)
    sub.to_edge(stream)
    ours, theirs = socket.socketpair()
    theirs.setblocking(False)
    transport, _ = await asyncio.get_running_loop().connect_accepted_socket(
        asyncio.Protocol, sock=ours
    )
    stream.attach(transport, chunked=False, paused=False)
    try:
        yield stream, theirs
        async with asyncio.timeout(10):  # the catch-up ends on its own once nothing is left
            while stream.task is not None:
                await asyncio.sleep(0.01)
    finally:
        stream.leave("shutdown")
        theirs.close()


async def received_ids(peer: socket.socket, last: int) -> list[int]:
    """Every ``id:`` read from ``peer`` until ``last`` arrived (bounded in time)."""
    data, loop = b"", asyncio.get_running_loop()
    async with asyncio.timeout(10):
        while not data.endswith(b"\n\n") or int(ID.findall(data)[-1]) < last:
            data += await loop.sock_recv(peer, 65536)
    return [int(seq) for seq in ID.findall(data)]


async def test_frames_of_one_loop_iteration_are_bounded(
    edge: tuple[Edge, socket.socket], store: Store
) -> None:
    stream, peer = edge
    items = await commit(store, 3 * BUFFER)
    for item in items:  # one fan-out batch: nothing is flushed in between
        stream.sub.offer(item.seq, sse.notification_frame(item.seq, item.encode()))
        assert stream.pending is None or len(stream.pending) <= BUFFER
    assert stream.pending is None and stream.task is not None, "past the bound: a catch-up"
    assert await received_ids(peer, items[-1].seq) == [i.seq for i in items]


async def test_frames_offered_during_a_catch_up_are_bounded(
    edge: tuple[Edge, socket.socket], store: Store
) -> None:
    stream, peer = edge
    first = await commit(store, 2)
    later = await commit(store, 3 * BUFFER)
    stream.sub.lagging = True
    stream.resume_writing()  # drained: the catch-up task starts
    await asyncio.sleep(0)  # it runs up to its first store read
    assert stream.task is not None and not stream.sub.lagging, "a catch-up is under way"
    for item in later:  # the fan-out offers them while the catch-up reads the store
        stream.sub.offer(item.seq, sse.notification_frame(item.seq, item.encode()))
        assert len(stream.sub.buffer) <= BUFFER
    assert stream.sub.lagging, "past the bound the buffer is dropped and read from the store"
    assert await received_ids(peer, later[-1].seq) == [i.seq for i in first + later]
