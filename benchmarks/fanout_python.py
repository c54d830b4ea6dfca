"""The Python cost of the fan-out per stream and notification (a diagnostic, issue 8).

    python -m benchmarks.fanout_python --streams 5000 --rounds 200

Real ``Subscriber``, ``Edge`` and ``Edges`` objects (``delivery/hub.py``, ``delivery/edge.py``)
under uvloop; each stream's transport only counts its writes, so what is measured is the
Python of ``Hub._dispatch``'s broadcast loop, ``Edge.offer`` and ``Edges._flush``, without the
``write`` syscall and the kernel's TCP (which both tidings and Nchan pay). Prints process CPU
per stream per notification.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import uvloop

from tidings.delivery.edge import Edge, Edges
from tidings.delivery.hub import Subscriber
from tidings.domain.principals import Principal


class _Counting:
    """A transport that takes the writes and counts them."""

    __slots__ = ("writes",)

    def __init__(self) -> None:
        self.writes = 0

    def is_closing(self) -> bool:
        return False

    def write(self, data: bytes) -> None:
        self.writes += 1

    def set_write_buffer_limits(self, high: int) -> None:
        return None


class _Metric:
    def inc(self, n: int = 1) -> None:
        return None

    def labels(self, **_: Any) -> _Metric:
        return self


class _Metrics:
    delivered = _Metric()
    dropped = _Metric()


def bare_edges(keepalive: float = 30) -> Edges:
    """An :class:`Edges` for streams the benchmarks feed by hand: no hub, no store (neither
    is used by ``offer``, the flush or a ping), metrics that count nothing."""
    return Edges(
        None,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        _Metrics(),  # type: ignore[arg-type]
        keepalive=keepalive,
        send_timeout=10,
        retry_ms=1000,
        buffer=256,
    )


async def _run(streams: int, rounds: int) -> float:
    edges = bare_edges()
    expires = datetime.now(UTC) + timedelta(hours=1)
    subs = []
    transports = []
    for i in range(streams):
        principal = Principal(tenant="t", user=f"u{i}", roles=frozenset(), expires_at=expires)
        sub = Subscriber(principal, 256)
        transport = _Counting()
        Edge(edges, sub, 0).attach(transport, chunked=True, paused=False)  # type: ignore[arg-type]
        subs.append(sub)
        transports.append(transport)
    frame = b"id: 1\nevent: notification\ndata: " + b"x" * 190 + b"\n\n"
    began = time.process_time()
    for seq in range(1, rounds + 1):
        for sub in subs:  # as Hub._dispatch's broadcast loop
            edge = sub.edge
            if edge is not None and sub.reason is None:
                edge.offer(seq, frame)
            else:
                sub.offer(seq, frame)
        await asyncio.sleep(0)  # the flush is called soon
        await asyncio.sleep(0)
    spent = time.process_time() - began
    assert all(t.writes == rounds for t in transports), "every stream got every frame"
    return spent / (streams * rounds)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--streams", type=int, default=5000)
    p.add_argument("--rounds", type=int, default=200)
    args = p.parse_args()
    per = uvloop.run(_run(args.streams, args.rounds))
    print(f"{per * 1e6:.3f} µs of Python per stream and notification ({args.streams} streams)")


if __name__ == "__main__":
    main()
