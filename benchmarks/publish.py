"""Durable publish throughput: concurrent ``POST /v1/notifications`` against ``tidings serve``.

    python -m benchmarks.publish --store sqlite --seconds 10
    python -m benchmarks.publish --store postgres --modes single,mixed --seconds 10

For each ``--store`` a fresh ``tidings serve`` is spawned (``_server.py``: its own SQLite file,
the memory broker, the publish rate limit out of the way, explicit secrets); for ``postgres`` a
throw-away cluster is started first with ``initdb``/``pg_ctl`` in a temp dir (as the
``postgres`` user when run as root) with the server's defaults for durability (``fsync`` and
``synchronous_commit`` on). Then each mode runs ``--concurrency`` publishers for ``--seconds``
over keep-alive connections (plain HTTP/1.1 on asyncio streams under uvloop: httpx costs
more client CPU per request than the server spends), each sending its next request as soon as
the last one is
answered:

- ``single``: one notification per ``POST /v1/notifications``, one tenant, no audience.
- ``batch``: ``POST /v1/notifications/batch`` with ``--batch`` notifications each.
- ``mixed``: single publishes spread over 5 tenants (one key each), a third to the whole
  tenant, a third to 3 listed users, a third to 2 roles.
- ``inprocess``: no HTTP — ``Tidings.publish`` called by ``--concurrency`` tasks in this
  process (``create_app`` and its lifespan, the same settings as the spawned server), to show
  what the commit path takes apart from the HTTP and API-key work of a request.
- ``asgi``: ``POST /v1/notifications`` called on the ASGI app itself by ``--concurrency``
  tasks of this process (no socket, no HTTP parsing): the CPU of the application's whole
  request path (routing, API key, validation, commit, answer) without the network.

Printed per mode: notifications/s (committed: each answer is 2xx only after the commit),
requests/s, the p50/p99 latency of a request, the server's CPU (user + system, share of one
core), that CPU per committed notification and the rate it means for a server with a core
to itself (10⁶ µs / that CPU): on a shared machine, where the server gets only part of a core,
the CPU per notification is the figure that does not depend on the neighbours. On PostgreSQL
also the database server's CPU per notification (postmaster and backends, the reaped ones
included), which the server's own figure leaves out. With both ``single`` and ``mixed``, their
ratios (issue 8: within 1.3x): by the server's CPU per notification, and by publishes/s (where
the database's own work shows too). One row of issue 8's table per
command, e.g. ``--store sqlite --modes single`` or ``--store postgres --modes single,mixed``.
Any non-2xx answer is counted and fails the run (exit status 1).

``--rounds R`` splits each mode's ``--seconds`` into R rounds (each after its own warm-up) and
the modes take turns (single, batch, mixed, single, …; the server and its tenants stay), so a
machine whose speed drifts during the run weighs on every mode alike: the mixed/single ratios
then come from the same minutes. With ``--profile-server`` only the last round is sampled.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import psutil
import uvloop

from benchmarks._server import SpawnedServer, create_tenant, free_port

MODES = ("single", "batch", "mixed", "inprocess", "asgi")
DIRECT = ("inprocess", "asgi")  # no server: in a process of their own


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--store", default="sqlite", help="sqlite, postgres or both (sqlite,postgres)")
    p.add_argument("--modes", default=",".join(MODES), help=f"comma-separated of {MODES}")
    p.add_argument("--seconds", type=float, default=10.0, help="duration of each mode")
    p.add_argument("--concurrency", type=int, default=32, help="publishers in flight")
    p.add_argument("--batch", type=int, default=100, help="notifications per batch request")
    p.add_argument("--warmup", type=float, default=1.0, help="seconds run before measuring")
    p.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="split each mode's --seconds into this many rounds, the modes taking turns",
    )
    p.add_argument("--profile-server", metavar="FILE", help="sample the server (_sampler.py)")
    p.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting for the spawned server, e.g. TIDINGS_CHANNELS_WORKERS=false",
    )
    return p.parse_args(argv)


# -- PostgreSQL ------------------------------------------------------------------------------


def _pg_bin(name: str) -> str:
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True)
    path = str(found[0]) if found else shutil.which(name)
    if path is None:
        raise SystemExit(f"{name} not found (install PostgreSQL server binaries)")
    return path


@contextlib.contextmanager
def postgres() -> Iterator[str]:
    """A throw-away cluster on a free loopback port; yields its asyncpg URL."""
    root = Path(tempfile.mkdtemp(prefix="tidings-bench-pg-"))
    as_root = os.geteuid() == 0
    port = free_port()

    def run(*args: str) -> None:
        cmd = ["runuser", "-u", "postgres", "--", *args] if as_root else list(args)
        done = subprocess.run(cmd, capture_output=True, timeout=120, check=False)
        if done.returncode != 0:
            raise SystemExit(f"{args[0]} failed: {done.stderr.decode(errors='replace')[-800:]}")

    data, sock = root / "data", root / "sock"
    sock.mkdir(parents=True)
    if as_root:
        pg = pwd.getpwnam("postgres")
        for path in (root, sock):
            os.chown(path, pg.pw_uid, pg.pw_gid)
    run(_pg_bin("initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "--locale=C")
    options = f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c max_connections=200"
    run(
        _pg_bin("pg_ctl"), "-D", str(data), "-l", str(root / "pg.log"), "-o", options, "-w", "start"
    )
    DATABASE.append(psutil.Process(int((data / "postmaster.pid").read_text().split()[0])))
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:{port}/postgres"
    finally:
        DATABASE.clear()
        run(_pg_bin("pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)


# -- load ------------------------------------------------------------------------------------


def _notification(i: int, mixed: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "booking_created",
        "title": f"Booking #{i}",
        "body": "Castle bounce house, Saturday 10:00",
        "data": {"booking_id": i},
        "link": f"/bookings/{i}",
    }
    if mixed and i % 3 == 1:
        body["audience"] = {"users": [f"u{i % 50}", f"u{(i + 1) % 50}", f"u{(i + 2) % 50}"]}
    elif mixed and i % 3 == 2:
        body["audience"] = {"roles": ["owner", "staff"]}
    return body


def _cpu(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return float(times.user + times.system)


DATABASE: list[psutil.Process] = []
"""The PostgreSQL server of the store being run (its postmaster), while there is one."""


def _database_cpu() -> float:
    """CPU seconds of the PostgreSQL server: the postmaster, its live backends and the ones it
    has reaped. 0 without one (SQLite runs in the server's own process)."""
    if not DATABASE:
        return 0.0
    postmaster = DATABASE[0]
    times = postmaster.cpu_times()
    total = float(times.user + times.system + times.children_user + times.children_system)
    for child in postmaster.children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            total += _cpu(child)
    return total


class Connection:
    """One keep-alive HTTP/1.1 connection (asyncio streams): the load must cost the client less
    than the server. httpx spends ~4 ms of client CPU per request at 32 in flight here, which
    capped every figure at ~200 requests/s whatever the server did."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        lines = [f"POST {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}", "", ""]
        self.writer.write("\r\n".join(lines).encode() + body)
        status = int((await self.reader.readline()).split()[1])
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


@dataclass
class Tally:
    """What one mode's measured rounds added up to (CPU in seconds, not shares)."""

    latencies: list[float] = field(default_factory=list)
    notifications: int = 0
    requests: int = 0
    errors: int = 0
    elapsed: float = 0.0
    server_cpu: float = 0.0
    client_cpu: float = 0.0
    database_cpu: float = 0.0

    def report(self, mode: str) -> bool:
        """Print the mode's line; whether every answer was 2xx and one came."""
        if self.elapsed:
            _report(
                mode,
                self.latencies,
                self.notifications / self.elapsed,
                self.requests / self.elapsed,
                self.errors,
                self.server_cpu / self.elapsed,
                self.client_cpu / self.elapsed,
                self.database_cpu / self.elapsed,
            )
        return self.errors == 0 and bool(self.latencies)


async def run_mode(
    server: SpawnedServer, keys: list[str], mode: str, args: argparse.Namespace, tally: Tally
) -> None:
    """One round of ``mode``: ``--warmup`` seconds, then ``--seconds / --rounds`` measured into
    ``tally``."""
    server_proc, client_proc = psutil.Process(server.pid), psutil.Process()
    measuring = False
    stop = False
    per_request = args.batch if mode == "batch" else 1
    path = "/v1/notifications/batch" if mode == "batch" else "/v1/notifications"

    async def publisher(conn: Connection, worker: int) -> None:
        i = worker
        headers = {"Authorization": f"Bearer {keys[worker % len(keys)]}"}
        while not stop:
            if mode == "batch":
                payload: dict[str, Any] = {
                    "notifications": [_notification(i + j, False) for j in range(args.batch)]
                }
            else:
                payload = _notification(i, mode == "mixed")
            i += args.concurrency
            started = time.perf_counter()
            status, answer = await conn.post(path, headers, orjson.dumps(payload))
            took = time.perf_counter() - started
            if not measuring:
                continue
            if status not in (200, 201):
                tally.errors += 1
                if tally.errors <= 3:
                    print(f"  {status} {answer[:200]!r}", file=sys.stderr)
                continue
            tally.latencies.append(took)
            tally.requests += 1
            tally.notifications += per_request

    conns = [Connection("127.0.0.1", server.port) for _ in range(args.concurrency)]
    try:
        tasks = [asyncio.create_task(publisher(c, w)) for w, c in enumerate(conns)]
        await asyncio.sleep(args.warmup)
        measuring = True
        began = time.perf_counter()
        cpu = _cpu(server_proc), _cpu(client_proc), _database_cpu()
        if args.profile_server:
            os.kill(server.pid, signal.SIGUSR1)  # the sampler starts over: measure only this
        await asyncio.sleep(args.seconds / args.rounds)
        measuring = False
        tally.elapsed += time.perf_counter() - began
        tally.server_cpu += _cpu(server_proc) - cpu[0]
        tally.client_cpu += _cpu(client_proc) - cpu[1]
        tally.database_cpu += _database_cpu() - cpu[2]
        stop = True
        await asyncio.wait_for(asyncio.gather(*tasks), 120)
    finally:
        for conn in conns:
            conn.close()


async def run_in_process(
    database_url: str, env: dict[str, str], args: argparse.Namespace, mode: str = "inprocess"
) -> bool:
    """``Tidings.publish`` (``inprocess``) or the ASGI app (``asgi``) from ``--concurrency``
    tasks of this process, for ``--seconds``."""
    from tidings.app import create_app
    from tidings.config import Settings
    from tidings.domain.notifications import NewNotification
    from tidings.extensions import bundled

    values: dict[str, Any] = {
        "env": "development",
        "database_url": database_url,
        "broker_url": "memory://",
        "secret": "benchmark-secret-" + "x" * 32,
        "operator_key": "benchmark-operator-" + "x" * 32,
        "publish_rate": "1000000/second",
        "log_level": "WARNING",
    }
    values.update({k.removeprefix("TIDINGS_").lower(): v for k, v in env.items()})
    settings = Settings(**values)
    app = create_app(settings, bundled(settings))  # the extensions `tidings serve` runs
    latencies: list[float] = []
    measuring = stop = False
    async with app.router.lifespan_context(app):
        service = app.state.tidings
        await service.create_tenant("bench-inprocess", "benchmark")
        _, key = await service.create_key("bench-inprocess", "benchmark", ["publish"])
        headers = [(b"host", b"bench"), (b"authorization", f"Bearer {key}".encode())]
        headers.append((b"content-type", b"application/json"))

        async def over_asgi(i: int) -> None:
            body = orjson.dumps(_notification(i, False))
            scope = {
                "type": "http",
                "asgi": {"version": "3.0"},
                "http_version": "1.1",
                "method": "POST",
                "scheme": "http",
                "path": "/v1/notifications",
                "raw_path": b"/v1/notifications",
                "query_string": b"",
                "root_path": "",
                "headers": [*headers, (b"content-length", str(len(body)).encode())],
                "client": ("127.0.0.1", 1),
                "server": ("127.0.0.1", 80),
            }
            messages = [{"type": "http.request", "body": body, "more_body": False}]
            status: list[int] = []

            async def receive() -> dict[str, Any]:
                if messages:
                    return messages.pop()
                await asyncio.Event().wait()  # the client stays: never a disconnect
                raise AssertionError("unreachable")

            async def send(message: dict[str, Any]) -> None:
                if message["type"] == "http.response.start":
                    status.append(message["status"])

            await app(scope, receive, send)
            if status != [201]:
                raise SystemExit(f"POST /v1/notifications answered {status}")

        async def publisher(worker: int) -> None:
            i = worker
            while not stop:
                started = time.perf_counter()
                if mode == "asgi":
                    await over_asgi(i)
                else:
                    new = NewNotification(**_notification(i, False))
                    await service.publish("bench-inprocess", new)
                i += args.concurrency
                if measuring:
                    latencies.append(time.perf_counter() - started)

        tasks = [asyncio.create_task(publisher(w)) for w in range(args.concurrency)]
        await asyncio.sleep(args.warmup)
        measuring = True
        began, cpu = time.perf_counter(), time.process_time()
        await asyncio.sleep(args.seconds)
        measuring = False
        elapsed = time.perf_counter() - began
        used = (time.process_time() - cpu) / elapsed
        stop = True
        await asyncio.wait_for(asyncio.gather(*tasks), 120)
    _report(mode, latencies, len(latencies) / elapsed, len(latencies) / elapsed, 0, used, 0.0)
    return bool(latencies)


def _report(
    mode: str,
    latencies: list[float],
    notifications: float,
    requests: float,
    errors: int,
    server_cpu: float,
    client_cpu: float,
    database_cpu: float = 0.0,
) -> None:
    if not latencies:
        print(f"  {mode:<9} no request answered 2xx (errors {errors})")
        return
    latencies.sort()

    def pct(p: float) -> float:
        return 1000 * latencies[min(len(latencies) - 1, int(p * len(latencies)))]

    print(
        f"  {mode:<9} {notifications:9.0f} notifications/s {requests:8.0f} requests/s  "
        f"p50 {pct(0.50):7.1f} ms  p99 {pct(0.99):7.1f} ms  errors {errors}  "
        f"cpu server {server_cpu:4.0%} client {client_cpu:4.0%}  "
        f"server cpu/notification {1e6 * server_cpu / notifications:6.0f} µs "
        f"(≈ {notifications / server_cpu if server_cpu else 0:6.0f}/s at one core)"
        + (
            f"  database cpu/notification {1e6 * database_cpu / notifications:6.0f} µs"
            if DATABASE
            else ""
        )
    )
    CPU_PER_NOTIFICATION[mode] = server_cpu / notifications
    RATE[mode] = notifications


CPU_PER_NOTIFICATION: dict[str, float] = {}
"""Server CPU seconds per committed notification, by mode, of the store being run."""
RATE: dict[str, float] = {}
"""Committed notifications per second, by mode, of the store being run."""


def _compare_mixed() -> None:
    """The issue's ratio: 5 tenants with mixed audiences against one tenant, by the server's
    CPU and by publishes/s."""
    single, mixed = CPU_PER_NOTIFICATION.get("single"), CPU_PER_NOTIFICATION.get("mixed")
    if single and mixed:
        slower = RATE["single"] / RATE["mixed"]
        print(
            f"  mixed / single: {mixed / single:.2f}x the server CPU per notification; "
            f"single / mixed: {slower:.2f}x the publishes/s"
        )


async def run_store(store: str, modes: list[str], args: argparse.Namespace) -> bool:
    with contextlib.ExitStack() as stack:
        env = dict(item.split("=", 1) for item in args.server_env)
        if store == "postgres":
            env["TIDINGS_DATABASE_URL"] = stack.enter_context(postgres())
        if len(modes) == 1 and modes[0] in DIRECT:
            url = env.get("TIDINGS_DATABASE_URL")
            if url is None:
                tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="tidings-bench-"))
                url = f"sqlite+aiosqlite:///{tmp}/tidings.db"
            return await run_in_process(url, env, args, modes[0])
        server = SpawnedServer(streams=0, extra_env=env, profile=args.profile_server).start(
            timeout=60
        )
        stack.callback(server.stop)
        keys: dict[str, list[str]] = {}
        for n, mode in enumerate(modes):
            if mode in DIRECT:
                continue  # its own run (see main): not beside a server
            tenants = [f"bench-{n}-{t}" for t in range(5 if mode == "mixed" else 1)]
            keys[mode] = [await create_tenant(server.url, server.operator_key, t) for t in tenants]
        tallies = {mode: Tally() for mode in keys}
        for _ in range(args.rounds):
            for mode, tally in tallies.items():
                await run_mode(server, keys[mode], mode, args, tally)
        ok = True
        for mode, tally in tallies.items():
            ok = tally.report(mode) and ok
        return ok


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    modes = [m for m in args.modes.split(",") if m]
    for mode in modes:
        if mode not in MODES:
            raise SystemExit(f"unknown mode {mode!r} (one of {MODES})")
    ok = True
    for store in args.store.split(","):
        if store not in ("sqlite", "postgres"):
            raise SystemExit(f"unknown store {store!r}")
        http = [m for m in modes if m not in DIRECT]
        direct = [m for m in modes if m in DIRECT]
        alone = len(modes) == 1 and bool(direct) and args.store == store
        if http or alone:
            load = os.getloadavg()
            print(
                f"{store}: {args.concurrency} concurrent publishers, {args.seconds:g} s per mode, "
                f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
            )
        if http:
            CPU_PER_NOTIFICATION.clear()
            RATE.clear()
            ok = uvloop.run(run_store(store, http, args)) and ok
            _compare_mixed()
        if alone:
            ok = uvloop.run(run_store(store, direct, args)) and ok
            continue
        for mode in direct:
            # A process of its own: a second app lifespan in one process (after another
            # store's) hung at shutdown in the channel planner under uvloop.
            child = [sys.executable, "-m", "benchmarks.publish", "--store", store, "--modes", mode]
            child += ["--seconds", str(args.seconds), "--warmup", str(args.warmup)]
            child += ["--concurrency", str(args.concurrency)]
            child += [f"--server-env={item}" for item in args.server_env]
            sys.stdout.flush()
            ok = subprocess.run(child, check=False, timeout=600).returncode == 0 and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
