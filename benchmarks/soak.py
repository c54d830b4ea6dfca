"""A soak: tidings under steady, churning use for a long time; does it stay up and stay flat?

    .venv/bin/python -m benchmarks.soak                          # one process, 30 minutes
    .venv/bin/python -m benchmarks.soak --cluster --duration 900 # 3 instances, nginx, Redis
    .venv/bin/python -m benchmarks.soak --duration 60 --clients 12 --rate 5   # the smoke run

Single variant: one ``tidings serve`` (SQLite, memory broker; benchmarks/_server.py); at
``--fault-at`` of the run it is stopped with SIGTERM and started again on the same data.
Cluster variant: PostgreSQL, Redis (broker and shared limits), three instances behind nginx
(tests/cluster/processes.py); at ``--fault-at`` one instance is killed with SIGKILL and started
again ``--down-for`` seconds later.

Meanwhile ``--clients`` stream clients (benchmarks/_soak_clients.py) of ``--users`` users come
and go at random, their tokens expire every ``--token-ttl`` seconds and are renewed, they mark
read now and then, and one publisher publishes ``--rate`` notifications a second. Every
``--sample-every`` seconds the RSS and open fds of each server process are read from /proc.

Verdict (exit status 1 when any fails):
- no loss: every client saw every seq from its first ``ready`` to the highest it saw, and every
  client still there at the end reached the last published seq;
- no duplicate and no reordering;
- no growth: over the second half of the run, the least-squares slope of each server process's
  RSS stays under ``--max-rss-slope`` MiB/hour and of its open fds under ``--max-fd-slope``
  per hour (benchmarks/_growth.py; not judged when that half is shorter than
  ``--min-judged`` seconds);
- the single variant's SIGTERM ends the process with status 0.

A JSON summary goes to ``--out`` (default benchmarks/results/soak-<variant>-<time>.json);
``soak.py --report FILE.json`` prints one as the markdown of docs/reliability.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from benchmarks._growth import Limits, Sampler, judge
from benchmarks._soak_clients import Behaviour, Publisher, StreamClient, Totals

HERE = Path(__file__).resolve().parent


@dataclass
class Target:
    """What the soak runs against."""

    front: str  # base URL the clients use
    api_key: str
    pids: Callable[[], dict[str, int]]  # server process name -> pid
    fault: Callable[[], dict[str, Any]]  # blocking; returns what happened
    fault_name: str


@contextlib.contextmanager
def single(args: argparse.Namespace) -> Iterator[Target]:
    from benchmarks._server import SpawnedServer, create_tenant

    server = SpawnedServer(
        streams=args.clients * 2,
        extra_env={"TIDINGS_CHANNELS_WORKERS": "false", "TIDINGS_KEEPALIVE": "5"},
    ).start()
    try:
        key = asyncio.run(create_tenant(server.url, server.operator_key, "soak"))

        def restart() -> dict[str, Any]:
            began = time.monotonic()
            status = server.terminate()
            server.spawn()
            return {"sigterm_exit_status": status, "down_s": round(time.monotonic() - began, 2)}

        yield Target(server.url, key, lambda: {"tidings": server.pid}, restart, "SIGTERM+restart")
    finally:
        server.stop()


@contextlib.contextmanager
def cluster(args: argparse.Namespace) -> Iterator[Target]:
    from tests.cluster.processes import cluster_of
    from tests.services import PostgresServer, RedisServer

    pg = PostgresServer().init().start()
    redis = RedisServer().start()
    work = Path(tempfile.mkdtemp(prefix="tidings-soak-"))
    try:
        pg.create_template()
        env = {"TIDINGS_MAX_STREAMS_PER_USER": str(args.clients), "TIDINGS_KEEPALIVE": "5"}
        with cluster_of(pg, work, broker="redis", redis=redis, env=env) as c:
            key = c.tenant("soak").key
            victim = c.instances[1]

            def kill() -> dict[str, Any]:
                began = time.monotonic()
                victim.restart(down_for=args.down_for)
                return {"killed": victim.name, "down_s": round(time.monotonic() - began, 2)}

            def pids() -> dict[str, int]:
                return {i.name: i.pid for i in c.instances if i.proc and i.proc.poll() is None}

            yield Target(c.front, key, pids, kill, f"SIGKILL {victim.name} + restart")
    finally:
        redis.cleanup()
        pg.cleanup()
        shutil.rmtree(work, ignore_errors=True)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def run(args: argparse.Namespace, target: Target) -> dict[str, Any]:
    rng = random.Random(args.seed)
    totals = Totals()
    began = time.monotonic()
    began_wall = time.time()
    sampler = Sampler(began)
    url = urlsplit(target.front)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    behaviour = Behaviour(token_ttl=args.token_ttl, stay_mean=args.stay, away_mean=args.away)
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=32)
    auth = {"Authorization": f"Bearer {target.api_key}"}
    api = httpx.AsyncClient(base_url=target.front, headers=auth, timeout=15, limits=limits)
    stop_publishing, stop_clients = asyncio.Event(), asyncio.Event()
    publisher = Publisher(api, args.rate, totals)
    clients: list[StreamClient] = []
    tasks: set[asyncio.Task[None]] = set()
    fault: dict[str, Any] = {}

    def spawn_client() -> None:
        n = len(clients)
        user = f"u{rng.randrange(args.users)}"
        c = StreamClient(
            f"c{n}", user, host, port, api, totals, behaviour, random.Random(rng.getrandbits(64))
        )
        clients.append(c)
        task = asyncio.create_task(c.live(stop_clients))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        task.add_done_callback(lambda t: None if stop_clients.is_set() else spawn_client())

    async def inject() -> None:
        await asyncio.sleep(args.duration * args.fault_at)
        at = time.monotonic() - began
        fault.update(await asyncio.to_thread(target.fault), name=target.fault_name, at_s=round(at))
        print(f"[{at:7.1f}s] fault: {fault}", flush=True)

    async def watch() -> None:
        next_report = args.window
        while True:
            sampler.sample(target.pids())
            now = time.monotonic() - began
            if now >= next_report:
                next_report += args.window
                recent = [ms for t, ms in totals.latencies if t - began_wall >= now - args.window]
                procs = " ".join(
                    f"{s.name}:{s.samples[-1][1] / 2**20:.0f}MiB/{s.samples[-1][2]}fd"
                    for s in sampler.series.values()
                    if s.samples and s.samples[-1][0] >= now - args.sample_every * 2
                )
                print(
                    f"[{now:7.1f}s] connected={sum(c.connected for c in clients)} "
                    f"published={len(publisher.acked)} p99={percentile(recent, 0.99):.0f}ms "
                    f"expiries={totals.expiries} {procs}",
                    flush=True,
                )
            await asyncio.sleep(args.sample_every)

    for _ in range(args.clients):
        spawn_client()
    helpers = [asyncio.create_task(inject()), asyncio.create_task(watch())]
    publishing = asyncio.create_task(publisher.run(stop_publishing))
    await asyncio.sleep(args.duration)
    stop_publishing.set()
    await publishing
    final = max(publisher.acked, default=0)
    ran = time.monotonic() - began
    drain_deadline = time.monotonic() + args.drain
    while time.monotonic() < drain_deadline:
        # A client whose first `ready` came at or after the last publish has nothing to catch
        # up on (its max_seen stays 0): only one that started before it and has not seen it yet.
        behind = [
            c
            for c in clients
            if not c.quit and c.start is not None and max(c.max_seen, c.start) < final
        ]
        if not behind:
            break
        await asyncio.sleep(0.2)
    stop_clients.set()
    for task in [*helpers, *tasks]:
        task.cancel()
    await asyncio.gather(*helpers, *tasks, return_exceptions=True)
    await api.aclose()
    return summarize(args, sampler, totals, clients, publisher, final, ran, began_wall, fault)


def summarize(
    args: argparse.Namespace,
    sampler: Sampler,
    totals: Totals,
    clients: list[StreamClient],
    publisher: Publisher,
    final: int,
    ran: float,
    began_wall: float,
    fault: dict[str, Any],
) -> dict[str, Any]:
    lost = sum(c.missing(None if c.quit else final) for c in clients)
    dupes = sum(c.dupes for c in clients)
    disorder = sum(c.disorder for c in clients)
    acked = sorted(publisher.acked)
    gaps_in_acks = final - len(acked)
    windows: list[dict[str, Any]] = []
    for w in range(int(ran // args.window) + 1):
        lo, hi = w * args.window, (w + 1) * args.window
        ms = [v for t, v in totals.latencies if lo <= t - began_wall < hi]
        if ms:
            windows.append(
                {
                    "from_s": lo,
                    "deliveries": len(ms),
                    "p50_ms": round(percentile(ms, 0.5), 1),
                    "p99_ms": round(percentile(ms, 0.99), 1),
                    "max_ms": round(max(ms), 1),
                }
            )
    limits = Limits(args.max_rss_slope, args.max_fd_slope, args.min_judged)
    growth = judge(list(sampler.series.values()), ran / 2, ran, limits)
    problems = list(growth["problems"])  # type: ignore[call-overload]
    if lost:
        problems.append(f"{lost} notifications lost")
    if dupes or disorder:
        problems.append(f"{dupes} duplicated, {disorder} out of order")
    if gaps_in_acks:
        problems.append(f"{gaps_in_acks} seqs up to {final} were never acknowledged")
    if fault.get("sigterm_exit_status", 0) != 0:
        problems.append(f"SIGTERM ended the server with status {fault['sigterm_exit_status']}")
    if not fault:
        problems.append("the fault was not injected")
    return {
        "variant": "cluster" if args.cluster else "single",
        "duration_s": round(ran, 1),
        "published": len(acked),
        "publish_attempts": publisher.attempts,
        "clients_total": len(clients),
        "clients_never_connected": sum(1 for c in clients if c.start is None),
        "connects": totals.connects,
        "leaves": totals.leaves,
        "token_expiries": totals.expiries,
        "token_renewals": totals.renewals,
        "byes": totals.byes,
        "broken_connections": totals.breaks,
        "resets": totals.resets,
        "reads": totals.reads,
        "errors": totals.errors,
        "lost": lost,
        "duplicated": dupes,
        "out_of_order": disorder,
        "deliveries_timed": len(totals.latencies),
        "p99_ms": round(percentile([v for _, v in totals.latencies], 0.99), 1),
        "windows": windows,
        "fault": fault,
        "growth": growth,
        "samples": {  # per process: [seconds, RSS MiB, fds] every --sample-every seconds
            f"{s.name}/{s.pid}": [[round(t, 1), round(r / 2**20, 1), f] for t, r, f in s.samples]
            for s in sampler.series.values()
        },
        "problems": problems,
        "verdict": "fail" if problems else "pass",
    }


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--duration", type=float, default=1800, help="Seconds of load (default 1800).")
    p.add_argument("--cluster", action="store_true", help="3 instances, nginx, Redis, PostgreSQL.")
    p.add_argument("--clients", type=int, default=60, help="Stream clients alive at once.")
    p.add_argument("--users", type=int, default=15)
    p.add_argument("--rate", type=float, default=5.0, help="Notifications published a second.")
    p.add_argument("--token-ttl", type=int, default=40, help="Stream token lifetime (s).")
    p.add_argument("--stay", type=float, default=30.0, help="Mean seconds a client stays.")
    p.add_argument("--away", type=float, default=3.0, help="Mean seconds a client is away.")
    p.add_argument("--fault-at", type=float, default=0.2, help="Fraction of the run.")
    p.add_argument("--down-for", type=float, default=5.0, help="Cluster: seconds killed.")
    p.add_argument("--sample-every", type=float, default=5.0)
    p.add_argument("--window", type=float, default=60.0, help="Seconds per p99 window.")
    p.add_argument("--drain", type=float, default=60.0, help="Seconds to wait for stragglers.")
    p.add_argument("--max-rss-slope", type=float, default=Limits.max_rss_mib_per_hour)
    p.add_argument("--max-fd-slope", type=float, default=Limits.max_fds_per_hour)
    p.add_argument("--min-judged", type=float, default=Limits.min_window)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", type=Path, default=None, help="Where the JSON summary goes.")
    p.add_argument("--report", type=Path, default=None, help="Print a summary as markdown.")
    return p.parse_args()


def report(summary: dict[str, Any]) -> str:
    """The markdown of docs/reliability.md for one summary."""
    growth = summary["growth"]
    out = [
        f"`{summary['command']}`: **{summary['verdict']}** {summary['problems'] or ''}",
        "",
        f"- {summary['duration_s']:.0f} s, {summary['published']} notifications published "
        f"({summary['publish_attempts'] - summary['published']} retries), "
        f"{summary['deliveries_timed']} live deliveries timed",
        f"- {summary['clients_total']} clients, {summary['connects']} stream opens, "
        f"{summary['leaves']} leaves, {summary['token_expiries']} token expiries mid-stream, "
        f"{summary['reads']} mark-read calls, {summary['byes']} `bye`, "
        f"{summary['broken_connections']} connections broken or refused (restart, kill), "
        f"{summary['resets']} `reset`",
        f"- fault at {summary['fault'].get('at_s')} s: {summary['fault']}",
        f"- **lost {summary['lost']}, duplicated {summary['duplicated']}, "
        f"out of order {summary['out_of_order']}**; p99 over the run {summary['p99_ms']} ms",
        "",
        f"Growth over the judged window (last {growth['window_s']:.0f} s):",
        "",
        "| process | pid | RSS first → last (MiB) | RSS slope (MiB/h) | fds first → last "
        "| fd slope (/h) |",
        "|---|---|---|---|---|---|",
    ]
    for p in growth["processes"]:
        rss = (
            p["rss_mib_per_hour"]
            if p["rss_mib_per_hour"] is not None
            else "not judged (ended before the window)"
        )
        fds = p["fds_per_hour"] if p["fds_per_hour"] is not None else "-"
        out.append(
            f"| {p['name']} | {p['pid']} | {p['rss_mib_first']} → {p['rss_mib_last']} | {rss} "
            f"| {p['fds_first']} → {p['fds_last']} | {fds} |"
        )
    out += [
        "",
        "| minute from | deliveries | p50 (ms) | p99 (ms) | max (ms) |",
        "|---|---|---|---|---|",
    ]
    for w in summary["windows"]:
        out.append(
            f"| {w['from_s']:.0f} s | {w['deliveries']} | {w['p50_ms']} | {w['p99_ms']} "
            f"| {w['max_ms']} |"
        )
    return "\n".join(out)


def main() -> int:
    args = parse()
    if args.report is not None:
        print(report(json.loads(args.report.read_text())))
        return 0
    variant = "cluster" if args.cluster else "single"
    out = args.out or HERE / "results" / f"soak-{variant}-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    with (cluster if args.cluster else single)(args) as target:
        summary = asyncio.run(run(args, target))
    summary["command"] = " ".join(sys.argv)
    out.write_text(json.dumps(summary, indent=2))
    brief = {k: v for k, v in summary.items() if k not in ("windows", "samples")}
    print(json.dumps(brief, indent=2))
    for w in summary["windows"]:
        print(f"  window {w['from_s']:>6.0f}s  n={w['deliveries']:>6}  p99={w['p99_ms']} ms")
    print(f"verdict: {summary['verdict']} {summary['problems']}  ({out})")
    return 0 if summary["verdict"] == "pass" else 1


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # a stopped soak still cleans up
    raise SystemExit(main())
