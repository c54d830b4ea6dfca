"""The one upsert helper: the dialect's ``insert``, whose statements have
``on_conflict_do_update`` / ``on_conflict_do_nothing`` on PostgreSQL and SQLite alike."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection


def upsert(conn: AsyncConnection) -> Any:
    """The ``insert`` construct of ``conn``'s dialect (PostgreSQL, else SQLite)."""
    return postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
