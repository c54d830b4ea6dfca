"""The fan-out's CPU per delivery over real sockets (a diagnostic, issue 8).

    python -m benchmarks.fanout_sockets --streams 1000 --rounds 500

``benchmarks.fanout_python`` measures the fan-out's Python with transports that only count
their writes; this measures what the same code costs when each write is a real ``write``
syscall on a loopback TCP connection: real ``Subscriber``, ``Edge`` and ``Edges`` objects under
uvloop, ``--streams`` connections accepted in this process and read by a child process, one
notification given to the tenant's ``Cast`` as ``Hub._dispatch`` gives a tenant-wide one,
every ``--gap`` seconds (an idle loop in between, as at 20 notifications a second). Both paths
of the fan-out in turn, ``--block`` notifications each: every stream on the cast (one loop over
the transports), and every stream off it (each offered the frame, its pending list written at
the flush: a stream with muted types, say). Prints per path this process's CPU (user + system,
``time.process_time``) per delivery, and the user and system parts (``getrusage``,
tick-grained). A rewrite of the fan-out is measured here, beside the old code in the same
process where it can be, before the Python-only figure is believed: in session 10 a rewrite
that halved ``fanout_python``'s figure changed nothing here (docs/performance.md).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import resource
import selectors
import socket
import time
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from typing import cast

import uvloop

from benchmarks.fanout_python import bare_edges
from tidings.delivery.edge import Cast, Edge, Edges
from tidings.delivery.hub import Subscriber
from tidings.domain.principals import Principal


def _read_all(port: int, streams: int, report: Connection) -> None:
    """The child: open ``streams`` connections, read them until each is closed, and report
    the bytes read."""
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(streams)]
    selector = selectors.DefaultSelector()
    for sock in socks:
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ, sock)
    open_, total = len(socks), 0
    while open_:
        for key, _ in selector.select():
            ready: socket.socket = key.data
            try:
                data = ready.recv(65536)
            except BlockingIOError:
                continue
            total += len(data)
            if not data:
                selector.unregister(ready)
                ready.close()
                open_ -= 1
    report.send(total)


class _Accepted(asyncio.Protocol):
    """A server side connection: its flow control goes to its edge, as ``server.Handed``."""

    def __init__(self, accepted: list[tuple[_Accepted, asyncio.Transport]]) -> None:
        self.accepted = accepted
        self.edge: Edge | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.accepted.append((self, cast(asyncio.Transport, transport)))  # uvloop's: no subclass

    def pause_writing(self) -> None:
        if self.edge is not None:
            self.edge.pause_writing()

    def resume_writing(self) -> None:
        if self.edge is not None:
            self.edge.resume_writing()


class Loopback:
    """``streams`` loopback connections accepted in this process, each read by a child process
    (:func:`_read_all`) until it is closed, each handed to a real :class:`Edge` by
    :meth:`attach`."""

    def __init__(self) -> None:
        self.accepted: list[tuple[_Accepted, asyncio.Transport]] = []

    async def open(self, streams: int) -> Loopback:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(lambda: _Accepted(self.accepted), "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        context = multiprocessing.get_context("spawn")
        self.mine, theirs = context.Pipe()
        self.reader = context.Process(target=_read_all, args=(port, streams, theirs), daemon=True)
        self.reader.start()
        async with asyncio.timeout(60):
            while len(self.accepted) < streams:
                await asyncio.sleep(0.01)
        return self

    def attach(self, edges: Edges) -> list[Subscriber]:
        """Each connection to an edge stream of ``edges`` (a user each, an hour to live)."""
        expires = datetime.now(UTC) + timedelta(hours=1)
        subs = []
        for i, (protocol, transport) in enumerate(self.accepted):
            principal = Principal(tenant="t", user=f"u{i}", roles=frozenset(), expires_at=expires)
            sub = Subscriber(principal, 256)
            edge = Edge(edges, sub, 0)
            protocol.edge = edge
            edge.attach(transport, chunked=True, paused=False)
            subs.append(sub)
        return subs

    async def close(self) -> int:
        """Close every connection; the bytes the child read from them all."""
        for _, transport in self.accepted:
            transport.close()
        self.server.close()
        async with asyncio.timeout(30):  # the loop runs meanwhile: the transports close
            while not self.mine.poll():
                await asyncio.sleep(0.01)
        read: int = self.mine.recv()
        self.reader.join(30)
        return read


PATHS = ("cast", "one by one")


async def _run(
    streams: int, rounds: int, gap: float, block: int
) -> dict[str, tuple[float, float, float]]:
    """Per path, CPU per delivery and its user and system parts (s)."""
    loopback = await Loopback().open(streams)
    edges = bare_edges()
    subs = loopback.attach(edges)
    cast = Cast(0)  # the tenant's, as the hub makes it; every subscriber registered off it
    cast.off.update(subs)
    frame = b"id: 1\nevent: notification\ndata: " + b"x" * 190 + b"\n\n"
    spent = {path: [0.0, 0.0, 0.0] for path in PATHS}
    seq = 0
    for start in range(0, rounds, block):
        for path in PATHS:
            for sub in subs:  # on the cast (steady streams), or each off it with a home-less edge
                edge = sub.edge
                assert edge is not None
                if path == "cast":
                    edge.home = cast
                    edges.join_soon(edge)
                else:
                    edge.home = None
                    edge.restate()  # steady but homeless: off the cast
            await asyncio.sleep(0.2)
            on = len(cast.members)
            assert on == (streams if path == "cast" else 0), f"{on} streams on the cast"
            began, usage = time.process_time(), resource.getrusage(resource.RUSAGE_SELF)
            for _ in range(min(block, rounds - start)):
                seq += 1
                cast.deliver(seq, frame)  # as Hub._dispatch offers a tenant-wide notification
                await asyncio.sleep(gap)
            after = resource.getrusage(resource.RUSAGE_SELF)
            figures = spent[path]
            figures[0] += time.process_time() - began
            figures[1] += after.ru_utime - usage.ru_utime
            figures[2] += after.ru_stime - usage.ru_stime
    lagging = sum(1 for sub in subs if sub.lagging)
    read = await loopback.close()
    assert not lagging, f"{lagging} streams fell behind: the reader is too slow for --gap"
    chunk = len(b"%x\r\n" % len(frame)) + len(frame) + 2
    expected = streams * 2 * rounds * chunk
    assert read == expected, f"read {read} bytes, not {expected}"
    n = streams * rounds
    return {path: (f[0] / n, f[1] / n, f[2] / n) for path, f in spent.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--streams", type=int, default=1000)
    p.add_argument("--rounds", type=int, default=500, help="notifications per path")
    p.add_argument("--gap", type=float, default=0.01, help="s between notifications")
    p.add_argument("--block", type=int, default=50, help="notifications per path in a row")
    args = p.parse_args()
    figures = uvloop.run(_run(args.streams, args.rounds, args.gap, args.block))
    for path, (per, user, system) in figures.items():
        print(
            f"{per * 1e6:.3f} µs of CPU per stream and notification ({args.streams} streams;"
            f" user {user * 1e6:.2f}, system {system * 1e6:.2f}): {path}"
        )


if __name__ == "__main__":
    main()
