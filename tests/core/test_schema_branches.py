"""Each package its own schema history (Alembic branches ``core``, ``channels``, ``demo``).

On SQLite and PostgreSQL: a fresh production database (no demo) gets no demo table; a database
made by the single chain released before the branches (``legacy_schema/``, head
``0004_secrets``) upgrades in place, its rows kept; a database the demo ran on still opens
without the demo.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, inspect, text

from tests.core.schema_support import migrate, run_on
from tests.services import PostgresServer, run_sync
from tidings.config import Settings
from tidings.domain.notifications import NewNotification
from tidings.extensions import bundled_schema, every_branch
from tidings.store import Store
from tidings.store.migrate import Schema
from tidings.wiring import open_service

LEGACY = Path(__file__).parent / "legacy_schema"
DEMO_TABLES = {"demo_users", "customers", "bookings", "booking_events", "payments"}
CHANNEL_TABLES = {"channel_users", "push_subscriptions", "scheduled_reminders", "digest_runs"}
CORE_TABLES = {"tenants", "notifications", "api_keys", "server_secrets", "signing_keys"}
LATER_CORE_TABLES = {"templates", "message_overrides"}  # 0008_templates (issue 10 item 5)
WEBHOOK_TABLES = {  # the webhooks' branch, new since the single chain
    "webhook_endpoints",
    "webhook_events",
    "webhook_deliveries",
    "webhook_log",
    "webhook_cursors",
}
PRODUCTION = bundled_schema(Settings(demo=False))
HEADS = {"0009_lean_indexes", "0003_channels", "w001_webhooks"}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database (no table at all), on SQLite or on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/tidings.db"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    name = f"branches_{tmp_path.name[-20:].replace('-', '_')}".lower()
    server.sql(f"CREATE DATABASE {name}")
    try:
        yield server.url(name)
    finally:
        server.drop_database(name)


def _tables(url: str) -> set[str]:
    return set(run_on(url, lambda conn: inspect(conn).get_table_names()))


def _versions(url: str) -> set[str]:
    select = text("SELECT version_num FROM alembic_version")
    return set(run_on(url, lambda conn: [str(v) for v in conn.execute(select).scalars()]))


def _legacy_head(conn: Connection) -> None:
    """Today's released history, run as it was: one chain up to the merge ``0004_secrets``."""
    cfg = Config()
    cfg.set_main_option("script_location", str(LEGACY))
    cfg.attributes["connection"] = conn
    command.upgrade(cfg, "head")


def test_a_fresh_production_database_gets_no_demo_tables(empty_url: str) -> None:
    migrate(empty_url, PRODUCTION)
    tables = _tables(empty_url)
    assert tables >= CORE_TABLES
    assert tables >= CHANNEL_TABLES
    assert not tables & DEMO_TABLES
    assert _versions(empty_url) == HEADS
    migrate(empty_url, PRODUCTION)  # again: nothing to do
    assert _versions(empty_url) == HEADS


def test_a_database_at_the_single_chain_head_upgrades_in_place(empty_url: str) -> None:
    run_on(empty_url, _legacy_head)
    assert _versions(empty_url) == {"0004_secrets"}
    run_on(
        empty_url,
        lambda conn: conn.execute(
            text(
                "INSERT INTO tenants (id, name, last_seq, settings, created_at) "
                "VALUES ('old', 'Old', 0, '{}', CURRENT_TIMESTAMP)"
            )
        ),
    )
    before = _tables(empty_url)
    assert before >= DEMO_TABLES  # the single chain made them everywhere

    migrate(empty_url, PRODUCTION)  # what `tidings serve` does at start
    # nothing dropped; created: the tables of core revisions after the chain (0008) and of
    # the branch added since (webhooks)
    assert _tables(empty_url) == before | {"alembic_version"} | LATER_CORE_TABLES | WEBHOOK_TABLES
    assert _versions(empty_url) == HEADS | {"0002_demo"}  # the demo's tables are recorded
    migrate(empty_url, every_branch())  # the demo later, on the same database: nothing to do
    assert _versions(empty_url) == HEADS | {"0002_demo"}

    async def publish() -> int:
        settings = Settings(env="test", database_url=empty_url, secret="s" * 40)
        async with open_service(settings, PRODUCTION, live=False, migrate=True) as service:
            stored, _ = await service.publish("old", NewNotification(type="system", title="hi"))
            return stored.seq

    assert run_sync(publish) == 1  # the tenant made before the upgrade publishes as before


def test_a_database_the_demo_ran_on_opens_without_the_demo(empty_url: str) -> None:
    migrate(empty_url, every_branch())
    assert _tables(empty_url) >= DEMO_TABLES
    assert _versions(empty_url) == HEADS | {"0002_demo"}
    migrate(empty_url, PRODUCTION)  # its demo row is still known: no error, nothing changed
    assert _versions(empty_url) == HEADS | {"0002_demo"}


def test_a_tenant_is_deleted_from_a_database_without_the_demo(empty_url: str) -> None:
    """The demo's tables are registered in this process (imported), not in this database."""
    import tidings.demo.tables  # noqa: F401 - registers the demo's tables on the metadata
    from tidings.store.erasure import delete_tenant

    migrate(empty_url, PRODUCTION)

    async def delete() -> dict[str, int]:
        settings = Settings(env="test", database_url=empty_url, secret="s" * 40)
        async with open_service(settings, PRODUCTION, live=False) as service:
            await service.create_tenant("gone", "Gone")
            await service.publish("gone", NewNotification(type="system", title="bye"))
            async with service.store.write() as conn:
                return await delete_tenant(conn, "gone")

    assert run_sync(delete) == {"notifications": 1, "tenants": 1}


def test_a_database_at_every_head_costs_a_look_at_its_versions(empty_url: str) -> None:
    """Every start but the first after an upgrade: no Alembic run, only a look at
    alembic_version (whether it exists, its rows: store/migrate.py); a database short of one
    head still goes through Alembic."""
    from sqlalchemy import event

    migrate(empty_url, PRODUCTION)

    def statements(schema: Schema) -> list[str]:
        seen: list[str] = []

        async def go() -> None:
            store = Store(empty_url)

            def record(*args: object) -> None:
                seen.append(str(args[2]))  # (conn, cursor, statement, ...)

            event.listen(store.engine.sync_engine, "before_cursor_execute", record)
            try:
                await asyncio.wait_for(store.migrate(schema), 60)
            finally:
                await store.close()

        run_sync(go)
        skip = ("PRAGMA", "BEGIN", "SELECT PG_ADVISORY")  # the store's own, not the migration's
        return [s for s in seen if not s.lstrip().upper().startswith(skip)]

    def a_look(seen: list[str]) -> bool:
        reads = all(s.lstrip().upper().startswith("SELECT") for s in seen)
        return reads and len(seen) <= 2 and "FROM alembic_version" in seen[-1]

    at_head = statements(PRODUCTION)
    assert a_look(at_head), at_head
    assert _versions(empty_url) == HEADS
    with_demo = statements(every_branch())  # the demo's head is missing: Alembic adds it
    assert any("demo" in s.lower() for s in with_demo), with_demo
    assert _tables(empty_url) >= DEMO_TABLES
    assert _versions(empty_url) == HEADS | {"0002_demo"}
    again = statements(every_branch())
    assert a_look(again), again


def test_a_revision_of_a_newer_release_is_refused_as_before(empty_url: str) -> None:
    """A database holding a revision these scripts do not know (a newer release migrated it)
    is not taken as up to date: Alembic runs and refuses it."""
    migrate(empty_url, PRODUCTION)
    run_on(
        empty_url,
        lambda conn: conn.execute(
            text("INSERT INTO alembic_version (version_num) VALUES ('z999_from_the_future')")
        ),
    )
    with pytest.raises(Exception, match="z999_from_the_future"):
        migrate(empty_url, PRODUCTION)
