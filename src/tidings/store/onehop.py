"""SQLite statements in ONE hand-off to aiosqlite's thread, not four.

aiosqlite runs each SQLite call on its connection's own thread; every call is a hand-off (a
queue put, a thread wake-up, the GIL passed over and back, ``call_soon_threadsafe`` into the
loop). SQLAlchemy's aiosqlite adapter makes four per statement: create the cursor, execute,
fetch the rows, close the cursor. A lone publish (``BEGIN IMMEDIATE``, the seq update, the
insert, ``COMMIT``, the pool's reset) thus cost ~14 hand-offs and ~2 ms of CPU, most of it in
context switches; a worker's idle look at the store four.

:func:`use_one_hop` (called for every SQLite engine, ``store/engine.py``) makes each new
pooled connection's adapter build :class:`OneHopCursor` s, whose driver cursor is an
:class:`_Statement`: ``execute``/``executemany`` run the statement, fetch all its rows and close
the sqlite3 cursor in ONE function on aiosqlite's thread; ``description``, ``rowcount`` and
``lastrowid`` are kept from there, and ``fetchall``/``close`` need no hand-off. Behaviour is
SQLAlchemy's: its adapter always fetched every row of a statement at once too (no server-side
cursors here: those keep aiosqlite's own cursor).

Relies on SQLAlchemy's ``AsyncAdapt_aiosqlite_connection``/``_cursor`` (``_cursor_cls``,
``_make_new_cursor``, ``_aenter_cursor``) and aiosqlite's ``Connection._execute``/``_conn``,
pinned by ``requirements/lock.txt`` and checked by ``tests/core/test_onehop.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import aiosqlite
from sqlalchemy import event
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
)
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util.concurrency import await_

_Outcome = tuple[Any, int, int | None, list[Any]]
# Attributes this module keeps on an aiosqlite connection: the BEGIN not yet run, and whether a
# transaction was open after the last hand-off (sqlite3 answers that on its own thread only).
_BEGIN = "_tidings_begin"
_OPEN = "_tidings_open"


def _is_begin(sql: str) -> bool:
    return sql[:6].upper() == "BEGIN " or sql.strip().upper() == "BEGIN"


def _run(conn: aiosqlite.Connection, sql: str, parameters: Any, begin: str | None) -> _Outcome:
    """On aiosqlite's thread: the deferred ``begin`` if any, then execute, fetch everything,
    close; what the cursor told."""
    raw = conn._conn
    cursor = raw.cursor()
    try:
        if begin is not None:
            cursor.execute(begin)
        if parameters is None:
            cursor.execute(sql)
        else:
            cursor.execute(sql, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else []
        return description, cursor.rowcount, cursor.lastrowid, rows
    finally:
        cursor.close()
        setattr(conn, _OPEN, raw.in_transaction)


def _run_many(
    conn: aiosqlite.Connection, sql: str, parameters: Sequence[Any], begin: str | None
) -> _Outcome:
    raw = conn._conn
    cursor = raw.cursor()
    try:
        if begin is not None:
            cursor.execute(begin)
        cursor.executemany(sql, parameters)
        return None, cursor.rowcount, cursor.lastrowid, []
    finally:
        cursor.close()
        setattr(conn, _OPEN, raw.in_transaction)


def _end(conn: aiosqlite.Connection, commit: bool) -> None:
    """On aiosqlite's thread: commit or roll back, and note that no transaction is open."""
    raw = conn._conn
    try:
        if commit:
            raw.commit()
        else:
            raw.rollback()
    finally:
        setattr(conn, _OPEN, raw.in_transaction)


class _Statement:
    """What SQLAlchemy's adapter takes for an aiosqlite cursor: one statement's outcome."""

    __slots__ = ("_conn", "_rows", "arraysize", "description", "lastrowid", "rowcount")

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn
        self._rows: list[Any] = []
        self.arraysize = 1
        self.description: Any = None
        self.rowcount = -1
        self.lastrowid: int | None = None

    async def execute(self, sql: str, parameters: Any = None) -> _Statement:
        conn = self._conn
        if _is_begin(sql) and not parameters and getattr(conn, _BEGIN, None) is None:
            setattr(conn, _BEGIN, sql)  # run with the transaction's first statement
            self.description, self.rowcount, self.lastrowid, self._rows = None, -1, None, []
            return self
        begin = getattr(conn, _BEGIN, None)
        setattr(conn, _BEGIN, None)
        outcome: _Outcome = await conn._execute(_run, conn, sql, parameters, begin)  # type: ignore[no-untyped-call]
        self.description, self.rowcount, self.lastrowid, self._rows = outcome
        return self

    async def executemany(self, sql: str, parameters: Sequence[Any]) -> _Statement:
        conn = self._conn
        begin = getattr(conn, _BEGIN, None)
        setattr(conn, _BEGIN, None)
        outcome: _Outcome = await conn._execute(_run_many, conn, sql, parameters, begin)  # type: ignore[no-untyped-call]
        self.description, self.rowcount, self.lastrowid, self._rows = outcome
        return self

    async def fetchall(self) -> list[Any]:
        rows, self._rows = self._rows, []
        return rows

    async def fetchone(self) -> Any:
        return self._rows.pop(0) if self._rows else None

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        count = self.arraysize if size is None else size
        rows, self._rows = self._rows[:count], self._rows[count:]
        return rows

    async def close(self) -> None:
        self._rows = []


class OneHopCursor(AsyncAdapt_aiosqlite_cursor):
    """SQLAlchemy's aiosqlite cursor adapter over a :class:`_Statement` (made without a
    hand-off: the sqlite3 cursor is made on the thread, per statement)."""

    __slots__ = ()

    def _make_new_cursor(self, connection: Any) -> Any:
        return _Statement(connection)

    def _aenter_cursor(self, cursor: Any) -> Any:
        return cursor


class OneHopConnection(AsyncAdapt_aiosqlite_connection):
    """SQLAlchemy's aiosqlite connection adapter whose (non-server-side) cursors are
    :class:`OneHopCursor` s, whose ``BEGIN`` runs with the transaction's first statement, and
    whose commit or rollback with no transaction open (nothing ran since the ``BEGIN``, or the
    pool's reset of a connection already committed) needs no hand-off: sqlite3 does nothing
    then either."""

    __slots__ = ()
    _cursor_cls = OneHopCursor

    def commit(self) -> None:
        self._end(True)

    def rollback(self) -> None:
        self._end(False)

    def _end(self, commit: bool) -> None:
        conn = self._connection
        if not conn._connection:  # closed: as SQLAlchemy's adapter, nothing to do
            return
        begun = getattr(conn, _BEGIN, None)
        setattr(conn, _BEGIN, None)
        if begun is not None or not getattr(conn, _OPEN, True):
            return  # no statement ran in it, or none is open: sqlite3 would do nothing
        try:
            await_(conn._execute(_end, conn, commit))
        except Exception as error:
            self._handle_exception(error)


def use_one_hop(engine: AsyncEngine) -> None:
    """Every connection ``engine`` opens from now on runs a statement in one hand-off."""

    @event.listens_for(engine.sync_engine, "connect", insert=True)
    def _one_hop(dbapi_connection: Any, _record: Any) -> None:
        if type(dbapi_connection) is AsyncAdapt_aiosqlite_connection:
            dbapi_connection.__class__ = OneHopConnection


__all__ = ["OneHopConnection", "OneHopCursor", "use_one_hop"]
