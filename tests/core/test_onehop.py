"""SQLite statements in one hand-off to aiosqlite's thread (``tidings/store/onehop.py``).

The store's SQLite connections must answer exactly as SQLAlchemy's own aiosqlite adapter does
(rows, ``rowcount``, ``lastrowid``, errors), with one hand-off per statement instead of four.
A differential property test runs the same generated statements through a :class:`Store`
(one hop) and through a plain aiosqlite engine, and compares every answer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from tidings.store import Store
from tidings.store.onehop import OneHopConnection

pytestmark = pytest.mark.anyio
SCHEMA = "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT UNIQUE, n INTEGER NOT NULL)"


class Counting:
    """Stands in for an aiosqlite connection's queue on the put side: counts hand-offs."""

    def __init__(self, queue: Any) -> None:
        self.queue = queue
        self.puts = 0

    def put_nowait(self, item: Any) -> None:
        self.puts += 1
        self.queue.put_nowait(item)


async def counted(conn: AsyncConnection) -> Counting:
    raw = await conn.get_raw_connection()
    adapter: Any = raw.dbapi_connection
    assert type(adapter) is OneHopConnection
    driver: Any = raw.driver_connection
    counter = Counting(driver._tx)
    driver._tx = counter
    return counter


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    made = Store(f"sqlite+aiosqlite:///{tmp_path}/one.db", pool_size=1)
    async with made.write() as conn:
        await conn.exec_driver_sql(SCHEMA)
    try:
        yield made
    finally:
        await made.close()


async def test_each_statement_is_one_hand_off_and_answers_as_before(store: Store) -> None:
    async with store.write() as conn:
        hops = await counted(conn)
        inserted = await conn.execute(
            text("INSERT INTO items (name, n) VALUES (:name, :n)"), {"name": "a", "n": 1}
        )
        assert hops.puts == 1
        assert inserted.lastrowid == 1
        await conn.execute(
            text("INSERT INTO items (name, n) VALUES (:name, :n)"),
            [{"name": "b", "n": 2}, {"name": "c", "n": 3}],
        )
        assert hops.puts == 2  # an executemany too
        updated = await conn.execute(text("UPDATE items SET n = n + 10 WHERE n > 1"))
        assert (hops.puts, updated.rowcount) == (3, 2)
        rows = (await conn.execute(text("SELECT name, n FROM items ORDER BY id"))).all()
        assert hops.puts == 4
        assert [tuple(r) for r in rows] == [("a", 1), ("b", 12), ("c", 13)]
        returned = (
            await conn.execute(text("UPDATE items SET n = 0 WHERE name = 'a' RETURNING id, n"))
        ).one()
        assert (hops.puts, tuple(returned)) == (5, (1, 0))
        empty = await conn.execute(text("SELECT name FROM items WHERE n < 0"))
        assert (empty.all(), hops.puts) == ([], 6)


async def test_a_transaction_is_its_statements_and_one_end(store: Store) -> None:
    """``BEGIN`` runs with the first statement (no hand-off of its own); a transaction ends in
    one hand-off; one in which nothing ran, and the pool's reset of a connection with no
    transaction open, in none. What was written is committed, what was rolled back is not."""
    async with store.engine.connect() as conn:
        hops = await counted(conn)
        async with conn.begin():
            assert hops.puts == 0
            await conn.execute(text("INSERT INTO items (name, n) VALUES ('a', 1)"))
            assert hops.puts == 1  # BEGIN and the insert
        assert hops.puts == 2  # COMMIT
        async with conn.begin():
            pass
        assert hops.puts == 2  # nothing ran: nothing to end
        async with conn.begin() as transaction:
            await conn.execute(text("INSERT INTO items (name, n) VALUES ('b', 2)"))
            await transaction.rollback()
        assert hops.puts == 4  # BEGIN and the insert, ROLLBACK
    assert hops.puts == 4  # returned to the pool: no transaction open, no reset hand-off
    async with store.read() as conn:
        rows = (await conn.execute(text("SELECT name FROM items"))).scalars().all()
    assert rows == ["a"]


async def test_a_deferred_begin_that_cannot_lock_raises_at_the_first_statement(
    store: Store, tmp_path: Path
) -> None:
    """``BEGIN IMMEDIATE`` against a write lock held elsewhere fails with the transaction's
    first statement, as SQLAlchemy raises it (the store answers it as unavailable; the busy
    timeout lowered for the test), and the connection is usable again once the lock is gone."""
    import sqlite3

    from tidings.errors import Unavailable

    async with store.engine.connect() as conn:  # the pool's one connection
        await conn.exec_driver_sql("PRAGMA busy_timeout=100")
    other = sqlite3.connect(tmp_path / "one.db", isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(Unavailable) as raised:
            async with store.write() as conn:
                await conn.execute(text("INSERT INTO items (name, n) VALUES ('z', 1)"))
        error = raised.value.__cause__
        assert isinstance(error, OperationalError) and "locked" in str(error), error
    finally:
        other.execute("ROLLBACK")
        other.close()
    async with store.write() as conn:
        await conn.execute(text("INSERT INTO items (name, n) VALUES ('z', 1)"))
    async with store.read() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM items"))).scalar_one() == 1


async def test_a_failing_statement_raises_as_before_and_the_connection_goes_on(
    store: Store,
) -> None:
    async def twice() -> None:
        async with store.write() as conn:
            await conn.execute(text("INSERT INTO items (name, n) VALUES ('x', 1)"))
            await conn.execute(text("INSERT INTO items (name, n) VALUES ('x', 2)"))

    async def nowhere() -> None:
        async with store.read() as conn:
            await conn.execute(text("SELECT nothing FROM nowhere"))

    with pytest.raises(IntegrityError):
        await twice()
    with pytest.raises(OperationalError):
        await nowhere()
    async with store.read() as conn:  # the same pooled connection (pool_size 1), rolled back
        assert (await conn.execute(text("SELECT count(*) FROM items"))).scalar_one() == 0


# Statements over the items table: inserts (some breaking the unique name), updates,
# deletes and reads, each answered by both engines.
names = st.sampled_from(["a", "b", "c", "d"])
ops = st.one_of(
    st.tuples(st.just("insert"), names, st.integers(-5, 5)),
    st.tuples(st.just("insert_many"), st.lists(st.tuples(names, st.integers(-5, 5)), max_size=3)),
    st.tuples(st.just("update"), st.integers(-5, 5), st.integers(-3, 3)),
    st.tuples(st.just("delete"), names),
    st.tuples(st.just("select"), st.integers(-5, 5)),
)


async def run(conn: AsyncConnection, op: tuple[Any, ...]) -> Any:
    """One statement in its own savepoint; what it answered (or the error's class)."""
    kind = op[0]
    try:
        async with conn.begin_nested():
            if kind == "insert":
                r = await conn.execute(
                    text("INSERT INTO items (name, n) VALUES (:name, :n)"),
                    {"name": op[1], "n": op[2]},
                )
                return ("lastrowid", r.lastrowid, r.rowcount)
            if kind == "insert_many":
                if not op[1]:
                    return ("nothing",)
                r = await conn.execute(
                    text("INSERT INTO items (name, n) VALUES (:name, :n)"),
                    [{"name": name, "n": n} for name, n in op[1]],
                )
                return ("many", r.rowcount)
            if kind == "update":
                r = await conn.execute(
                    text("UPDATE items SET n = n + :d WHERE n >= :at RETURNING name, n"),
                    {"d": op[2], "at": op[1]},
                )
                return ("updated", sorted(tuple(x) for x in r.all()))
            if kind == "delete":
                r = await conn.execute(
                    text("DELETE FROM items WHERE name = :name"), {"name": op[1]}
                )
                return ("deleted", r.rowcount)
            r = await conn.execute(
                text("SELECT id, name, n FROM items WHERE n >= :at ORDER BY id"), {"at": op[1]}
            )
            return ("rows", [tuple(x) for x in r.all()], r.keys())
    except IntegrityError as error:
        return ("error", type(error.orig).__name__)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(script=st.lists(ops, max_size=12))
async def test_one_hop_answers_exactly_as_sqlalchemys_aiosqlite_adapter(
    tmp_path: Path, script: list[tuple[Any, ...]]
) -> None:
    store = Store(f"sqlite+aiosqlite:///{tmp_path}/a.db", pool_size=1)
    plain = create_async_engine(f"sqlite+aiosqlite:///{tmp_path}/b.db")
    try:
        async with store.write() as mine, plain.begin() as theirs:
            await mine.exec_driver_sql("DROP TABLE IF EXISTS items")
            await theirs.exec_driver_sql("DROP TABLE IF EXISTS items")
            await mine.exec_driver_sql(SCHEMA)
            await theirs.exec_driver_sql(SCHEMA)
            for op in script:
                assert await run(mine, op) == await run(theirs, op), op
    finally:
        await store.close()
        await plain.dispose()
