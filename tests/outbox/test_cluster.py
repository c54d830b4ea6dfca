"""Two tidings processes consume one outbox; one is killed (SIGKILL) while it holds a claim.

10,000 rows of four tenants, inserted by the host in 20 transactions while the consumers run:
each is published exactly once (no duplicate, none missing) and each tenant's notifications
are in insert order (seq order = the ``n`` the host numbered them with).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import asyncpg
import orjson
import pytest

from tests.cluster.processes import Cluster, cluster_of
from tests.outbox.conftest import drained, fetch, host_database, insert, waiting
from tests.services import PostgresServer

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]

ROWS = 10_000
TENANTS = ["t0", "t1", "t2", "t3"]
PER_TRANSACTION = 250

_WAITING = """
SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE NOT l.granted AND l.relation = 'tidings_outbox'::regclass
  AND a.application_name LIKE 'tidings-outbox pid=%'
"""
_KEYS = "SELECT idempotency_key AS k FROM notifications WHERE idempotency_key LIKE 'outbox:%'"
_PRESENT = "SELECT id FROM tidings_outbox WHERE id = ANY($1::bigint[])"


async def kill_in_crash_window(url: str, store: str, cluster: Cluster) -> tuple[int, int]:
    """SIGKILL an instance between publishing a batch and deleting its rows.

    The test holds ``LOCK TABLE tidings_outbox IN SHARE MODE`` (claims still work, deletes
    wait), so the first instance found waiting for that lock has published its batch and not
    deleted it; it is killed there. Returns its pid and how many outbox rows were then
    published (their idempotency keys in the store) and not deleted."""
    conn = await asyncpg.connect(url, timeout=10)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert time.monotonic() < deadline, "no instance reached its delete"
            async with conn.transaction():
                await conn.execute("LOCK TABLE tidings_outbox IN SHARE MODE", timeout=30)
                # All caught up (the host's inserts wait on the lock): let go, try again.
                if await conn.fetchval("SELECT count(*) FROM tidings_outbox"):
                    while not (waiting_ := await conn.fetch(_WAITING, timeout=10)):
                        assert time.monotonic() < deadline, "no instance reached its delete"
                        await asyncio.sleep(0.01)
                    pid = int(waiting_[0]["application_name"].split("=", 1)[1].split()[0])
                    next(i for i in cluster.instances if i.pid == pid).kill()
                    ids = [int(r["k"].split(":")[1]) for r in await fetch(store, _KEYS)]
                    return pid, len(await conn.fetch(_PRESENT, ids, timeout=10))
            await asyncio.sleep(0.02)
    finally:
        await conn.close()


@pytest.mark.timeout(180)
async def test_two_instances_kill_9_mid_batch_10000_rows_exactly_once_in_order(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    host, url = host_database(postgres_server)
    env = {
        "TIDINGS_OUTBOX_URL": url,
        "TIDINGS_OUTBOX_POLL_INTERVAL": "1",
        "TIDINGS_OUTBOX_BATCH": "500",
    }
    try:
        with cluster_of(
            postgres_server, tmp_path, broker="memory://", instances=2, nginx=False, env=env
        ) as cluster:
            for tenant in TENANTS:
                cluster.tenant(tenant)
            counters = dict.fromkeys(TENANTS, 0)
            rows: list[tuple[str, str]] = []
            for i in range(ROWS):
                tenant = TENANTS[(i * 7 + i // 3) % len(TENANTS)]  # interleaved, uneven runs
                payload = {
                    "type": "system",
                    "title": f"{tenant}-{counters[tenant]}",
                    "data": {"n": counters[tenant]},
                }
                counters[tenant] += 1
                rows.append((tenant, orjson.dumps(payload).decode()))
            started = time.monotonic()
            inserted = asyncio.Event()  # a quarter of the rows are in

            async def host_inserts() -> None:
                for at in range(0, ROWS, PER_TRANSACTION):
                    await insert(url, rows[at : at + PER_TRANSACTION])
                    await asyncio.sleep(0.05)  # a host writing over a few seconds
                    if at >= ROWS // 10:
                        inserted.set()

            inserter = asyncio.create_task(host_inserts())
            await asyncio.wait_for(inserted.wait(), timeout=60)
            store = postgres_server.url(cluster.database, driver="postgresql")
            victim_pid, hit = await kill_in_crash_window(url, store, cluster)
            killed_after = time.monotonic() - started
            left_at_kill = await waiting(url)
            await asyncio.wait_for(inserter, timeout=60)
            await drained(url, timeout=120)
            elapsed = time.monotonic() - started
            survivor = next(i for i in cluster.instances if i.pid != victim_pid)
            assert survivor.proc is not None and survivor.proc.poll() is None

            found = await fetch(
                store,
                "SELECT tenant_id, seq, data::text AS data FROM notifications "
                "ORDER BY tenant_id, seq",
            )
            by_tenant: dict[str, list[int]] = {t: [] for t in TENANTS}
            for r in found:
                by_tenant[r["tenant_id"]].append(orjson.loads(r["data"])["n"])
            for tenant in TENANTS:
                assert by_tenant[tenant] == list(range(counters[tenant])), tenant
            assert len(found) == ROWS
            assert hit > 0  # the victim had published rows it never deleted
            dead = await fetch(url, "SELECT count(*) AS n FROM tidings_outbox_dead")
            assert dead[0]["n"] == 0
            print(
                f"outbox: {ROWS} rows through 2 instances in {elapsed:.1f}s; one killed after "
                f"{killed_after:.1f}s between publish and delete ({hit} rows published, not "
                f"deleted; {left_at_kill} waiting)"
            )
    finally:
        postgres_server.drop_database(host)
