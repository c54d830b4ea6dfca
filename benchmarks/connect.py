"""Server CPU per stream connect, cold and warm, on an in-process server (a diagnostic).

    python -m benchmarks.connect --streams 1000                  # as tidings serve runs
    python -m benchmarks.connect --streams 1000 --no-muted-hook  # without the channels' hook
    python -m benchmarks.connect --streams 1000 --pause 6        # reconnect 6 s after closing
    python -m benchmarks.connect --streams 1000 --publish-between 400                    # a storm
    python -m benchmarks.connect --streams 1000 --publish-between 400 --store postgres   # on PG
    python -m benchmarks.connect --streams 2000 --restart-after 300 --last-event-id 295  # restart

Starts tidings under uvicorn in a thread of this process (``tests.support.ServerThread``, the
edge protocol, SQLite in a temp dir), mints one token per stream (``--users`` distinct users,
default one per stream), then twice: a client subprocess (raw sockets, uvloop, 100 attempts in
flight) opens every stream and waits for each ``ready``; then all are closed. The first pass is
cold (nothing kept), the second a reconnect with everything kept — or, with
``--publish-between N``, a reconnect after N notifications were published meanwhile (100 a
request): past the ring's 256, every user's view is read from the store again, as after a
restart (``delivery/opening.py``). ``--store postgres`` runs the server on a PostgreSQL of its
own (``tests.services.PostgresServer``: ``initdb``/``pg_ctl`` in a temp dir) instead of SQLite.
For each pass it prints the process CPU (server and its store threads; the client is another
process) over the pass plus 0.5 s, per stream (in all, and user space and kernel apart), the
store read transactions opened (``Store.read`` and ``Store.run_read`` calls: the opening's own
and the channels') and the batches the edge opener opened them in (``tidings.api.opener``),
and what the cyclic GC did meanwhile (collections, time, objects freed; the GC tuned as
``tidings serve`` tunes it, ``server.tune_gc``: a stream's connect and close should leave it
nothing).
``--no-muted-hook`` takes the channels' muted-types hook out, to see the connect path without
it (docs/performance.md). ``--restart-after N`` publishes N notifications first, then restarts
the server on the same store (a new process's memory: nothing kept); ``--last-event-id ID``
makes every client resume from ID (``Last-Event-ID``): with both, the reconnect storm after a
restart whose downtime's publishes landed before the streams came back (``ID < N``).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import httpx
from tests.services import PostgresServer
from tests.support import ServerThread, create_tenant, make_settings

from tidings.server import tune_gc

CLIENT = r"""
import asyncio, json, sys, time
import uvloop

RESUME = ""

async def one(port, token, gate):
    async with gate:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        head = "GET /v1/stream HTTP/1.1\r\nHost: x\r\n" + RESUME
        writer.write(f"{head}Authorization: Bearer {token}\r\n\r\n".encode())
        seen = b""
        while b"event: ready" not in seen and b"event: reset" not in seen:
            data = await reader.read(65536)
            if not data:
                raise RuntimeError(seen[:300])
            seen += data
        return writer

async def main():
    port, tokens = int(sys.argv[1]), json.load(open(sys.argv[2]))
    if sys.argv[3]:
        global RESUME
        RESUME = f"Last-Event-ID: {sys.argv[3]}\r\n"
    gate = asyncio.Semaphore(100)
    started = time.perf_counter()
    writers = await asyncio.gather(*(one(port, t, gate) for t in tokens))
    print(json.dumps({"open_s": round(time.perf_counter() - started, 3)}), flush=True)
    sys.stdin.readline()
    for writer in writers:
        writer.close()

uvloop.run(main())
"""


class _Collector:
    """A ``gc.callbacks`` entry: the cyclic GC's collections, time and freed objects."""

    def __init__(self) -> None:
        self.reset()
        self._started = 0.0

    def reset(self) -> None:
        self.runs, self.seconds, self.collected = 0, 0.0, 0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        self.runs += 1
        self.seconds += time.perf_counter() - self._started
        self.collected += info.get("collected", 0)


def _batches(srv: ServerThread) -> int:
    """Batches the edge opener (``tidings.api.opener``) has opened so far."""
    opener = getattr(srv.app.state, "edge_opener", None)
    return 0 if opener is None else int(getattr(opener, "batches", 0))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--streams", type=int, default=1000)
    p.add_argument("--users", type=int, default=0, help="distinct users (default: one each)")
    p.add_argument("--no-muted-hook", action="store_true", help="without the channels' hook")
    p.add_argument("--pause", type=float, default=1.0, help="seconds between the passes")
    p.add_argument(
        "--publish-between", type=int, default=0, help="notifications published between passes"
    )
    p.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    p.add_argument(
        "--restart-after", type=int, default=0, help="publish N, then restart on the same store"
    )
    p.add_argument("--last-event-id", type=int, default=None, help="every client resumes from it")
    args = p.parse_args()
    tmp = tempfile.mkdtemp(prefix="tidings-connect-")
    cap = args.streams + 10
    pg = PostgresServer().init().start() if args.store == "postgres" else None
    database = {} if pg is None else {"database_url": pg.url()}
    srv = ServerThread(
        make_settings(tmp, max_streams_per_tenant=cap, max_streams_per_user=cap, **database)
    ).start()
    try:
        tenant = create_tenant(srv.url, "jump-joy")
        if args.restart_after:
            _publish(srv.url, tenant.key, args.restart_after)
            srv.stop()
            srv = ServerThread(srv.settings).start()
        service: Any = srv.service
        if args.no_muted_hook:
            service.muted_types = None
        users = args.users or args.streams
        minted = [service.mint_token("jump-joy", f"u{i}")[0] for i in range(users)]
        tokens = [minted[i % users] for i in range(args.streams)]
        path = os.path.join(tmp, "tokens.json")
        Path(path).write_text(json.dumps(tokens))
        script = os.path.join(tmp, "client.py")
        Path(script).write_text(CLIENT)
        reads = [0]
        store = service.store
        real_read = store.read

        def counting_read() -> AbstractAsyncContextManager[Any]:
            reads[0] += 1
            return real_read()

        store.read = counting_read
        real_run_read = store.run_read

        async def counting_run_read(work: Any) -> Any:  # SQLite: the reader thread's reads
            reads[0] += 1
            return await real_run_read(work)

        store.run_read = counting_run_read
        tune_gc()  # as ``tidings serve`` runs
        collector = _Collector()
        gc.callbacks.append(collector)
        second = f"after {args.publish_between} published" if args.publish_between else "warm"
        resume = "" if args.last_event_id is None else str(args.last_event_id)
        for label in ("cold", second):
            if label != "cold" and args.publish_between:
                _publish(srv.url, tenant.key, args.publish_between)
            reads[0] = 0
            batches = _batches(srv)
            collector.reset()
            before = os.times()
            client = subprocess.Popen(
                [sys.executable, script, str(srv.port), path, resume],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            assert client.stdout is not None and client.stdin is not None
            opened = json.loads(client.stdout.readline())
            time.sleep(0.5)
            after = os.times()
            user, system = after.user - before.user, after.system - before.system
            cpu = user + system
            per = 1000 / args.streams  # seconds in all -> ms per stream
            print(
                f"{label}: {args.streams} streams open in {opened['open_s']} s; server CPU "
                f"{cpu:.2f} s = {cpu * per:.3f} ms per stream (user {user * per:.3f}, system "
                f"{system * per:.3f}); "
                f"store reads {reads[0]}; opened below the framework in "
                f"{_batches(srv) - batches} batches; cyclic GC {collector.runs} collections, "
                f"{collector.seconds * 1000:.0f} ms, {collector.collected} objects freed",
                flush=True,
            )
            client.stdin.write("\n")
            client.stdin.flush()
            client.wait(60)
            time.sleep(args.pause)
    finally:
        srv.stop()
        if pg is not None:
            pg.stop()
            pg.cleanup()


def _publish(url: str, key: str, count: int) -> None:
    """``count`` notifications for the whole tenant, 100 a request."""
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}) as client:
        for start in range(0, count, 100):
            items = [
                {"type": "booking.created", "title": f"Booking {i}", "body": "A bounce house"}
                for i in range(start, min(count, start + 100))
            ]
            client.post("/v1/notifications/batch", json={"notifications": items}).raise_for_status()
    time.sleep(0.5)  # delivered to nobody (no stream is open), but let the hub take them


if __name__ == "__main__":
    main()
