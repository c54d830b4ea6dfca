"""kill -9 of a tidings process with webhook deliveries pending and one in flight.

The first instance (a real ``tidings serve`` process) is killed while a receiver holds its
answer to the first delivery of endpoint ``/held`` (more are queued behind it), and while
endpoint ``/down`` answers 503 (its deliveries wait for retries). A new process on the same
store then delivers everything: at least once with the same ``webhook-id`` — a duplicate only
for the attempt that was in flight — in queue order per endpoint; and it does not send to
``/held`` (nor what was published after the restart, queued behind) before the dead
instance's lease has expired, ``TIDINGS_WEBHOOK_TIMEOUT`` + 10 s after it was taken
(docs/webhooks.md, "Several instances"), nor long after.
"""

from __future__ import annotations

import asyncio
import signal
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from tests.cluster.processes import Instance
from tests.support import OPERATOR, SECRET, ServerThread, Tenant, create_tenant, make_settings
from tests.webhooks.conftest import Delivery, Holding, add_endpoint, publish
from tidings.channels.clock import as_utc
from tidings.webhooks.tables import webhook_endpoints

TIMEOUT = 2.0  # TIDINGS_WEBHOOK_TIMEOUT: the lease is this + 10 s
LEASE = TIMEOUT + 10.0
COUNT = 5


def _lease(database: str, endpoint: str) -> tuple[str | None, datetime | None]:
    """(owner, lease_until) of an endpoint, read from the store."""

    async def read() -> tuple[str | None, datetime | None]:
        engine = create_async_engine(database)
        try:
            async with engine.connect() as conn:
                row = (
                    await conn.execute(
                        select(webhook_endpoints.c.owner, webhook_endpoints.c.lease_until).where(
                            webhook_endpoints.c.id == endpoint
                        )
                    )
                ).one()
        finally:
            await engine.dispose()
        return row.owner, as_utc(row.lease_until) if row.lease_until else None

    return asyncio.run(asyncio.wait_for(read(), 10))


def _env(database: str) -> dict[str, str]:
    return {
        "TIDINGS_ENV": "test",
        "TIDINGS_DATABASE_URL": database,
        "TIDINGS_SECRET": SECRET,
        "TIDINGS_OPERATOR_KEY": OPERATOR,
        "TIDINGS_PUBLISH_RATE": "100000/second",
        "TIDINGS_LOG_LEVEL": "WARNING",
        "TIDINGS_CHANNELS_WORKERS": "false",
        "TIDINGS_WEBHOOK_ALLOW_NETWORKS": "127.0.0.0/8",
        "TIDINGS_WEBHOOK_TIMEOUT": str(TIMEOUT),
        "TIDINGS_WEBHOOK_POLL_INTERVAL": "0.1",
        # Slow enough that /down does not give up (8 attempts) before the kill.
        "TIDINGS_WEBHOOK_RETRY_BASE": "0.5",
        "TIDINGS_WEBHOOK_RETRY_MAX": "1",
    }


def _seqs(deliveries: list[Delivery]) -> list[int]:
    return [d.payload["data"]["notification"]["id"] for d in deliveries]


# PostgreSQL only: its endpoint lease (SKIP LOCKED) is the harder case, and the suite's time is
# bounded; the SIGTERM test below runs on SQLite.
@pytest.mark.parametrize("store", [pytest.param("postgres", marks=pytest.mark.postgres)])
def test_kill_9_mid_attempt_then_a_new_process_delivers_everything(
    tmp_path: Path, holding: Holding, store: str, request: pytest.FixtureRequest
) -> None:
    database = (
        request.getfixturevalue("postgres_url")
        if store == "postgres"
        else f"sqlite+aiosqlite:///{tmp_path}/tidings.db"
    )
    env = _env(database)
    first, second = Instance("first", env, tmp_path), Instance("second", env, tmp_path)
    try:
        first.start()
        tenant = create_tenant(first.url, "jump-joy")
        held = add_endpoint(tenant, holding, "/held", ["notification.created"])["id"]
        add_endpoint(tenant, holding, "/down", ["notification.created"])
        holding.down.add("/down")
        seqs = [publish(tenant, f"n{i}") for i in range(COUNT)]
        assert holding.arrived.wait(15), "the first delivery never came"
        first.kill()  # SIGKILL, while its attempt to /held waits for an answer
        killed_at = datetime.now(UTC)

        owner, until = _lease(database, held)
        assert owner is not None and until is not None, (
            "the attempt ended before the kill (timed out?): nothing was in flight"
        )
        held_at = next(at for path, _, at, _ in holding.came if path == "/held")
        # Taken just before that first attempt, for TIDINGS_WEBHOOK_TIMEOUT + 10 s.
        assert held_at.timestamp() + LEASE - 2 <= until.timestamp() <= held_at.timestamp() + LEASE
        assert until > killed_at

        holding.release.set()  # the held answer goes nowhere: the sender is dead
        holding.down.clear()  # and /down is back
        second.start()  # a new process, the same store
        ready = datetime.now(UTC)
        # Published while /held is still leased by the dead instance: queued behind.
        later = Tenant(tenant.id, tenant.key, second.url)
        seqs += [publish(later, f"after{i}") for i in range(2)]
        wait = (until - datetime.now(UTC)).total_seconds() + 10
        holding.wait(lambda: len(holding.ok("/down")) == len(seqs), timeout=wait)
        holding.wait(lambda: len(holding.ok("/held")) == len(seqs) + 1, timeout=wait)

        # /held: the in-flight event twice (the dead attempt, then the new process' first),
        # every other event once, all in queue order; the same webhook-id, the same body.
        got = holding.ok("/held")
        ids = [d.id for d in got]
        assert ids[0] == ids[1] and len(set(ids)) == len(seqs)
        assert got[0].body == got[1].body
        assert _seqs(got[1:]) == seqs
        # Not before the dead instance's lease expired, and soon after it did.
        again = [at for path, _, at, _ in holding.came if path == "/held"][1]
        assert until <= again, f"sent to /held {until - again} before the lease expired"
        late = (again - max(until, ready)).total_seconds()
        assert late < 3, f"the expired lease was taken over {late:.1f} s late"

        # /down: its deliveries waited (503s, retried, then the new process'), each event
        # answered 2xx exactly once, in order, with the event's id (the same as /held's).
        down = holding.ok("/down")
        assert _seqs(down) == seqs
        assert [d.id for d in down] == ids[1:]
        assert all(signed for _, _, _, signed in holding.came)  # every request verified
    finally:
        holding.release.set()
        second.stop()
        first.kill()


def test_sigterm_mid_attempt_releases_the_lease(tmp_path: Path, holding: Holding) -> None:
    """A graceful stop cuts the attempt short and releases the endpoint (docs: "releases it …
    at shutdown"): the next process sends again at once, not after the lease would expire."""
    database = f"sqlite+aiosqlite:///{tmp_path}/tidings.db"
    first = Instance("first", _env(database), tmp_path)
    second = ServerThread(
        make_settings(
            str(tmp_path),
            webhook_allow_networks="127.0.0.0/8",
            webhook_timeout=TIMEOUT,
            webhook_poll_interval=0.1,
        )
    )
    try:
        first.start()
        tenant = create_tenant(first.url, "jump-joy")
        held = add_endpoint(tenant, holding, "/held", ["notification.created"])["id"]
        seqs = [publish(tenant, f"n{i}") for i in range(3)]
        assert holding.arrived.wait(15), "the first delivery never came"
        first.signal(signal.SIGTERM)
        assert first.wait(TIMEOUT + 10) == 0  # no waiting out the held answer
        assert _lease(database, held) == (None, None)
        holding.release.set()
        second.start()  # in this process, on the same store
        holding.wait(lambda: len(holding.ok("/held")) == len(seqs) + 1, timeout=15)
        got = holding.ok("/held")
        assert got[0].id == got[1].id and len({d.id for d in got}) == len(seqs)
        assert _seqs(got[1:]) == seqs
        came = [at for path, _, at, _ in holding.came if path == "/held"]
        assert (came[1] - came[0]).total_seconds() < LEASE, "waited for the lease to expire"
    finally:
        holding.release.set()
        second.stop()
        first.kill()
