"""What the edge's one clock costs with many idle streams (a diagnostic, issue 8 item 4).

    python -m benchmarks.clock --streams 5000 --seconds 30

The clock (``Edges._sweep``) pings streams idle for ``--keepalive`` seconds, ends streams
whose token expired and cuts off readers stuck past ``send_timeout``. This opens ``--streams``
loopback TCP connections read by a child process, hands each to a real ``Edge`` (as
``benchmarks.fanout_sockets`` does), publishes nothing, and for ``--seconds`` measures this
process's CPU (``time.process_time``: the clock, the pings it writes and the loop, nothing
else runs) per second, the streams the clock looked at (``Edges.examined``, where the code has
it) and the pings written. A clock that sweeps every stream every tick pays for every stream
every second; one that looks at a stream only when something may be due for it pays for about
one look and one ping per stream per keep-alive.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import uvloop

from benchmarks.fanout_python import bare_edges
from benchmarks.fanout_sockets import Loopback
from tidings.delivery import sse


async def _run(streams: int, seconds: float, keepalive: float) -> dict[str, Any]:
    loopback = await Loopback().open(streams)
    edges = bare_edges(keepalive)  # no hub, no store: nobody expires or lags here
    loopback.attach(edges)
    examined = getattr(edges, "examined", None)
    began = time.process_time()
    await asyncio.sleep(seconds)
    spent = time.process_time() - began
    looked = None if examined is None else edges.examined - examined
    read = await loopback.close()
    ping = len(b"%x\r\n" % len(sse.PING)) + len(sse.PING) + 2
    return {
        "cpu_ms_per_s": spent / seconds * 1000,
        "examined_per_s": None if looked is None else looked / seconds,
        "pings_per_s": read / ping / seconds,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--streams", type=int, default=5000)
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--keepalive", type=float, default=15.0, help="TIDINGS_KEEPALIVE (s)")
    args = p.parse_args()
    got = uvloop.run(_run(args.streams, args.seconds, args.keepalive))
    looked = got["examined_per_s"]
    print(
        f"{args.streams} idle streams, keep-alive {args.keepalive:g} s, over {args.seconds:g} s:"
        f" {got['cpu_ms_per_s']:.2f} ms of CPU per second"
        f" ({got['cpu_ms_per_s'] / 10:.3f} % of a core);"
        f" streams looked at {'n/a' if looked is None else f'{looked:.0f}'}/s;"
        f" pings {got['pings_per_s']:.0f}/s"
    )


if __name__ == "__main__":
    main()
