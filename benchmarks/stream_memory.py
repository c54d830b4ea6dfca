"""What one open stream holds in the server's Python heap, by allocating line (tracemalloc).

    python -m benchmarks.stream_memory 1000        # streams to open (after 200 to warm up)
    TRACEBACKS=1 python -m benchmarks.stream_memory 400

The server runs in this process (``tests.support.ServerThread``: uvicorn with the edge
protocol, SQLite, memory broker, channels), so tracemalloc sees it; the streams are opened by a
child process (raw sockets, ``GET /v1/stream``, every stream its own user as in
``benchmarks.anchor``), so their memory is not counted. Tracing starts after 200 streams are
open and the presence heartbeat ran; the figure is the traced growth over the next N streams
and one more heartbeat, divided by N. It is Python's own allocations only: the C side (libuv),
allocator fragmentation and the kernel's socket buffers are in PSS (``benchmarks.anchor``,
``benchmarks.load``), not here.
"""

from __future__ import annotations

import asyncio
import gc
import multiprocessing
import os
import sys
import tempfile
import time
import tracemalloc
from multiprocessing.connection import Connection

from benchmarks._server import mint_tokens

WARM = 200
SETTLE = 6.0  # seconds: past one presence heartbeat (TIDINGS_PRESENCE_INTERVAL, 5 s)


def _clients(url: str, tokens: list[str], conn: Connection) -> None:
    async def main() -> None:
        host, port = url.split("//")[1].split(":")
        socks: list[asyncio.StreamWriter] = []
        gate = asyncio.Semaphore(10)

        async def one(token: str) -> None:
            async with gate:
                reader, writer = await asyncio.open_connection(host, int(port))
                request = f"GET /v1/stream?access_token={token} HTTP/1.1\r\nHost: x\r\n\r\n"
                writer.write(request.encode())
                seen = b""
                while b"event: ready" not in seen:
                    seen += await reader.read(4096)
                socks.append(writer)

        await asyncio.gather(*(one(t) for t in tokens))
        conn.send(len(socks))
        conn.recv()
        for writer in socks:
            writer.close()

    asyncio.run(main())


def _open(url: str, tokens: list[str]) -> tuple[multiprocessing.Process, Connection, int]:
    ours, theirs = multiprocessing.Pipe()
    proc = multiprocessing.Process(target=_clients, args=(url, tokens, theirs))
    proc.start()
    return proc, ours, int(ours.recv())


def main() -> None:
    from tests.support import ServerThread, create_tenant, make_settings

    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    settings = make_settings(
        tempfile.mkdtemp(), max_streams_per_tenant=100_000, max_streams_per_user=100_000
    )
    server = ServerThread(settings).start()
    tenant = create_tenant(server.url, "memory")
    users = [f"user-{i}" for i in range(WARM + count)]
    tokens = asyncio.run(mint_tokens(server.url, tenant.key, users))
    warm = _open(server.url, tokens[:WARM])
    time.sleep(SETTLE)
    gc.collect()
    tracemalloc.start(25)
    before = tracemalloc.take_snapshot()
    measured = _open(server.url, tokens[WARM:])
    time.sleep(SETTLE)
    gc.collect()
    after = tracemalloc.take_snapshot()
    opened = measured[2]
    stats = after.compare_to(before, "lineno")
    total = sum(s.size_diff for s in stats)
    print(f"{opened} streams: {total / opened:.0f} bytes per stream traced (Python heap)")
    for stat in stats[:30]:
        if stat.size_diff / opened < 16:
            break
        frame = stat.traceback[0]
        where = frame.filename.split("site-packages/")[-1].split("/src/")[-1]
        per = stat.size_diff / opened
        print(f"{per:8.0f} B {stat.count_diff / opened:5.2f} objects  {where}:{frame.lineno}")
    if os.environ.get("TRACEBACKS"):
        for stat in after.compare_to(before, "traceback")[:10]:
            print(f"--- {stat.size_diff / opened:.0f} B per stream")
            for line in stat.traceback.format()[-12:]:
                print("   ", line)
    for proc, conn, _ in (warm, measured):
        conn.send(0)
        proc.join()
    server.stop()


if __name__ == "__main__":
    main()
