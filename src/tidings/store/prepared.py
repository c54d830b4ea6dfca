"""A SELECT compiled once and run on a synchronous SQLite connection's DBAPI cursor.

SQLAlchemy's per-execution machinery (the compiled-cache lookup, the execution context, the
parameter processing, the result object and its rows) costs several times what SQLite spends
running a small indexed statement: a reconnect storm's view reads (``store/snapshot.py``,
``Store.run_read``) spent about three quarters of their time there (docs/performance.md,
session 11). A :class:`Prepared` compiles its statement once per dialect, renders each ``IN``
list (an expanding parameter) once per length (at most :data:`SHAPES` kept), and
:meth:`Prepared.rows` runs it on the DBAPI cursor.

Invariant: **the rows are SQLAlchemy's** — the same values, converted by the columns' own
types (their ``result_processor``, as SQLAlchemy applies them), each bound value converted by
its parameter's type (``bind_processor``), the columns by key as attributes
(``tests/core/test_prepared.py`` holds this against ``conn.execute(statement, params)`` for any
lengths of the ``IN`` lists). A DBAPI error is raised as SQLAlchemy raises it
(:meth:`sqlalchemy.exc.DBAPIError.instance`). Bypassed, as for the group commit's statements
(``insert_group_sync``): SQLAlchemy's cursor events and echo. SQLite (``qmark`` parameters) only;
a statement with a parameter rendered into its SQL at execution (``literal_execute``) is refused
when it is compiled.
"""

from __future__ import annotations

import sqlite3
from collections import namedtuple
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import Connection, Dialect, Select, exc

Processor = Callable[[Any], Any] | None
SHAPES = 64  # the SQL kept per statement and dialect, one per combination of IN-list lengths


class _Compiled:
    """The statement compiled for one dialect: its parameters in order (each with its type's
    conversion), the constants among them, its columns' conversions, and its SQL per shape of
    its ``IN`` lists."""

    __slots__ = ("binds", "columns", "compiled", "constants", "expanding", "names", "shapes")

    def __init__(self, statement: Select[Any], dialect: Dialect) -> None:
        if dialect.paramstyle != "qmark":
            raise ValueError(f"a prepared statement runs on SQLite only, not {dialect.name}")
        self.compiled = statement.compile(dialect=dialect)
        binds = self.compiled.binds
        self.names: tuple[str, ...] = tuple(self.compiled.positiontup or ())
        if any(binds[name].literal_execute for name in self.names):
            raise ValueError("a parameter rendered at execution cannot be prepared")
        self.expanding = tuple(dict.fromkeys(n for n in self.names if binds[n].expanding))
        self.constants = {
            name: value for name, value in self.compiled.params.items() if not binds[name].required
        }
        self.binds: dict[str, Processor] = {
            name: binds[name].type.dialect_impl(dialect).bind_processor(dialect)
            for name in self.names
        }
        self.columns: tuple[Processor, ...] = tuple(
            column.type.dialect_impl(dialect).result_processor(dialect, None)
            for column in statement.selected_columns
        )
        self.shapes: dict[tuple[int, ...], str] = {}

    def render(self, params: Mapping[str, Any]) -> tuple[str, tuple[Any, ...]]:
        """The SQL for these parameters' ``IN`` list lengths, and its positional values."""
        given = {**self.constants, **params}
        shape = tuple(len(given[name]) for name in self.expanding)
        sql = self.shapes.get(shape)
        if sql is None:
            if len(self.shapes) >= SHAPES:  # bounded: lengths are few (roles, muted types)
                self.shapes.clear()
            sql = self.shapes[shape] = self.compiled.construct_expanded_state(given).statement
        values: list[Any] = []
        binds = self.binds
        for name in self.names:
            process = binds[name]
            value = given[name]
            if name in self.expanding:
                values.extend(value if process is None else [process(v) for v in value])
            else:
                values.append(value if process is None else process(value))
        return sql, tuple(values)


class Prepared:
    """One SELECT, compiled once per dialect; :meth:`rows` runs it on the DBAPI cursor."""

    __slots__ = ("_compiled", "_row", "statement")

    def __init__(self, statement: Select[Any]) -> None:
        self.statement = statement
        keys = list(statement.selected_columns.keys())
        self._row: Any = namedtuple("PreparedRow", keys, rename=True)  # type: ignore[misc]
        self._compiled: dict[str, _Compiled] = {}

    def rows(self, conn: Connection, params: Mapping[str, Any]) -> list[Any]:
        """Every row of the statement for ``params``, in ``conn``'s transaction (SQLite)."""
        compiled = self._for(conn.dialect)
        sql, values = compiled.render(params)
        raw = conn.connection.driver_connection
        assert isinstance(raw, sqlite3.Connection)
        try:
            fetched = raw.execute(sql, values).fetchall()
        except sqlite3.Error as error:
            raise exc.DBAPIError.instance(sql, values, error, sqlite3.Error) from error
        make = self._row._make
        columns = compiled.columns
        if not any(columns):
            return [make(row) for row in fetched]
        return [
            make([v if p is None else p(v) for p, v in zip(columns, row, strict=True)])
            for row in fetched
        ]

    def _for(self, dialect: Dialect) -> _Compiled:
        found = self._compiled.get(dialect.name)
        if found is None:
            found = self._compiled[dialect.name] = _Compiled(self.statement, dialect)
        return found
