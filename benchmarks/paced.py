"""Server CPU of a paced publish, and of an idle server (a diagnostic, issue 8).

    python -m benchmarks.paced                          # 200 publishes at 20/s, then idle
    python -m benchmarks.paced --count 400 --rate 5 --streams 1000

The anchor's 1,000 x 20/s scenario publishes one notification every 50 ms: each publish runs
alone (no group to share its transaction) on a process that is otherwise idle between them, so
its CPU is not the throughput benchmark's (``benchmarks.publish``: 32 publishers at once). This
spawns ``tidings serve`` (SQLite, memory broker; ``_server.py``), optionally opens ``--streams``
idle streams (raw sockets, one user each), publishes ``--count`` notifications over one
keep-alive connection at ``--rate`` per second, and prints the server's user and system CPU
per publish over that span, then its CPU over an idle span as long (nothing published): the
background a delivery window pays as well (the workers' polls, the presence beat, the sweep).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from typing import Any

import httpx

from benchmarks._server import SpawnedServer, create_tenant, mint_tokens


def _cpu(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of ``pid`` so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


async def _open_streams(port: int, tokens: list[str]) -> list[asyncio.StreamWriter]:
    """One stream per token, each until its ``ready``."""
    gate = asyncio.Semaphore(100)

    async def one(token: str) -> asyncio.StreamWriter:
        async with gate:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            head = f"GET /v1/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
            writer.write(f"{head}\r\n".encode())
            seen = b""
            while b"event: ready" not in seen:
                data = await asyncio.wait_for(reader.read(65536), 30)
                if not data:
                    raise RuntimeError(seen[:300])
                seen += data
            return writer

    return list(await asyncio.gather(*(one(t) for t in tokens)))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--count", type=int, default=200, help="notifications published")
    p.add_argument("--rate", type=float, default=20.0, help="per second, one at a time")
    p.add_argument("--streams", type=int, default=0, help="idle streams open meanwhile")
    p.add_argument("--settle", type=float, default=3.0, help="s before measuring")
    p.add_argument("--json", action="store_true", help="print the figures as one JSON line")
    p.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting for the server, e.g. TIDINGS_CHANNELS_WORKERS=false (repeatable)",
    )
    args = p.parse_args()
    env = dict(item.split("=", 1) for item in args.server_env)
    server = SpawnedServer(max(args.streams, 10), extra_env=env).start()
    try:
        figures = asyncio.run(_run(server, args))
    finally:
        server.stop()
    if args.json:
        print(json.dumps(figures))
        return
    print(
        f"{figures['count']} publishes at {args.rate:g}/s with {args.streams} streams open: "
        f"server CPU per publish {figures['publish_user_ms']:.2f} ms user + "
        f"{figures['publish_sys_ms']:.2f} ms system (over {figures['publish_span_s']:.1f} s)\n"
        f"idle over as long: {figures['idle_share'] * 100:.2f} % of a core "
        f"({figures['idle_ms_per_slot']:.2f} ms per publish slot)"
    )


async def _run(server: SpawnedServer, args: Any) -> dict[str, Any]:
    key = await create_tenant(server.url, server.operator_key, "paced")
    writers: list[asyncio.StreamWriter] = []
    if args.streams:
        tokens = await mint_tokens(server.url, key, [f"u{i}" for i in range(args.streams)])
        writers = await _open_streams(server.port, tokens)
    body = {"type": "booking_created", "title": "New booking", "body": "x" * 120, "data": {}}
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=30) as c:
        url = f"{server.url}/v1/notifications"
        for _ in range(10):  # warm: the key's cache, the statements
            (await c.post(url, json=body)).raise_for_status()
        await asyncio.sleep(args.settle)
        user0, sys0 = _cpu(server.pid)
        started = time.monotonic()
        for i in range(args.count):
            (await c.post(url, json=body)).raise_for_status()
            await asyncio.sleep(max(0.0, started + (i + 1) / args.rate - time.monotonic()))
        await asyncio.sleep(0.5)  # the fan-out of the last one
        span = time.monotonic() - started
        user1, sys1 = _cpu(server.pid)
        await asyncio.sleep(span)
        user2, sys2 = _cpu(server.pid)
    for writer in writers:
        writer.close()
    idle = (user2 - user1) + (sys2 - sys1)
    return {
        "count": args.count,
        "rate": args.rate,
        "streams": args.streams,
        "publish_span_s": round(span, 2),
        "publish_user_ms": (user1 - user0) * 1000 / args.count,
        "publish_sys_ms": (sys1 - sys0) * 1000 / args.count,
        "idle_share": idle / span,
        "idle_ms_per_slot": idle * 1000 / args.count,
    }


if __name__ == "__main__":
    main()
