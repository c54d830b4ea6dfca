"""A subscriber that reads nothing while others stream: it is cut off, the others see no
effect, server memory stays flat, and on reconnect it is whole.

"A minute" of not reading is scaled down to ~10 s by a small per-stream buffer
(TIDINGS_SUBSCRIBER_BUFFER=32) and write timeout (TIDINGS_SEND_TIMEOUT=2): what matters is that
the stalled reader's socket and our buffer fill up, which happens within a few seconds at this
publish rate; after that nothing changes however long it stalls.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from pathlib import Path

import httpx
import psutil
import pytest

from tests.cluster.harness import (
    PublishLog,
    SseStream,
    _visible,
    cluster_of,
    make_streams,
    publish_all,
    store_rows,
    token,
)
from tests.services import PostgresServer, RedisServer

pytestmark = [pytest.mark.anyio, pytest.mark.postgres, pytest.mark.redis]


def stalled_stream(port: int, tenant: str, user: str) -> socket.socket:
    """Open a stream, read its headers and ``ready``, then never read again."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.settimeout(10)
    sock.sendall(
        f"GET /v1/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token(tenant, user, [])}"
        "\r\n\r\n".encode()
    )
    seen = b""
    while b"event: ready" not in seen:
        seen += sock.recv(4096)
    assert seen.startswith(b"HTTP/1.1 200"), seen[:200]
    return sock


@pytest.mark.timeout(120)
async def test_a_stalled_reader_is_cut_off_and_hurts_nobody(
    pg_live: PostgresServer, redis_live: RedisServer, workdir: Path
) -> None:
    env = {"TIDINGS_SUBSCRIBER_BUFFER": "32", "TIDINGS_SEND_TIMEOUT": "2"}
    with cluster_of(
        pg_live, workdir, broker="redis", redis=redis_live, instances=2, nginx=False, env=env
    ) as cluster:
        main = cluster.instances[0]
        tenant = cluster.tenant("alpha")
        others = make_streams(main.url, ["alpha"], 6)
        others += make_streams(cluster.instances[1].url, ["alpha"], 6)
        for i, s in enumerate(others):  # distinct users from the stalled one
            s.user = f"o{i}"
            s.token = token("alpha", s.user, sorted(s.roles))
        stop = asyncio.Event()
        tasks = [asyncio.create_task(s.run(stop)) for s in others]
        async with asyncio.timeout(20):
            while any(s.ready_at == 0 for s in others):
                await asyncio.sleep(0.05)
        stalled = await asyncio.to_thread(stalled_stream, main.port, "alpha", "slowpoke")
        proc = psutil.Process(main.pid)
        rss: list[int] = []

        async def sample() -> None:
            while True:
                rss.append(proc.memory_info().rss)
                await asyncio.sleep(0.25)

        sampler = asyncio.create_task(sample())
        log = PublishLog()
        urls = [i.url for i in cluster.instances]
        started = time.monotonic()
        await publish_all(urls, [tenant], 1000, publishers=4, log=log, pace=0.01, big=True)
        stalled_for = time.monotonic() - started
        expected = (await asyncio.to_thread(store_rows, cluster, ["alpha"]))["alpha"]
        async with asyncio.timeout(30):
            while not all(set(_visible(expected, s)) <= s.arrivals.keys() for s in others):
                await asyncio.sleep(0.1)
        sampler.cancel()

        def cut_off(metrics: str) -> float:
            return sum(
                float(line.rsplit(" ", 1)[1])
                for line in metrics.splitlines()
                if line.startswith("tidings_subscribers_dropped_total{")
                and ('"slow"' in line or '"overflow"' in line)
            )

        # A reader whose socket is full is cut off once it has stayed stuck past the send
        # timeout (2 s here, checked by a clock that ticks every second): wait that long at most.
        async with asyncio.timeout(10):
            while cut_off(metrics := httpx.get(f"{main.url}/metrics").text) < 1:
                await asyncio.sleep(0.25)
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

        # Cut off: the server dropped it (its buffer overflowed while a write was stuck, or a
        # write outlasted the send timeout) and closed the connection.
        assert cut_off(metrics) == 1.0, metrics
        assert "tidings_streams_open 6.0" in metrics  # the 6 healthy ones on this instance
        # No effect on the others: each got every notification once, in order, with no gap.
        for s in others:
            assert s.duplicates == 0 and s.out_of_order == 0 and s.resets == 0
            assert s.connects == 1, "a healthy stream was disconnected"
        # Memory flat: what the stalled reader leaves behind is bounded (no growth with it).
        warm = rss[len(rss) // 4]
        assert max(rss[len(rss) // 4 :]) - warm < 40 * 2**20, [r // 2**20 for r in rss]

        # On reconnect, from the last id it managed to read, it is whole.
        last = _last_id(stalled)
        resumed = SseStream("127.0.0.1", main.port, "alpha", "slowpoke", frozenset(), "")
        resumed.token = token("alpha", "slowpoke", [])
        resumed.last_id = resumed.baseline = last
        stop = asyncio.Event()
        task = asyncio.create_task(resumed.run(stop))
        want = _visible(expected, resumed)
        async with asyncio.timeout(20):
            while not set(want) <= resumed.arrivals.keys():
                await asyncio.sleep(0.05)
        stop.set()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert resumed.duplicates == 0 and resumed.resets == 0
        assert resumed.order == sorted(want)
    print(
        json.dumps(
            {
                "stalled_s": round(stalled_for, 1),
                "resumed_from": last,
                "replayed": len(resumed.order),
                "rss_mb": [rss[0] // 2**20, max(rss) // 2**20, rss[-1] // 2**20],
            }
        )
    )


def _last_id(sock: socket.socket) -> int:
    """Read what the server had sent before it cut the stream off; the last complete id."""
    data = b""
    sock.settimeout(5)
    try:
        while chunk := sock.recv(1 << 16):
            data += chunk
    except (TimeoutError, ConnectionError):
        pass
    finally:
        sock.close()
    last = 0
    for block in data.split(b"\n\n")[:-1]:
        for line in block.split(b"\n"):
            if line.startswith(b"id: "):
                last = int(line[4:])
    return last
