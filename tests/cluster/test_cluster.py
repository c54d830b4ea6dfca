"""Three instances behind nginx, as separate processes on one PostgreSQL store.

200 streams (through nginx) and 1,000 notifications from 10 concurrent publishers round-robin
over the three instances (directly), with the Redis broker and with the PostgreSQL broker:
every stream receives every notification visible to it exactly once, in seq order, and the
checker compares each stream's ids and titles with the store. Then the same under faults (an
instance SIGKILLed and restarted, Redis restarted, PostgreSQL restarted) with 2,000 (the faults
need a run that long to fall inside it), and SIGTERM of an instance under load. Each run
prints its figures as one JSON line (``-s`` shows them); ``benchmarks/faults.py`` runs the same
scenarios (all with 2,000) and writes them for docs/reliability.md.
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from tests.cluster.harness import Cluster, Fault, cluster_of, run_load
from tests.services import PostgresServer, RedisServer

pytestmark = [pytest.mark.anyio, pytest.mark.postgres, pytest.mark.nginx, pytest.mark.long]

BROKERS = [pytest.param("redis", marks=pytest.mark.redis), "postgres"]


def faults_for(
    broker: str, cluster: Cluster, pg: PostgresServer, redis: RedisServer
) -> list[Fault]:
    victim = cluster.instances[1]
    faults = [Fault("instance SIGKILL + restart", 0.2, lambda: victim.restart(down_for=1.0))]
    if broker == "redis":
        faults.append(Fault("redis restart", 0.45, lambda: redis.restart(down_for=1.0)))
    faults.append(Fault("postgresql restart", 0.7, lambda: pg.restart(down_for=2.0)))
    return faults


@pytest.mark.parametrize("broker", BROKERS)
@pytest.mark.timeout(180)
async def test_three_instances_deliver_everything_once_in_order(
    broker: str, pg_live: PostgresServer, redis_live: RedisServer, workdir: Path
) -> None:
    with cluster_of(pg_live, workdir, broker=broker, redis=redis_live) as cluster:
        result = await run_load(cluster, streams=200, notifications=1000, publishers=10)
    print(json.dumps({"run": f"{broker} broker, no faults", **result.figures()}))
    result.assert_perfect()
    assert result.resets == 0 and result.wrong_content == 0


@pytest.mark.parametrize("broker", BROKERS)
@pytest.mark.timeout(240)
async def test_nothing_lost_or_doubled_through_faults(
    broker: str, pg_live: PostgresServer, redis_live: RedisServer, workdir: Path
) -> None:
    with cluster_of(pg_live, workdir, broker=broker, redis=redis_live) as cluster:
        faults = faults_for(broker, cluster, pg_live, redis_live)
        result = await run_load(
            cluster, streams=200, notifications=2000, publishers=10, faults=faults
        )
    print(json.dumps({"run": f"{broker} broker, faults", **result.figures()}))
    result.assert_perfect()
    # The PostgreSQL outage was seen by publishers as a clear 503 (problem+json, Retry-After),
    # and their retries with the same Idempotency-Key made no second notification.
    assert result.log.statuses.get("503", 0) > 0, result.log.statuses
    assert all(f.restored > f.started for f in result.faults)


@pytest.mark.timeout(180)
async def test_sigterm_under_load_loses_nothing_and_streams_resume(
    pg_live: PostgresServer, redis_live: RedisServer, workdir: Path
) -> None:
    with cluster_of(
        pg_live, workdir, broker="redis", redis=redis_live, env={"TIDINGS_LOG_LEVEL": "INFO"}
    ) as cluster:
        victim = cluster.instances[2]
        exits: list[tuple[int, float]] = []

        def terminate() -> None:
            started = time.monotonic()
            victim.signal(signal.SIGTERM)
            code = victim.wait(30)
            exits.append((code, time.monotonic() - started))
            victim.start()

        result = await run_load(
            cluster,
            streams=200,
            notifications=800,
            publishers=10,
            faults=[Fault("instance SIGTERM", 0.4, terminate)],
        )
        log = victim.tail(20_000)
    print(json.dumps({"run": "redis broker, SIGTERM", **result.figures(), "exit": exits}))
    result.assert_perfect()  # every 2xx publish is in the store and reached every stream
    (code, took), *_ = exits
    assert code == 0, log[-3000:]  # a graceful stop is not a failure (src/tidings/server.py)
    assert took < 20, f"graceful exit took {took:.1f}s"
    assert "exit signal" in log and "closing" in log  # the streams were told first
    assert "reason=shutdown" in log  # ... each got `bye` and closed
    assert "Finished server process" in log  # ... and the shutdown ran to its end
    assert result.byes > 0
