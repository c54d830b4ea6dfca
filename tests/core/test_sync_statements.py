"""The statements SQLite's synchronous group commit builds itself (``store/notifications.py``).

A group's rows as multi-row ``INSERT``s (``_Bulk.statements``), and the lock of a group's
tenants, whose ``IN`` list is rendered once per length (``store/prepared.py``).

The synchronous group commit writes a table's rows as ``INSERT … VALUES (…), (…)`` statements
of power-of-two sizes instead of one ``executemany``. The property: for any rows, in any number,
the statements store exactly what ``executemany`` of the single-row ``INSERT`` stores, in the
same order, each statement within SQLite's oldest parameter limit (999), with at most a handful
of shapes per table."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st
from sqlalchemy import Engine, Table, insert

from tests.core.schema_support import sqlite_engine
from tidings.store.notifications import _LOCK_TENANTS, _bulk, _raw_statement
from tidings.store.tables import audience_targets, notifications, tenants

T0 = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    for engine in sqlite_engine(tmp_path_factory.mktemp("bulk")):
        with engine.begin() as conn:
            rows: list[dict[str, Any]] = [
                {"id": t, "name": t, "settings": {}, "created_at": T0} for t in ("t1", "t2")
            ]
            conn.execute(insert(tenants), rows)
        yield engine


text = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)
notification_rows = st.lists(
    st.fixed_dictionaries(
        {
            "tenant_id": st.sampled_from(("t1", "t2")),
            "type": st.sampled_from(("booking_created", "payment_failed")),
            "title": text,
            "body": text,
            "data": st.dictionaries(st.text(max_size=5), st.integers() | text, max_size=3),
            "link": st.none() | st.just("/bookings/1"),
            "audience": st.none() | st.just({"users": ["ann"], "roles": []}),
            "targeted": st.booleans(),
            "idempotency_key": st.none() | text,
            "fingerprint": st.none() | st.binary(max_size=8),
            "created_at": st.integers(0, 10**6).map(lambda s: T0 + timedelta(seconds=s)),
            "actor_id": st.none() | text,
            "actor_name": st.none() | text,
            "group_key": st.none() | st.just("bookings"),
            "l10n": st.none() | st.just({"de": {"title": "Neu", "body": ""}}),
        }
    ),
    max_size=300,
)


def _numbered(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each row with a seq (and a unique key where it has one): the primary key holds."""
    return [
        {
            **row,
            "seq": i + 1,
            "idempotency_key": None
            if row["idempotency_key"] is None
            else f"{i}-{row['idempotency_key']}",
        }
        for i, row in enumerate(rows)
    ]


def _stored_both_ways(engine: Engine, table: Table, rows: list[dict[str, Any]]) -> None:
    bulk = _bulk(engine.dialect, table)
    params = bulk.parameters(rows)
    stored: list[list[tuple[Any, ...]]] = []
    for multi in (True, False):
        with engine.connect() as conn:
            raw = conn.connection.driver_connection
            assert isinstance(raw, sqlite3.Connection)
            cursor = raw.cursor()
            if multi:
                for sql, values in bulk.statements(params):
                    assert sql.count("?") == len(values) <= 999
                    cursor.execute(sql, values)
            else:
                cursor.executemany(bulk.sql, params)
            cursor.execute(f"SELECT * FROM {table.name} ORDER BY rowid")
            stored.append(cursor.fetchall())
            conn.rollback()
    assert stored[0] == stored[1]
    assert len(stored[0]) == len(rows)


@hyp_settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=notification_rows)
def test_notification_rows_are_stored_as_executemany_stores_them(
    engine: Engine, rows: list[dict[str, Any]]
) -> None:
    _stored_both_ways(engine, notifications, _numbered(rows))


@hyp_settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(count=st.integers(0, 700), kinds=st.sampled_from(("u", "r")))
def test_audience_rows_are_stored_as_executemany_stores_them(
    engine: Engine, count: int, kinds: str
) -> None:
    rows = [
        {"tenant_id": "t1", "seq": i // 3 + 1, "kind": kinds, "value": f"user-{i}"}
        for i in range(count)
    ]
    _stored_both_ways(engine, audience_targets, rows)


@pytest.mark.parametrize("table", [notifications, audience_targets], ids=lambda t: t.name)
def test_the_statements_cover_every_row_in_order_in_few_shapes(
    engine: Engine, table: Table
) -> None:
    bulk = _bulk(engine.dialect, table)
    width = len(bulk.columns)
    assert bulk.chunk * width <= 999 < 2 * bulk.chunk * width
    shapes: set[int] = set()
    for count in range(0, 3 * bulk.chunk + 2):
        rows = [tuple((r, c) for c in range(width)) for r in range(count)]
        sizes: list[int] = []
        flat: list[Any] = []
        for sql, values in bulk.statements(rows):
            size = len(values) // width
            assert sql.count("?") == len(values) and sql.count("), (") == size - 1
            sizes.append(size)
            flat.extend(values)
        assert flat == [value for row in rows for value in row]
        assert sizes == sorted(sizes, reverse=True)  # the largest first, then the remainder's bits
        assert all(size & (size - 1) == 0 for size in sizes)
        shapes.update(sizes)
    assert len(shapes) == bulk.chunk.bit_length()  # 1, 2, 4 … chunk: nothing else


def test_the_lock_of_several_tenants_runs_prepared(engine: Engine) -> None:
    """Its ``IN`` list is rendered once per length by ``store/prepared.py`` (whose own test
    holds the rows equal to SQLAlchemy's for any lengths)."""
    raw = _raw_statement(engine.dialect, _LOCK_TENANTS)
    assert raw is not None and raw.prepared is not None
    with engine.connect() as conn:
        for ids in (["t2", "t1", "nobody"], ["t1"], ["t2", "t1", "nobody"]):
            rows = raw.prepared.rows(conn, {"ids": ids})
            assert [(row.id, row.last_seq) for row in rows] == [
                (t, 0) for t in sorted(set(ids) - {"nobody"})
            ]
