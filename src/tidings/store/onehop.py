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

_Outcome = tuple[Any, int, int | None, list[Any]]


def _run(conn: aiosqlite.Connection, sql: str, parameters: Any) -> _Outcome:
    """On aiosqlite's thread: execute, fetch everything, close; what the cursor told."""
    cursor = conn._conn.cursor()
    try:
        if parameters is None:
            cursor.execute(sql)
        else:
            cursor.execute(sql, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else []
        return description, cursor.rowcount, cursor.lastrowid, rows
    finally:
        cursor.close()


def _run_many(conn: aiosqlite.Connection, sql: str, parameters: Sequence[Any]) -> _Outcome:
    cursor = conn._conn.cursor()
    try:
        cursor.executemany(sql, parameters)
        return None, cursor.rowcount, cursor.lastrowid, []
    finally:
        cursor.close()


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
        outcome: _Outcome = await self._conn._execute(_run, self._conn, sql, parameters)  # type: ignore[no-untyped-call]
        self.description, self.rowcount, self.lastrowid, self._rows = outcome
        return self

    async def executemany(self, sql: str, parameters: Sequence[Any]) -> _Statement:
        outcome: _Outcome = await self._conn._execute(_run_many, self._conn, sql, parameters)  # type: ignore[no-untyped-call]
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
    :class:`OneHopCursor` s."""

    __slots__ = ()
    _cursor_cls = OneHopCursor


def use_one_hop(engine: AsyncEngine) -> None:
    """Every connection ``engine`` opens from now on runs a statement in one hand-off."""

    @event.listens_for(engine.sync_engine, "connect", insert=True)
    def _one_hop(dbapi_connection: Any, _record: Any) -> None:
        if type(dbapi_connection) is AsyncAdapt_aiosqlite_connection:
            dbapi_connection.__class__ = OneHopConnection


__all__ = ["OneHopConnection", "OneHopCursor", "use_one_hop"]
