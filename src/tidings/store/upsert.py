"""The one upsert helper: the dialect's ``insert``, whose statements have
``on_conflict_do_update`` / ``on_conflict_do_nothing`` on PostgreSQL and SQLite alike."""

from __future__ import annotations

from typing import Any, Protocol

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect


class _Bound(Protocol):
    """What has a dialect: a connection or an engine, synchronous or async."""

    @property
    def dialect(self) -> Dialect: ...


def upsert(conn: _Bound) -> Any:
    """The ``insert`` construct of ``conn``'s dialect (PostgreSQL, else SQLite); ``conn`` a
    connection or an engine, synchronous or async."""
    return postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
