"""The edge's one clock (issue 8 item 4), driven directly: a real hub and store, real socket
pairs, the real protocol of a handed-over stream (``server.Handed``), the loop's own timers.

The clock keeps a wheel of ``tick``-wide slots: a stream is looked at when something may be
due for it — a ping once it has been idle for ``keepalive``, its token's expiry, the end of
``send_timeout`` while its transport is paused — not every stream at every tick. What is
checked here is both what the streams see (pings only when idle, ``expired``, a stuck reader cut
off on time) and what the clock costs (``Edges.examined``: the streams it looked at), which a
sweep over every stream would multiply by the ticks.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Protocol

import pytest

from tests.delivery.conftest import TENANT, handed_edge
from tidings.delivery import sse
from tidings.delivery.edge import Edge, Edges
from tidings.delivery.hub import Hub
from tidings.domain.principals import Principal
from tidings.metrics import Metrics
from tidings.store import Store

pytestmark = pytest.mark.anyio


class Streams:
    """Edge streams of one :class:`Edges`, each on one end of a socket pair (the other end is
    the test's reader)."""

    def __init__(self, hub: Hub, edges: Edges) -> None:
        self.hub, self.edges = hub, edges
        self.opened: list[tuple[Edge, socket.socket]] = []

    async def open(self, user: str, *, lives: float = 3600.0) -> tuple[Edge, socket.socket]:
        expires = datetime.now(UTC) + timedelta(seconds=lives)
        sub = await self.hub.subscribe(Principal(TENANT, user, frozenset(), expires))
        theirs = await handed_edge(self.edges, sub, 0, chunked=False)
        assert sub.edge is not None
        self.opened.append((sub.edge, theirs))
        return sub.edge, theirs

    def close(self) -> None:
        for edge, peer in self.opened:
            if edge.sub.reason is None:
                edge.leave("shutdown")
            peer.close()


class MakeStreams(Protocol):
    def __call__(self, *, keepalive: float, send_timeout: float) -> Streams: ...


@pytest.fixture
async def streams(hub: Hub, store: Store) -> AsyncIterator[MakeStreams]:
    made: list[Streams] = []

    def make(*, keepalive: float, send_timeout: float) -> Streams:
        edges = Edges(
            hub,
            store,
            Metrics(),
            keepalive=keepalive,
            send_timeout=send_timeout,
            retry_ms=500,
            buffer=4,
        )
        made.append(Streams(hub, edges))
        return made[-1]

    yield make
    for each in made:
        each.close()


async def read_for(peer: socket.socket, seconds: float) -> bytes:
    """Everything ``peer`` receives within ``seconds``."""
    data, loop = b"", asyncio.get_running_loop()
    end = loop.time() + seconds
    while (left := end - loop.time()) > 0:
        try:
            async with asyncio.timeout(left):
                chunk = await loop.sock_recv(peer, 65536)
        except TimeoutError:
            break
        if not chunk:
            break
        data += chunk
    return data


async def test_the_clock_looks_only_at_streams_that_are_due(streams: MakeStreams) -> None:
    """Forty fresh streams with an hour to live and a 30 s keep-alive are not looked at for
    six ticks; the one whose token expires meanwhile is looked at once, and told ``expired``.
    (A sweep over every stream would have looked at 41 streams six times.)"""
    these: Streams = streams(keepalive=30.0, send_timeout=0.4)  # tick 0.2 s
    edges = these.edges
    fresh = [await these.open(f"u{i}") for i in range(40)]
    short, peer = await these.open("leaving", lives=0.5)
    got = await read_for(peer, 1.2)
    assert b'event: expired\ndata: {"reason":"token_expired"}' in got
    assert short.sub.reason == "expired" and short not in edges.live
    assert edges.examined == 1
    assert all(edge in edges.live and edge.sub.reason is None for edge, _ in fresh)


async def test_an_idle_stream_is_pinged_once_per_keepalive_a_busy_one_never(
    streams: MakeStreams,
) -> None:
    """Idle streams get ``: ping`` once per keep-alive (never sooner, at most a tick later),
    and the clock looks at each only then; a stream written to more often than the keep-alive
    gets none, and is looked at about once per keep-alive too."""
    these: Streams = streams(keepalive=0.5, send_timeout=10.0)  # tick 0.25 s
    edges = these.edges
    idle = [await these.open(f"idle{i}") for i in range(5)]
    busy, busy_peer = await these.open("busy")
    loop = asyncio.get_running_loop()
    started = loop.time()

    async def keep_busy() -> None:
        while True:
            busy.write(b": frame\n\n", loop.time())
            await asyncio.sleep(0.1)

    writer = asyncio.create_task(keep_busy())
    try:
        received = await asyncio.gather(*(read_for(peer, 2.0) for _, peer in idle))
    finally:
        writer.cancel()
    elapsed = loop.time() - started
    for data in received:
        pings = data.count(sse.PING)
        assert data == sse.PING * pings
        # pinged at ~0.5-0.75 s, then every 0.5-0.75 s: 2 to 4 times in 2 s
        assert int(elapsed / 0.75) <= pings <= int(elapsed / 0.5), (pings, elapsed)
    assert sse.PING not in await read_for(busy_peer, 0.05)
    total = sum(data.count(sse.PING) for data in received)
    # each idle stream looked at once per ping (and maybe once more for a ping still on its
    # way), the busy one about once per keep-alive
    assert total + 1 <= edges.examined <= total + len(idle) + int(elapsed / 0.5) + 1


async def test_a_paused_stream_is_cut_off_at_the_send_timeout_not_at_its_keepalive(
    streams: MakeStreams,
) -> None:
    """A reader that stops reading: its transport pauses, and ``send_timeout`` later (plus at
    most a tick) it is cut off as ``slow``, long before its 30 s keep-alive would have had the
    clock look at it."""
    these: Streams = streams(keepalive=30.0, send_timeout=0.6)  # tick 0.3 s
    edges = these.edges
    stuck, _peer = await these.open("stuck")
    other, _ = await these.open("other")
    loop = asyncio.get_running_loop()
    while not stuck.sub.sending:  # nobody reads: the kernel's buffers fill, then the transport's
        stuck.write(b": " + b"x" * 65536 + b"\n\n", loop.time())
        await asyncio.sleep(0)
    paused = loop.time()
    async with asyncio.timeout(5):
        while stuck in edges.live:
            await asyncio.sleep(0.02)
    assert 0.6 - 0.05 <= loop.time() - paused <= 0.6 + 0.3 + 0.25
    assert stuck.sub.reason == "slow"
    assert edges.examined == 1, "the stuck stream, once; the other is not due for 30 s"
    assert other in edges.live


async def test_a_stream_gone_quiet_is_pinged_a_keepalive_after_its_last_frame(
    streams: MakeStreams,
) -> None:
    """A frame half-way through the keep-alive: when the clock looks at the stream (a
    keep-alive after it opened) it is not idle, and it is put back for a keep-alive after that
    frame — pinged then (at most a tick later), not a whole keep-alive after the look."""
    these: Streams = streams(keepalive=1.0, send_timeout=0.2)  # tick 0.1 s
    stream, peer = await these.open("quiet")
    loop = asyncio.get_running_loop()
    await asyncio.sleep(0.5)
    written = loop.time()
    stream.write(b": frame\n\n", written)
    assert await read_for(peer, 0.1) == b": frame\n\n"
    async with asyncio.timeout(5):
        assert await loop.sock_recv(peer, 65536) == sse.PING
    assert 1.0 - 0.05 <= loop.time() - written <= 1.0 + 0.1 + 0.2
    assert these.edges.examined == 2, "once a keep-alive after the opening, once to ping"


async def test_a_paused_stream_whose_token_expires_first_ends_at_its_expiry(
    streams: MakeStreams,
) -> None:
    """A stream is looked at the first moment something may be due: a reader that stopped
    reading, with a token that expires before its ``send_timeout`` ends, is told ``expired``
    at its expiry (plus at most a tick), not when it would count as stuck."""
    these: Streams = streams(keepalive=30.0, send_timeout=2.0)  # tick 1 s
    stuck, _peer = await these.open("stuck", lives=0.6)
    loop = asyncio.get_running_loop()
    opened = loop.time()
    while not stuck.sub.sending:
        stuck.write(b": " + b"x" * 65536 + b"\n\n", loop.time())
        await asyncio.sleep(0)
    async with asyncio.timeout(5):
        while stuck in these.edges.live:
            await asyncio.sleep(0.02)
    assert stuck.sub.reason == "expired"
    assert loop.time() - opened <= 0.6 + 1.0 + 0.3, "at its expiry, not at the send timeout"
