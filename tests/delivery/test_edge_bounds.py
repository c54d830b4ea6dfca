"""The edge's two frame bounds, driven directly (invariant 5): no server, a real store, a real
socket pair. The stream-level tests (``test_edge.py``, the cluster slow-subscriber run) see the
same bounds from outside, but only after seconds; these fail at once when a bound is removed.

- Frames offered within one loop iteration are held in ``pending`` — at most
  ``subscriber_buffer`` of them; past that the stream drops them and catches up from the store.
- Frames offered while a catch-up runs are held in the subscriber's buffer — at most
  ``subscriber_buffer``; past that it lags and the catch-up reads them from the store.
Either way every notification then arrives exactly once, in order.

And what an open edge stream costs in memory (issue 8: at most half of Nchan's ~10 KiB per
stream in all): the hub's and the edge's own objects stay a few hundred bytes; no frame buffer
is held once the frames buffered during the opening went out, nor after a catch-up; the
connection holds a three-slot protocol (``server.Handed``), not uvicorn's protocol object and
its request state; the token cache holds a digest of each token, not the token.
"""

from __future__ import annotations

import asyncio
import gc
import re
import socket
import tracemalloc
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.delivery.conftest import BUFFER, TENANT
from tests.support import ServerThread, create_tenant, make_settings
from tidings.auth import TokenCache
from tidings.delivery import sse
from tidings.delivery.edge import Edge, Edges
from tidings.delivery.hub import NO_FRAMES, Hub
from tidings.domain.notifications import NewNotification, Notification, utcnow
from tidings.domain.principals import Principal
from tidings.metrics import Metrics
from tidings.server import AppProtocol, EdgeProtocol, Handed
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


async def test_frames_held_during_a_catch_up_are_dropped_after_it(
    edge: tuple[Edge, socket.socket], store: Store
) -> None:
    stream, peer = edge
    assert stream.sub.buffer is NO_FRAMES, "attached: nothing held"
    items = await commit(store, 3)
    more = await commit(store, 2)
    stream.sub.lagging = True
    stream.resume_writing()
    await asyncio.sleep(0)
    assert stream.task is not None
    for item in more:
        stream.sub.offer(item.seq, sse.notification_frame(item.seq, item.encode()))
    assert len(stream.sub.buffer) == 2, "held while the catch-up runs"
    assert await received_ids(peer, more[-1].seq) == [i.seq for i in items + more]
    async with asyncio.timeout(10):  # it ends once a page comes back empty
        while stream.task is not None:
            await asyncio.sleep(0.01)
    assert stream.sub.buffer is NO_FRAMES, "the catch-up over: the buffer is gone"


async def test_an_edge_stream_costs_a_few_hundred_bytes_of_hub_and_edge_objects(
    hub: Hub, store: Store
) -> None:
    count = 100  # the hub fixture's cap per tenant
    edges = Edges(hub, store, Metrics(), keepalive=60, send_timeout=10, retry_ms=500, buffer=64)
    expires = datetime.now(UTC) + timedelta(hours=1)
    principals = [Principal(TENANT, f"user-{i}", frozenset(), expires) for i in range(count)]
    await hub.subscribe(principals[0])  # the tenant's state exists before measuring
    streams: list[Edge] = []
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        for principal in principals[1:]:  # every stream its own user, as in the benchmark
            sub = await hub.subscribe(principal)
            stream = Edge(edges, sub, sent=0)
            sub.to_edge(stream)
            sub.take()  # what ``attach`` does with the frames of the opening
            streams.append(stream)
        per_stream = (tracemalloc.get_traced_memory()[0] - base) / (count - 1)
    finally:
        tracemalloc.stop()
    assert all(s.sub.buffer is NO_FRAMES for s in streams)
    # Subscriber and Edge (slots), the hub's set, dict and per-user list entries (with their
    # tables' growth): ~700 bytes; with a deque per subscriber (~760) and a set per user
    # (216) it was ~1,600.
    assert per_stream < 1000, f"{per_stream:.0f} bytes per stream"


async def test_an_open_stream_holds_a_three_slot_protocol_not_uvicorns(tmp_path: Path) -> None:
    """Once the edge has a stream's transport, the transport's protocol is a ``Handed`` (in
    uvicorn's ``connections`` in its place, for a graceful shutdown) and uvicorn's protocol
    object, with everything it references, is freed."""
    srv = ServerThread(make_settings(str(tmp_path))).start()
    writers: list[asyncio.StreamWriter] = []
    try:
        tenant = create_tenant(srv.url, "slim-streams")
        for i in range(20):
            reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
            writers.append(writer)
            token = tenant.token(f"user-{i}")
            writer.write(
                f"GET /v1/stream?access_token={token} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
            )
            async with asyncio.timeout(10):
                seen = b""
                while b"event: ready" not in seen:
                    seen += await reader.read(4096)
        handed = [c for c in list(srv.server.server_state.connections) if isinstance(c, Handed)]
        assert len(handed) == 20
        assert all(c.transport.get_protocol() is c for c in handed)
        gc.collect()
        transports = {c.transport for c in handed}
        kept = [
            o
            for o in gc.get_objects()
            if isinstance(o, EdgeProtocol | AppProtocol) and o.transport in transports
        ]
        assert kept == [], f"{len(kept)} protocol objects still held by open streams"
    finally:
        for writer in writers:
            writer.close()
        srv.stop()


def test_the_token_cache_keeps_a_digest_of_the_token_not_the_token() -> None:
    """A stream token is ~300 bytes and the cache holds one entry per open stream: it keeps a
    16-byte digest, so the token string itself is freed with its request."""
    cache = TokenCache(1000)
    expires = datetime.now(UTC) + timedelta(hours=1)
    principal = Principal(TENANT, "ana", frozenset(), expires)
    count = 500
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        for i in range(count):
            cache.put(f"eyJ{'x' * 280}.{i:08d}", principal, "kid-1")  # freed unless kept
        per_entry = (tracemalloc.get_traced_memory()[0] - base) / count
    finally:
        tracemalloc.stop()
    assert per_entry < 300, f"{per_entry:.0f} bytes per cached token"
    assert cache.get(f"eyJ{'x' * 280}.{7:08d}") == (principal, "kid-1")
    assert cache.get(f"eyJ{'x' * 280}.{count:08d}") is None
    cache.forget(f"eyJ{'x' * 280}.{7:08d}")
    assert cache.get(f"eyJ{'x' * 280}.{7:08d}") is None and len(cache) == count - 1
