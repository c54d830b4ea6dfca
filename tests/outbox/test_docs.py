"""docs/outbox.md runs: its SQL is what ``tidings outbox sql`` prints, that SQL works on a fresh
PostgreSQL database (twice), and its Python (SQLAlchemy) example, run as a script, queues a
notification that tidings then publishes."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

import asyncpg
import orjson
import pytest

from tests.outbox.conftest import drained, fetch, host_database
from tests.services import PostgresServer
from tests.support import make_settings, open_service
from tidings.domain.notifications import NewNotification
from tidings.outbox import OutboxConsumer, rows
from tidings.store import notifications as nq

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]

DOC = Path(__file__).resolve().parents[2] / "docs" / "outbox.md"


def block(language: str) -> str:
    found = re.findall(rf"^```{language}\n(.*?)^```", DOC.read_text(), re.S | re.M)
    assert found, f"no {language} block in docs/outbox.md"
    return str(found[0])


def cli_sql() -> str:
    done = subprocess.run(
        [sys.executable, "-m", "tidings", "outbox", "sql"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout


async def test_the_printed_sql_is_the_documented_one_and_works_on_a_fresh_database(
    postgres_server: PostgresServer,
) -> None:
    sql = cli_sql()
    assert sql == block("sql")
    name, url = host_database(postgres_server, ddl=False)
    try:
        conn = await asyncpg.connect(url, timeout=10)
        listener = await asyncpg.connect(url, timeout=10)
        try:
            await conn.execute(sql, timeout=30)
            await conn.execute(sql, timeout=30)  # idempotent
            woken: asyncio.Queue[str] = asyncio.Queue()
            await listener.add_listener("tidings_outbox", lambda *a: woken.put_nowait(a[2]))
            async with conn.transaction():
                await conn.execute(
                    "INSERT INTO tidings_outbox (tenant, payload) VALUES ($1, $2::jsonb), ($1, $2)",
                    "acme",
                    '{"type": "system", "title": "hi"}',
                )
                assert woken.empty()  # nothing before the commit
            assert await asyncio.wait_for(woken.get(), timeout=5) == "tidings_outbox"
            ids = [r["id"] for r in await conn.fetch("SELECT id FROM tidings_outbox ORDER BY id")]
            assert ids == [1, 2]
            columns = await conn.fetch(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_name = 'tidings_outbox_dead' ORDER BY ordinal_position"
            )
            assert [c["column_name"] for c in columns] == [
                "id",
                "tenant",
                "payload",
                "created_at",
                "failed_at",
                "error",
            ]
        finally:
            await listener.close()
            await conn.close()
    finally:
        postgres_server.drop_database(name)


async def test_the_python_example_queues_a_notification_tidings_publishes(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    name, url = host_database(postgres_server, ddl=False)
    try:
        conn = await asyncpg.connect(url, timeout=10)
        try:
            await conn.execute(cli_sql(), timeout=30)
        finally:
            await conn.close()
        done = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-c", block("python")],
            env={
                **os.environ,
                "HOST_DATABASE_URL": postgres_server.url(name, driver="postgresql+asyncpg"),
            },
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "booked 1"
        (row,) = await fetch(url, "SELECT tenant, payload::text AS payload FROM tidings_outbox")
        assert row["tenant"] == "jump-joy"
        NewNotification.model_validate_json(row["payload"])  # what POST /v1/notifications takes

        settings = make_settings(str(tmp_path), outbox_url=url)
        async with open_service(settings) as service:
            await service.create_tenant("jump-joy", "Jump & Joy")
            async with OutboxConsumer(service):
                await drained(url)
            async with service.store.read() as store:
                (published,) = await nq.fetch_after(store, "jump-joy", 0)
        assert published.title == "New booking: Rainbow Castle"
        assert published.data == {"booking_id": 1}
        assert published.audience is not None and published.audience.roles == ("staff",)
        assert orjson.loads(row["payload"])["type"] == published.type
    finally:
        postgres_server.drop_database(name)


async def test_the_documented_grants_are_enough_for_tidings(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    """tidings connected as a role with only the privileges the page lists: rows are
    published and deleted, a bad row is moved aside, and the operator's retry works."""
    grants = re.findall(r"^```sql\n(.*?)^```", DOC.read_text(), re.S | re.M)[1]
    assert grants.startswith("GRANT")
    name, url = host_database(postgres_server)
    try:
        postgres_server.sql(
            "DO $$ BEGIN CREATE ROLE tidings LOGIN; "
            "EXCEPTION WHEN duplicate_object THEN NULL; END $$"
        )
        postgres_server.sql(grants, database=name)
        as_tidings = url.replace("postgres@", "tidings@")
        await fetch(
            url,
            "INSERT INTO tidings_outbox (tenant, payload) VALUES "
            """('acme', '{"type": "system", "title": "granted"}'), ('acme', '{}')""",
        )
        settings = make_settings(str(tmp_path), outbox_url=as_tidings)
        async with open_service(settings) as service:
            await service.create_tenant("acme", "acme")
            async with OutboxConsumer(service) as consumer:
                await drained(url)
                (dead,) = await fetch(url, "SELECT id FROM tidings_outbox_dead")
                pool = await consumer.pool()
                async with pool.acquire() as conn:
                    assert await rows.retry_dead(conn, dead["id"])
                # The running consumer claims the retried row again and moves it aside again
                # (it is still bad): the operator's discard then removes it for good.
                await drained(url)
                assert await fetch(url, "SELECT id FROM tidings_outbox_dead") == [dead]
                async with pool.acquire() as conn:
                    assert await rows.discard_dead(conn, dead["id"])
                    assert await rows.discard_dead(conn, dead["id"]) is False
                assert await fetch(url, "SELECT id FROM tidings_outbox_dead") == []
            async with service.store.read() as store:
                assert [n.title for n in await nq.fetch_after(store, "acme", 0)] == ["granted"]
    finally:
        postgres_server.drop_database(name)
