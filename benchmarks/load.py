"""Load generator: N SSE streams on one tidings server, notifications published at a rate.

    python -m benchmarks.load --spawn --streams 1000 --rate 20 --count 200
    python -m benchmarks.load --url http://127.0.0.1:8000 --operator-key KEY --server-pid PID ...

Phases: (1) with ``--spawn`` start ``tidings serve`` (see ``_server.py``); create a tenant and
an API key through the operator API and one stream token per user through ``POST /v1/tokens``;
(2) open the N streams from ``--procs`` client processes (``_clients.py``), at most
``--connect-concurrency`` connection attempts in flight per process; (3) publish ``--count``
notifications at ``--rate`` per second through ``POST /v1/notifications`` (httpx), each
carrying its publish wall-clock time in ``data.t``; (4) wait until every stream has every id
(or ``--drain-timeout``) and report.

Reported: connect time, server RSS delta / N (psutil on the server pid), delivery latency
p50/p90/p99/max, deliveries per second, and loss: missing and duplicated ids per stream.
The exit status is 1 when a stream failed to open, a publish failed, or an id was missing or
duplicated.
Deliveries per second = notifications received by all streams / (last receipt - first
publish); latency = receipt wall clock - ``data.t`` (one machine, one clock).

Diagnostics: ``--profile-server FILE`` runs the spawned server under ``_sampler.py`` (Python
stacks and GC pauses; the connect and publish phases apart), ``--perf FILE`` records the server
with ``perf`` while publishing (C and kernel frames), ``--server-env NAME=VALUE`` passes a
setting to the spawned server (e.g. ``TIDINGS_CHANNELS_WORKERS=false`` to compare).
See docs/performance.md for measured figures and how to read them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
import uuid
from array import array
from multiprocessing.connection import Connection
from typing import Any

import httpx
import psutil

from benchmarks._clients import ClientConfig, raise_nofile, run_process
from benchmarks._server import SpawnedServer, create_tenant, mint_tokens


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--streams", type=int, default=1000, help="open streams (N)")
    p.add_argument("--rate", type=float, default=10.0, help="notifications published per second")
    p.add_argument("--count", type=int, default=100, help="notifications to publish")
    p.add_argument("--users", type=int, default=0, help="distinct users (default: one per stream)")
    p.add_argument("--url", help="a running server (default: --spawn one)")
    p.add_argument("--spawn", action="store_true", help="start a `tidings serve` subprocess")
    p.add_argument("--operator-key", help="with --url: create the tenant through the operator API")
    p.add_argument("--api-key", help="with --url: use this tenant API key instead")
    p.add_argument("--server-pid", type=int, help="with --url: measure this process's memory")
    p.add_argument("--tenant", default="", help="tenant id (default: bench-<random>)")
    p.add_argument("--procs", type=int, default=0, help="client processes (default: 1, 2 at 2k+)")
    p.add_argument("--connect-concurrency", type=int, default=100, help="per client process")
    p.add_argument("--publishers", type=int, default=16, help="publish requests in flight")
    p.add_argument("--drain-timeout", type=float, default=120.0, help="s after the last publish")
    p.add_argument("--connect-deadline", type=float, default=900.0, help="s to open all streams")
    p.add_argument("--token-ttl", type=int, default=3600, help="stream token lifetime (s)")
    p.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra setting for the spawned server (repeatable), e.g. TIDINGS_KEEPALIVE=30",
    )
    p.add_argument("--profile-server", metavar="FILE", help="--spawn under _sampler.py into FILE")
    p.add_argument("--perf", metavar="FILE", help="`perf record` the server while publishing")
    p.add_argument("--json-out", metavar="FILE", help="also write the JSON summary here")
    p.add_argument("--quiet", action="store_true", help="no table, only the JSON")
    args = p.parse_args(argv)
    if args.url and args.spawn:
        p.error("--url and --spawn exclude each other")
    if args.url and not (args.operator_key or args.api_key):
        p.error("--url needs --operator-key or --api-key")
    if any("=" not in item for item in args.server_env):
        p.error("--server-env takes NAME=VALUE")
    if args.streams < 1 or args.count < 1 or args.rate <= 0:
        p.error("--streams, --count and --rate must be positive")
    args.spawn = not args.url
    args.users = args.users or args.streams
    args.procs = args.procs or (2 if args.streams >= 2000 else 1)
    args.tenant = args.tenant or f"bench-{uuid.uuid4().hex[:8]}"
    return args


def percentile(ordered: list[float], q: float) -> float:
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def machine() -> dict[str, Any]:
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "mem_total_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": sys.version.split()[0],
        "loadavg_1m": round(os.getloadavg()[0], 2),
    }


class Publisher:
    """Publishes ``count`` notifications at ``rate``/s; retries reuse the Idempotency-Key."""

    def __init__(self, url: str, api_key: str, concurrency: int) -> None:
        self.url = url
        self.api_key = api_key
        self.concurrency = concurrency
        self.ids: list[int] = []
        self.http_ms: list[float] = []
        self.failed = 0
        self.retried = 0
        self.started = 0.0
        self.finished = 0.0

    async def send(self, client: httpx.AsyncClient, run_id: str, i: int) -> int | None:
        """Publish notification ``i`` once; its id, or None when the server refused it.
        (``anchor.py`` overrides this to publish to Nchan.)"""
        body = {"type": "bench.tick", "title": f"tick {i}", "data": {"t": time.time(), "i": i}}
        r = await client.post(
            "/v1/notifications", json=body, headers={"Idempotency-Key": f"bench-{run_id}-{i}"}
        )
        return int(r.json()["id"]) if r.status_code in (200, 201) else None

    async def run(self, count: int, rate: float) -> None:
        run_id = uuid.uuid4().hex[:12]
        sem = asyncio.Semaphore(self.concurrency)
        limits = httpx.Limits(max_connections=self.concurrency)
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        async with httpx.AsyncClient(
            base_url=self.url, headers=headers, timeout=30, limits=limits
        ) as client:

            async def one(i: int) -> None:
                async with sem:
                    for attempt in range(4):
                        began = time.perf_counter()
                        try:
                            ident = await self.send(client, run_id, i)
                        except httpx.TransportError:
                            ident = None
                        if ident is not None:
                            self.http_ms.append((time.perf_counter() - began) * 1000.0)
                            self.ids.append(ident)
                            return
                        self.retried += attempt < 3
                        await asyncio.sleep(0.2 * (attempt + 1))
                    self.failed += 1

            self.started = time.time()
            t0 = time.monotonic()
            tasks = []
            for i in range(count):
                delay = t0 + i / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(one(i)))
            await asyncio.gather(*tasks)
            self.finished = time.time()


def _recv(conn: Connection, timeout: float, what: str) -> Any:
    if not conn.poll(timeout):
        raise SystemExit(f"a client process did not report {what} within {timeout:.0f}s")
    return conn.recv()


def run(args: argparse.Namespace) -> dict[str, Any]:
    raise_nofile()
    server: SpawnedServer | None = None
    procs: list[Any] = []  # multiprocessing processes of the spawn context
    try:
        if args.spawn:
            extra = dict(item.split("=", 1) for item in args.server_env)
            server = SpawnedServer(args.streams, args.profile_server, extra).start()
            url, operator_key, pid = server.url, server.operator_key, server.pid
        else:
            url, operator_key, pid = args.url.rstrip("/"), args.operator_key, args.server_pid
        host_port = url.split("://", 1)[1].split("/", 1)[0]
        host, _, port = host_port.rpartition(":")

        began = time.perf_counter()
        api_key = args.api_key or asyncio.run(create_tenant(url, operator_key, args.tenant))
        users = [f"user-{i}" for i in range(args.users)]
        tokens = asyncio.run(mint_tokens(url, api_key, users, ttl=args.token_ttl))
        setup_s = time.perf_counter() - began

        server_proc = psutil.Process(pid) if pid else None
        time.sleep(0.5)
        rss_before = server_proc.memory_info().rss if server_proc else 0
        cpu_connect = _cpu(server_proc)

        # -- open the streams ------------------------------------------------------------------
        ctx = multiprocessing.get_context("spawn")
        pipes: list[Connection] = []
        per = [tokens[i % len(tokens)] for i in range(args.streams)]
        shares = [per[k :: args.procs] for k in range(args.procs)]
        for share in shares:
            mine, theirs = ctx.Pipe()
            cfg = ClientConfig(
                host=host,
                port=int(port),
                tokens=share,
                concurrency=args.connect_concurrency,
                connect_deadline=args.connect_deadline,
            )
            proc = ctx.Process(target=run_process, args=(theirs, cfg), daemon=True)
            proc.start()
            procs.append(proc)
            pipes.append(mine)
        connected = [_recv(c, args.connect_deadline + 60, "its streams")[1] for c in pipes]
        # From the first connection attempt to the last stream open, in the slowest process
        # (without the client processes' own start-up).
        connect_s = max(c["seconds"] for c in connected)
        time.sleep(1.0)
        rss_connected = server_proc.memory_info().rss if server_proc else 0
        cpu_before = _cpu(server_proc)
        connect_cpu_s = sum(cpu_before) - sum(cpu_connect)

        # -- publish ---------------------------------------------------------------------------
        if args.profile_server and pid:
            os.kill(pid, signal.SIGUSR1)  # _sampler.py: profile the fan-out only
        perf = _perf(args.perf, pid)
        publisher = Publisher(url, api_key, args.publishers)
        asyncio.run(publisher.run(args.count, args.rate))
        deadline = time.time() + args.drain_timeout
        for c in pipes:
            c.send(("expect", sorted(publisher.ids), deadline))
        done = [_recv(c, args.drain_timeout + 60, "its deliveries")[1] for c in pipes]
        cpu_after = _cpu(server_proc)
        if perf is not None:
            perf.send_signal(signal.SIGINT)
            perf.wait(60)
        if args.profile_server and pid:
            os.kill(pid, signal.SIGUSR2)  # _sampler.py: write the report now
        rss_after = server_proc.memory_info().rss if server_proc else 0
        for c in pipes:
            c.send(("end",))  # no reopen phase here (anchor.py has one)
        for proc in procs:
            proc.join(30)
        return summarize(
            args,
            setup_s=setup_s,
            connect_s=connect_s,
            connected=connected,
            done=done,
            publisher=publisher,
            rss=(rss_before, rss_connected, rss_after),
            cpu_s=(cpu_after[0] - cpu_before[0], cpu_after[1] - cpu_before[1]),
            connect_cpu_s=connect_cpu_s,
            url=url,
        )
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
                proc.join(10)
        if server is not None:
            server.stop()


def _perf(out: str | None, pid: int | None) -> subprocess.Popen[bytes] | None:
    """``perf record`` of the server during the publish phase (C, CPython and kernel frames:
    what a Python-level sampler cannot see)."""
    if not out or not pid:
        return None
    cmd = ["perf", "record", "-F", "499", "-g", "-p", str(pid), "-o", out]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    return proc


def _cpu(proc: psutil.Process | None) -> tuple[float, float]:
    """(user, system) CPU seconds of ``proc`` so far."""
    if proc is None:
        return 0.0, 0.0
    times = proc.cpu_times()
    return float(times.user), float(times.system)


def summarize(
    args: argparse.Namespace,
    *,
    setup_s: float,
    connect_s: float,
    connected: list[dict[str, Any]],
    done: list[dict[str, Any]],
    publisher: Publisher,
    rss: tuple[int, int, int],
    cpu_s: tuple[float, float],
    connect_cpu_s: float,
    url: str,
) -> dict[str, Any]:
    opened = sum(c["opened"] for c in connected)
    per_conn = sorted(x for c in connected for x in c["connect_s"])
    lat = array("d")
    for d in done:
        lat.extend(d["latencies_ms"])
    ordered = sorted(lat)
    received = sum(d["received"] for d in done)
    first = publisher.started
    last = max((d["last_receipt"] for d in done), default=0.0)
    window = max(1e-9, last - first) if last else 0.0
    http_ms = sorted(publisher.http_ms)
    rss_before, rss_connected, rss_after = rss

    def merged(key: str) -> dict[str, int]:
        out: dict[str, int] = {}
        for d in [*connected, *done]:
            for k, v in d.get(key, {}).items():
                out[k] = out.get(k, 0) + v
        return out

    def mib(n: int) -> float:
        return round(n / 2**20, 1)

    return {
        "config": {
            "streams": args.streams,
            "users": args.users,
            "rate": args.rate,
            "count": args.count,
            "client_procs": args.procs,
            "connect_concurrency": args.connect_concurrency,
            "spawned": args.spawn,
            "server_env": args.server_env,
            "url": url,
        },
        "machine": machine(),
        "setup_s": round(setup_s, 2),
        "connect": {
            "opened": opened,
            "failed": args.streams - opened,
            "all_open_s": round(connect_s, 2),
            "server_cpu_s": round(connect_cpu_s, 2),  # includes the 1 s settle before RSS
            "server_cpu_ms_per_stream": round(connect_cpu_s / max(1, opened) * 1000, 2),
            "per_second": round(opened / connect_s, 1) if connect_s else 0.0,
            "each_ms_p50": round(percentile(per_conn, 0.5) * 1000, 1),
            "each_ms_p99": round(percentile(per_conn, 0.99) * 1000, 1),
            "each_ms_max": round(percentile(per_conn, 1.0) * 1000, 1),
        },
        "memory": {
            "measured": bool(rss_before),
            "rss_before_mib": mib(rss_before),
            "rss_connected_mib": mib(rss_connected),
            "rss_after_publish_mib": mib(rss_after),
            "per_stream_kib": round((rss_connected - rss_before) / 1024 / max(1, opened), 1),
        },
        "publish": {
            "published": len(publisher.ids),
            "failed": publisher.failed,
            "retried": publisher.retried,
            "seconds": round(publisher.finished - publisher.started, 2),
            "achieved_rate": round(len(publisher.ids) / (publisher.finished - publisher.started), 1)
            if publisher.finished > publisher.started
            else 0.0,
            "http_ms_p50": round(percentile(http_ms, 0.5), 1),
            "http_ms_p99": round(percentile(http_ms, 0.99), 1),
        },
        "delivery": {
            "expected": len(publisher.ids) * opened,
            "received": received,
            "missing": sum(d["missing"] for d in done),
            "duplicates": sum(d["duplicates"] for d in done),
            "out_of_order": sum(d["out_of_order"] for d in done),
            # ids the publisher never got an answer for (committed, but the answer timed out)
            "unexpected": sum(d["unexpected"] for d in done),
            "streams_complete": sum(d["complete"] for d in done),
            "reconnects": sum(d["reconnects"] for d in done),
            "resets": sum(d["resets"] for d in done),
            "ended_by_server": merged("byes"),
            "latency_ms_p50": round(percentile(ordered, 0.5), 1),
            "latency_ms_p90": round(percentile(ordered, 0.9), 1),
            "latency_ms_p99": round(percentile(ordered, 0.99), 1),
            "latency_ms_max": round(percentile(ordered, 1.0), 1),
            "window_s": round(window, 2),
            "per_second": round(received / window, 1) if window else 0.0,
            "offered_per_second": round(args.rate * opened, 1),
            "drain_after_last_publish_s": round(max(0.0, last - publisher.finished), 2),
        },
        "server_cpu": {
            "user_s": round(cpu_s[0], 2),
            "system_s": round(cpu_s[1], 2),
            "busy_share": round(sum(cpu_s) / window, 2) if window else 0.0,
            "us_per_delivery": round(sum(cpu_s) / received * 1e6, 1) if received else 0.0,
        },
        "client_cpu_s_during_publish": round(
            sum(d["cpu_s"] for d in done) - sum(c["cpu_s"] for c in connected), 2
        ),
        "client_errors": merged("errors"),
    }


def table(s: dict[str, Any]) -> str:
    """The summary as two aligned columns, for people."""
    c, m, p, d, k = s["config"], s["memory"], s["publish"], s["delivery"], s["connect"]
    u = s["server_cpu"]
    lat = " / ".join(str(d[f"latency_ms_{q}"]) for q in ("p50", "p90", "p99", "max"))
    rss = " → ".join(str(m[f"rss_{w}_mib"]) for w in ("before", "connected", "after_publish"))
    cpu = f"{u['user_s']} + {u['system_s']} s over {d['window_s']} s ({u['busy_share']:.0%})"
    each = f"{k['each_ms_p50']} / {k['each_ms_p99']} / {k['each_ms_max']} ms"
    loss = f"{d['missing']} / {d['duplicates']} / {d['out_of_order']} / {d['unexpected']}"
    rows = [
        ("streams / users / client procs", f"{c['streams']} / {c['users']} / {c['client_procs']}"),
        ("published (rate asked → got)", f"{p['published']} ({c['rate']}→{p['achieved_rate']}/s)"),
        ("connect: all open in", f"{k['all_open_s']} s ({k['per_second']}/s) failed {k['failed']}"),
        ("connect: each p50 / p99 / max", each),
        ("connect: server CPU", f"{k['server_cpu_s']} s, {k['server_cpu_ms_per_stream']} ms each"),
        ("server RSS before → open → after", f"{rss} MiB"),
        ("memory per stream", f"{m['per_stream_kib']} KiB" if m["measured"] else "not measured"),
        ("publish HTTP p50 / p99", f"{p['http_ms_p50']} / {p['http_ms_p99']} ms"),
        ("latency p50 / p90 / p99 / max", f"{lat} ms"),
        ("deliveries/s (offered)", f"{d['per_second']} ({d['offered_per_second']})"),
        ("received / expected", f"{d['received']} / {d['expected']}"),
        ("missing / duplicates / out of order / unknown", loss),
        ("reconnects / resets", f"{d['reconnects']} / {d['resets']}"),
        ("ended by server", f"{d['ended_by_server'] or '-'}"),
        ("server CPU user + sys (share of a core)", cpu),
        ("server CPU per delivery", f"{u['us_per_delivery']} µs"),
        ("client CPU (all client procs)", f"{s['client_cpu_s_during_publish']} s"),
        ("load average (1 min) at start", f"{s['machine']['loadavg_1m']}"),
    ]  # fmt: skip
    width = max(len(r[0]) for r in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    summary = run(args)
    text = json.dumps(summary, indent=2)
    if args.json_out:
        with open(args.json_out, "w") as f:
            f.write(text + "\n")
    if args.quiet:
        print(text)
    else:
        print(table(summary))
        if not args.json_out:
            print(text)
    d = summary["delivery"]
    ok = (
        summary["connect"]["failed"] == 0
        and summary["publish"]["failed"] == 0
        and d["missing"] == 0
        and d["duplicates"] == 0
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
