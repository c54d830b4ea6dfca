"""The outbox consumer in-process: order, bad rows, exactly once, NOTIFY and polling.

The tidings store is SQLite here (the consumer only talks to it through the service); the
outbox is the host's own PostgreSQL database (tests/outbox/conftest.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.outbox.conftest import drained, fetch, insert, note
from tests.support import make_settings, open_service
from tidings.domain.notifications import NewNotification, Notification
from tidings.outbox import OutboxConsumer
from tidings.outbox.rows import Row
from tidings.service import Tidings
from tidings.store import notifications as nq

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]


@asynccontextmanager
async def consuming(
    tmp_path: Path, outbox_url: str, *tenants: str, **overrides: Any
) -> AsyncIterator[tuple[Tidings, OutboxConsumer]]:
    settings = make_settings(str(tmp_path), outbox_url=outbox_url, **overrides)
    async with open_service(settings) as service:
        for tenant in tenants:
            await service.create_tenant(tenant, tenant)
        async with OutboxConsumer(service) as consumer:
            yield service, consumer


async def stored(service: Tidings, tenant: str) -> list[Notification]:
    async with service.store.read() as conn:
        return await nq.fetch_after(conn, tenant, 0, limit=10_000)


def published_hook(service: Tidings) -> asyncio.Queue[tuple[float, Notification]]:
    """Every notification the service publishes, with the monotonic time it went out."""
    seen: asyncio.Queue[tuple[float, Notification]] = asyncio.Queue()

    async def hook(items: Sequence[Notification]) -> None:
        for item in items:
            seen.put_nowait((time.monotonic(), item))

    service.after_publish.append(hook)
    return seen


async def test_rows_go_out_in_order_and_bad_rows_are_moved_aside(
    tmp_path: Path, outbox_url: str
) -> None:
    rows = [
        note("acme", "n0", data={"n": 0}),
        ("acme", '{"title": "no type"}'),  # invalid: type is required
        note("ghost", "nobody"),  # unknown tenant
        note("acme", "n1", data={"n": 1}),
        note("acme", "x" * 500),  # over TIDINGS_MAX_TITLE_CHARS
        ("acme", "[1, 2]"),  # JSON, but not an object
        note("beta", "b0"),
        note("acme", "n2", data={"n": 2}, audience={"users": ["u1"]}),
    ]
    ids = await insert(outbox_url, rows)
    async with consuming(tmp_path, outbox_url, "acme", "beta") as (service, consumer):
        await drained(outbox_url)
        acme = await stored(service, "acme")
        assert [n.title for n in acme] == ["n0", "n1", "n2"]
        assert [n.seq for n in acme] == [1, 2, 3]
        assert acme[2].audience is not None and acme[2].audience.users == ("u1",)
        assert [n.title for n in await stored(service, "beta")] == ["b0"]
        dead = await fetch(
            outbox_url, "SELECT id, tenant, error FROM tidings_outbox_dead ORDER BY id"
        )
        assert [r["id"] for r in dead] == [ids[1], ids[2], ids[4], ids[5]]
        errors = {r["id"]: r["error"] for r in dead}
        assert errors[ids[1]].startswith("validation_failed: type")
        assert errors[ids[2]].startswith("tenant_not_found")
        assert "title" in errors[ids[4]]
        assert errors[ids[5]].startswith("validation_failed")
        metrics = service.metrics.render().decode()
        assert "tidings_outbox_published_total 4.0" in metrics
        assert "tidings_outbox_dead_total 4.0" in metrics
        assert consumer.lag == 0.0


async def test_a_row_published_before_a_crash_is_not_published_again(
    tmp_path: Path, outbox_url: str
) -> None:
    """The crash window: published, then the process died before deleting the row. The
    next claim publishes it with the same idempotency key: the store answers with the
    notification it has, and the row is deleted."""
    (first,) = await insert(outbox_url, [note("acme", "once")])
    (row,) = await fetch(
        outbox_url, "SELECT id, tenant, payload::text AS payload, created_at FROM tidings_outbox"
    )
    key = Row(row["id"], row["tenant"], row["payload"], row["created_at"]).idempotency_key
    assert key.startswith(f"outbox:{first}:")
    settings = make_settings(str(tmp_path), outbox_url=outbox_url)
    async with open_service(settings) as service:
        await service.create_tenant("acme", "acme")
        new = NewNotification.model_validate_json(row["payload"])
        await service.publish_many("acme", [new], keys=[key])  # the "crashed" attempt
        await insert(outbox_url, [note("acme", "after")])
        async with OutboxConsumer(service):
            await drained(outbox_url)
        assert [n.title for n in await stored(service, "acme")] == ["once", "after"]
        metrics = service.metrics.render().decode()
        assert "tidings_outbox_published_total 2.0" in metrics


async def test_notify_wakes_the_consumer_at_once(tmp_path: Path, outbox_url: str) -> None:
    """With a 60 s poll interval, only the trigger's NOTIFY can explain a fast publish."""
    async with consuming(tmp_path, outbox_url, "acme", outbox_poll_interval=60) as (
        service,
        consumer,
    ):
        seen = published_hook(service)
        await asyncio.wait_for(consumer.listening.wait(), timeout=10)
        latencies = []
        for i in range(5):
            started = time.monotonic()
            await insert(outbox_url, [note("acme", f"w{i}")])
            at, item = await asyncio.wait_for(seen.get(), timeout=5)
            assert item.title == f"w{i}"
            latencies.append(at - started)
        print(f"NOTIFY wake-up latency (s): {[round(x, 4) for x in latencies]}")
        assert max(latencies) < 2.0


async def test_polling_fallback_without_the_trigger(tmp_path: Path, outbox_url: str) -> None:
    await fetch(outbox_url, "DROP TRIGGER tidings_outbox_notify ON tidings_outbox")
    async with consuming(tmp_path, outbox_url, "acme", outbox_poll_interval=0.3) as (
        service,
        consumer,
    ):
        seen = published_hook(service)
        await asyncio.wait_for(consumer.listening.wait(), timeout=10)
        await insert(outbox_url, [note("acme", "polled")])
        _, item = await asyncio.wait_for(seen.get(), timeout=5)
        assert item.title == "polled"


async def test_without_notify_and_long_poll_nothing_moves(tmp_path: Path, outbox_url: str) -> None:
    """The counterpart of the two above: no trigger and a 60 s poll leave the row waiting, so
    the fast paths really are NOTIFY and the poll interval."""
    await fetch(outbox_url, "DROP TRIGGER tidings_outbox_notify ON tidings_outbox")
    async with consuming(tmp_path, outbox_url, "acme", outbox_poll_interval=60) as (
        service,
        consumer,
    ):
        seen = published_hook(service)
        await asyncio.wait_for(consumer.listening.wait(), timeout=10)
        await asyncio.wait_for(consumer.idle.wait(), timeout=10)  # a round found nothing
        await insert(outbox_url, [note("acme", "stuck")])
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(seen.get(), timeout=1.5)
        consumer.wake()  # what a NOTIFY would have done
        _, item = await asyncio.wait_for(seen.get(), timeout=5)
        assert item.title == "stuck"


async def test_the_outbox_database_down_at_start_is_retried(
    tmp_path: Path, outbox_url: str
) -> None:
    """A wrong URL first: the consumer logs and retries; the service is not hurt."""
    settings = make_settings(str(tmp_path), outbox_url=outbox_url.rsplit("/", 1)[0] + "/no_such_db")
    async with open_service(settings) as service:
        await service.create_tenant("acme", "acme")
        async with OutboxConsumer(service) as consumer:
            await asyncio.sleep(0.3)
            assert not consumer.listening.is_set()
            stored_one, _ = await service.publish(
                "acme", NewNotification.model_validate(orjson.loads(note("acme", "direct")[1]))
            )
            assert stored_one.seq == 1


async def test_store_failures_mid_stream_keep_order_and_exactly_once(
    tmp_path: Path, outbox_url: str, postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The tidings store (PostgreSQL here) loses its connections again and again while the
    consumer works: a tenant whose publish failed stops for the round and its later rows wait
    behind it, so every row still goes out once, in order."""
    store_db = postgres_url.rsplit("/", 1)[1]
    admin_url = outbox_url.rsplit("/", 1)[0] + "/postgres"
    rows, counters = [], {"a": 0, "b": 0}
    for i in range(3000):
        tenant = "ab"[i % 3 == 0]
        n = counters[tenant]
        rows.append(note(tenant, f"{tenant}{n}", data={"n": n}, audience={"users": ["u"]}))
        counters[tenant] += 1
    settings = make_settings(
        str(tmp_path),
        database_url=postgres_url,
        outbox_url=outbox_url,
        max_request_targets=10,  # a tenant's rows go in several requests (chunks of 10)
    )
    async with open_service(settings) as service:
        for tenant in counters:
            await service.create_tenant(tenant, tenant)
        seen = published_hook(service)
        async with OutboxConsumer(service, settings, batch=100):
            await insert(outbox_url, rows)
            await asyncio.wait_for(seen.get(), timeout=10)  # it is under way
            for _ in range(15):  # cut the store's connections while it publishes
                await fetch(
                    admin_url,
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = $1 AND pid <> pg_backend_pid()",
                    store_db,
                )
                await asyncio.sleep(0.03)
            await drained(outbox_url, timeout=60)
        for tenant, count in counters.items():
            got = [n.data["n"] for n in await stored(service, tenant)]
            assert got == list(range(count)), tenant
    assert await fetch(outbox_url, "SELECT id FROM tidings_outbox_dead") == []
    assert any("its rows wait" in r.getMessage() for r in caplog.records)
