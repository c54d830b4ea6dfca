"""``tidings serve --workers N``: N processes accept on one port and, through the broker, every
stream gets every notification whichever worker holds it; SIGTERM stops them all gracefully."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import psutil
import pytest

from tests.cluster.harness import (
    Cluster,
    PublishLog,
    _visible,
    make_streams,
    publish_all,
    store_rows,
)
from tests.services import PostgresServer, RedisServer
from tests.support import free_port

pytestmark = [pytest.mark.anyio, pytest.mark.postgres, pytest.mark.redis]


@pytest.mark.timeout(90)
async def test_workers_share_a_port_and_deliver_everything(
    pg_live: PostgresServer, redis_live: RedisServer, workdir: Path
) -> None:
    cluster = Cluster(pg_live, workdir, broker="redis", redis=redis_live, instances=0)
    port = free_port()
    env = {**os.environ, **cluster.env, "TIDINGS_LOG_LEVEL": "INFO"}
    log = open(workdir / "workers.log", "ab")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "tidings", "serve", "--port", str(port), "--workers", "3"],
        env=env,
        cwd=workdir,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with asyncio.timeout(30):
            while True:
                try:
                    if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
        children = psutil.Process(proc.pid).children()
        workers = [w for w in children if "spawn_main" in " ".join(w.cmdline())]
        assert len(workers) == 3
        cluster.instances = []
        tenant = cluster.tenant_at(url, "alpha")
        streams = make_streams(url, ["alpha"], 30)
        stop = asyncio.Event()
        tasks = [asyncio.create_task(s.run(stop)) for s in streams]
        async with asyncio.timeout(20):
            while any(s.ready_at == 0 for s in streams):
                await asyncio.sleep(0.05)
        pids = {int(line.split()[-1].strip("[]")) for line in _served_by(workdir)}
        await publish_all([url], [tenant], 150, publishers=5, log=PublishLog())
        rows = (await asyncio.to_thread(store_rows, cluster, ["alpha"]))["alpha"]
        async with asyncio.timeout(20):
            while not all(set(_visible(rows, s)) <= s.arrivals.keys() for s in streams):
                await asyncio.sleep(0.05)
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        assert all(s.duplicates == 0 and s.order == sorted(s.order) for s in streams)
        assert len(pids) == 3, "every worker process started"

        proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait, 30) == 0
        assert not any(w.is_running() and w.status() != psutil.STATUS_ZOMBIE for w in workers)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        log.close()
        cluster.stop()


def _served_by(workdir: Path) -> list[str]:
    text = (workdir / "workers.log").read_text(errors="replace")
    return [line for line in text.splitlines() if "Started server process" in line]
