"""Two tidings processes consume one outbox; one is killed (SIGKILL) while it holds a claim.

10,000 rows of four tenants, inserted by the host in 20 transactions while the consumers run:
each is published exactly once (no duplicate, none missing) and each tenant's notifications
are in insert order (seq order = the ``n`` the host numbered them with).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import orjson
import pytest

from tests.cluster.processes import Cluster, cluster_of
from tests.outbox.conftest import drained, fetch, host_database, insert, waiting
from tests.services import PostgresServer

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]

ROWS = 10_000
TENANTS = ["t0", "t1", "t2", "t3"]
PER_TRANSACTION = 500

_HOLDERS = """
SELECT application_name FROM pg_stat_activity
WHERE application_name LIKE 'tidings-outbox pid=%' AND state = 'idle in transaction'
  AND backend_xid IS NOT NULL
"""


async def claim_holder(url: str, cluster: Cluster, timeout: float = 30) -> int:
    """The OS pid of an instance in the middle of a batch: its claim transaction has locked
    rows and waits on the instance (which is publishing them)."""
    deadline = time.monotonic() + timeout
    pids = {inst.pid for inst in cluster.instances}
    while time.monotonic() < deadline:
        for row in await fetch(url, _HOLDERS):
            name = row["application_name"] or ""
            if name.startswith("tidings-outbox pid="):
                pid = int(name.split("=", 1)[1].split()[0])
                if pid in pids:
                    return pid
        await asyncio.sleep(0.005)
    raise AssertionError("no instance held an outbox claim")


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
                    if at >= ROWS // 4:
                        inserted.set()

            inserter = asyncio.create_task(host_inserts())
            await asyncio.wait_for(inserted.wait(), timeout=60)
            victim_pid = await claim_holder(url, cluster)
            victim = next(i for i in cluster.instances if i.pid == victim_pid)
            victim.kill()
            killed_after = time.monotonic() - started
            left_at_kill = await waiting(url)
            await asyncio.wait_for(inserter, timeout=60)
            await drained(url, timeout=120)
            elapsed = time.monotonic() - started
            survivor = next(i for i in cluster.instances if i is not victim)
            assert survivor.proc is not None and survivor.proc.poll() is None

            store = postgres_server.url(cluster.database, driver="postgresql")
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
            dead = await fetch(url, "SELECT count(*) AS n FROM tidings_outbox_dead")
            assert dead[0]["n"] == 0
            print(
                f"outbox: {ROWS} rows through 2 instances in {elapsed:.1f}s (one killed "
                f"holding a claim after {killed_after:.1f}s, {left_at_kill} rows waiting then)"
            )
    finally:
        postgres_server.drop_database(host)
