"""Fault runs of a three-instance tidings cluster; prints the figures of docs/reliability.md.

    .venv/bin/python -m benchmarks.faults                  # every scenario, a markdown table
    .venv/bin/python -m benchmarks.faults --json           # one JSON object per scenario
    .venv/bin/python -m benchmarks.faults --only redis-faults --notifications 5000

Each scenario starts its own PostgreSQL (store), Redis and nginx on loopback, three
``tidings serve`` processes behind nginx, opens ``--streams`` SSE streams through nginx and
publishes ``--notifications`` notifications from ``--publishers`` concurrent publishers
round-robin over the instances (retrying each with its Idempotency-Key until it is answered
2xx). Faults are injected at fixed points of the run. Afterwards every stream's ids and
titles are compared with the store (tests/cluster/harness.py, the same code the cluster tests
use). "recovery" is the worst delay, over all streams, between a publish's 2xx and its arrival,
for the notifications acknowledged from 1 s before a fault until 5 s after it was repaired.

Exit status 1 when anything was lost, doubled, reordered or unclear.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.cluster.harness import Cluster, Fault, Result, cluster_of, run_load
from tests.services import PostgresServer, RedisServer

SCENARIOS = ("redis", "postgres", "redis-faults", "postgres-faults", "sigterm")


def faults(name: str, cluster: Cluster, pg: PostgresServer, redis: RedisServer) -> list[Fault]:
    victim = cluster.instances[1]
    if name == "sigterm":
        last = cluster.instances[2]

        def terminate() -> None:
            last.signal(signal.SIGTERM)
            last.wait(30)
            last.start()

        return [Fault("instance SIGTERM + restart", 0.4, terminate)]
    if not name.endswith("-faults"):
        return []
    out = [Fault("instance SIGKILL + restart", 0.2, lambda: victim.restart(down_for=1.0))]
    if name.startswith("redis"):
        out.append(Fault("redis restart (SIGKILL, 1 s down)", 0.45, lambda: redis.restart(1.0)))
    out.append(Fault("postgresql restart (immediate, 2 s down)", 0.7, lambda: pg.restart(2.0)))
    return out


async def scenario(name: str, args: argparse.Namespace) -> Result:
    pg = PostgresServer().init().start()
    redis = RedisServer().start()
    work = Path(tempfile.mkdtemp(prefix=f"tidings-{name}-"))
    try:
        pg.create_template()
        broker = "postgres" if name.startswith("postgres") else "redis"
        with cluster_of(pg, work, broker=broker, redis=redis) as cluster:
            return await run_load(
                cluster,
                streams=args.streams,
                notifications=args.notifications,
                publishers=args.publishers,
                faults=faults(name, cluster, pg, redis),
                settle=120,
            )
    finally:
        redis.cleanup()
        pg.cleanup()


def table(rows: list[tuple[str, dict[str, Any]]]) -> str:
    out = [
        "| run | notifications | streams | fault | recovery (s) | lost | duplicated | "
        "out of order | publish retries |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, f in rows:
        retries = f["publish_attempts"] - f["notifications"]
        for fault in f["faults"] or [{"fault": "none", "recovery_s": "-"}]:
            out.append(
                f"| {name} | {f['notifications']} | {f['streams']} | {fault['fault']} | "
                f"{fault['recovery_s']} | {f['lost']} | {f['duplicated']} | "
                f"{f['out_of_order']} | {retries} |"
            )
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--only", choices=SCENARIOS, action="append")
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--notifications", type=int, default=2000)
    parser.add_argument("--publishers", type=int, default=10)
    parser.add_argument("--json", action="store_true", help="One JSON line per scenario.")
    args = parser.parse_args()
    rows: list[tuple[str, dict[str, Any]]] = []
    ok = True
    for name in args.only or SCENARIOS:
        started = time.monotonic()
        result = asyncio.run(scenario(name, args))
        figures = result.figures()
        ok = ok and not result.problems and result.lost == result.duplicated == 0
        rows.append((name, figures))
        if args.json:
            print(json.dumps({"scenario": name, **figures, "problems": result.problems[:5]}))
        else:
            print(f"{name}: done in {time.monotonic() - started:.0f}s", file=sys.stderr)
    if not args.json:
        print(table(rows))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
