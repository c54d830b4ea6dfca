"""The indexes a migrated database has are the declared ones, and the lookups use them.

``0009_lean_indexes`` made the idempotency key's unique index and the group index partial
(``WHERE ... IS NOT NULL``), indexed the creation time alone (not per tenant) and dropped the
audience index by user: a publish writes fewer index entries. What must hold, on SQLite and
PostgreSQL: the migrations build exactly the indexes ``tidings.store.tables`` declares
(compared with a database made from the tables themselves); a lookup by idempotency key (one
or many) or by group still reads its index rather than the table, and retention's question
(the rows created before a time) reads the index by time; a key stays unique while rows
without one are many; a database with rows at ``0008_templates`` upgrades (and downgrades)
with its rows.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import ClauseElement, Connection, exc, select, text
from sqlalchemy.sql.compiler import SQLCompiler

from tests.core.schema_support import migrate, run_on
from tests.services import PostgresServer
from tidings.store.migrate import Schema, alembic_config
from tidings.store.notifications import _BY_KEY, _BY_KEYS
from tidings.store.tables import audience_targets, metadata, notifications, tenants

TABLES = ("notifications", "audience_targets")
CORE = Schema()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def urls(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Two empty databases on the same kind of server: one to migrate, one to create from the
    declared tables."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/migrated.db", f"sqlite+aiosqlite:///{tmp_path}/d.db"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    stem = f"ix_{tmp_path.name[-20:].replace('-', '_')}".lower()
    names = [f"{stem}_m", f"{stem}_d"]
    for name in names:
        server.sql(f"CREATE DATABASE {name}")
    try:
        yield server.url(names[0]), server.url(names[1])
    finally:
        for name in names:
            server.drop_database(name)


def _core_to(revision: str) -> Callable[[Connection], None]:
    def work(conn: Connection) -> None:
        command.upgrade(alembic_config(conn, CORE), revision)

    return work


def _core_down_to(revision: str) -> Callable[[Connection], None]:
    def work(conn: Connection) -> None:
        command.downgrade(alembic_config(conn, CORE), revision)

    return work


def _indexes(conn: Connection) -> set[str]:
    """Every index of :data:`TABLES` as the database itself prints it (whitespace folded)."""
    if conn.dialect.name == "sqlite":
        rows = conn.execute(
            text(
                "SELECT sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
                " AND tbl_name IN ('notifications', 'audience_targets')"
            )
        )
    else:
        rows = conn.execute(
            text(
                "SELECT indexdef FROM pg_indexes"
                " WHERE tablename IN ('notifications', 'audience_targets')"
            )
        )
    return {re.sub(r"\s+", " ", str(sql)) for (sql,) in rows}


def _plan(conn: Connection, statement: ClauseElement, params: dict[str, Any]) -> str:
    """The query plan the database chooses for ``statement`` with ``params``: on SQLite with
    them bound as the store binds them, on PostgreSQL with sequential scans discouraged, so a
    usable index is always taken."""
    if conn.dialect.name == "sqlite":
        compiled = statement.compile(conn)
        assert isinstance(compiled, SQLCompiler)
        state = compiled.construct_expanded_state(params)
        rows = conn.exec_driver_sql(
            f"EXPLAIN QUERY PLAN {state.statement}", tuple(state.positional_parameters)
        )
        return " / ".join(str(row[-1]) for row in rows)
    conn.exec_driver_sql("SET enable_seqscan = off")
    bound = statement.params(params).compile(conn, compile_kwargs={"literal_binds": True})
    return " / ".join(str(row[0]) for row in conn.exec_driver_sql(f"EXPLAIN {bound}"))


def test_a_migrated_database_has_the_declared_indexes(urls: tuple[str, str]) -> None:
    migrated, declared = urls
    migrate(migrated, CORE)
    run_on(
        declared,
        lambda conn: metadata.create_all(conn, tables=[tenants, notifications, audience_targets]),
    )
    made = run_on(migrated, _indexes)
    assert made == run_on(declared, _indexes)
    assert any("idempotency_key IS NOT NULL" in sql for sql in made)
    assert any("group_key IS NOT NULL" in sql for sql in made)
    assert not any("ix_audience_targets_lookup" in sql for sql in made)


def test_lookups_by_key_and_by_group_read_their_indexes(urls: tuple[str, str]) -> None:
    url = urls[0]
    migrate(url, CORE)
    n = notifications.c
    by_group = select(n.seq).where(n.tenant_id == "t", n.group_key.in_(["a", "b"]))
    cutoff = datetime(2026, 11, 28, tzinfo=UTC)
    retired = select(n.tenant_id, n.seq).where(n.created_at < cutoff)  # notifications.prune

    def plans(conn: Connection) -> list[str]:
        return [
            _plan(conn, _BY_KEY, {"tid": "t", "key": "k"}),
            _plan(conn, _BY_KEYS, {"tid": "t", "keys": ["k", "l"]}),
            _plan(conn, by_group, {}),
            _plan(conn, retired, {}),
        ]

    by_key, by_keys, grouped, old = run_on(url, plans)
    assert "uq_notifications_idempotency" in by_key
    assert "uq_notifications_idempotency" in by_keys
    assert "ix_notifications_group" in grouped
    assert "ix_notifications_created" in old


def _row(seq: int, key: str | None, group: str | None = None) -> dict[str, Any]:
    return {
        "tenant_id": "t",
        "seq": seq,
        "type": "booking_created",
        "title": f"Booking #{seq}",
        "body": "",
        "data": {},
        "targeted": seq % 2 == 0,
        "idempotency_key": key,
        "created_at": datetime(2026, 11, 28, 6, tzinfo=UTC),
        "group_key": group,
    }


def _tenant(conn: Connection) -> None:
    conn.execute(
        text(
            "INSERT INTO tenants (id, name, last_seq, settings, created_at)"
            " VALUES ('t', 'T', 4, '{}', CURRENT_TIMESTAMP)"
        )
    )


def _rows(conn: Connection) -> list[tuple[Any, ...]]:
    n = notifications.c
    found = conn.execute(select(n.seq, n.idempotency_key, n.group_key).order_by(n.seq))
    return [tuple(row) for row in found]


def test_a_key_stays_unique_and_rows_without_one_are_many(urls: tuple[str, str]) -> None:
    url = urls[0]
    migrate(url, CORE)

    def fill(conn: Connection) -> None:
        _tenant(conn)
        conn.execute(notifications.insert(), [_row(1, None), _row(2, None), _row(3, "k")])

    run_on(url, fill)
    with pytest.raises(exc.IntegrityError):
        run_on(url, lambda conn: conn.execute(notifications.insert(), [_row(4, "k")]))
    assert run_on(url, _rows) == [(1, None, None), (2, None, None), (3, "k", None)]


def test_a_database_with_rows_at_0008_upgrades_and_downgrades_with_them(
    urls: tuple[str, str],
) -> None:
    url = urls[0]
    run_on(url, _core_to("0008_templates"))

    def fill(conn: Connection) -> None:
        _tenant(conn)
        conn.execute(
            notifications.insert(),
            [_row(1, "a", "g"), _row(2, None), _row(3, "b"), _row(4, None, "g")],
        )
        conn.execute(
            audience_targets.insert(),
            [{"tenant_id": "t", "seq": 2, "kind": "u", "value": "bob"}],
        )

    run_on(url, fill)
    kept = [(1, "a", "g"), (2, None, None), (3, "b", None), (4, None, "g")]
    run_on(url, _core_to("0009_lean_indexes"))
    assert run_on(url, _rows) == kept
    with pytest.raises(exc.IntegrityError):
        run_on(url, lambda conn: conn.execute(notifications.insert(), [_row(5, "a")]))
    run_on(url, _core_down_to("0008_templates"))
    assert run_on(url, _rows) == kept
    assert any("ix_audience_targets_lookup" in sql for sql in run_on(url, _indexes))
    run_on(url, _core_to("0009_lean_indexes"))
    assert run_on(url, _rows) == kept
