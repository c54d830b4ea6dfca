"""Small SQL helpers shared by the channels' query modules."""

from __future__ import annotations

import enum
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection


def upsert(conn: AsyncConnection) -> Any:
    """The dialect's ``insert`` (with ``on_conflict_do_update`` / ``on_conflict_do_nothing``)."""
    return postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert


class Keep(enum.Enum):
    """Sentinel for "leave this field as it is" in partial updates."""

    KEEP = 0


KEEP = Keep.KEEP
