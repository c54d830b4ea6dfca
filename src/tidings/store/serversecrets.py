"""Secrets the server generates for itself and keeps in the store.

Invariant: one value per name, ever. :func:`get_or_create` inserts a fresh value only if the
name is absent (``ON CONFLICT DO NOTHING``) and then reads the row back, so instances racing on
one database all end with the value of whichever inserted first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.store.tables import server_secrets
from tidings.store.upsert import upsert


@dataclass(frozen=True, slots=True)
class StoredSecret:
    name: str
    value: str
    created_at: datetime
    created: bool  # True if this call generated it


async def get(conn: AsyncConnection, name: str) -> StoredSecret | None:
    row = (await conn.execute(select(server_secrets).where(server_secrets.c.name == name))).first()
    return None if row is None else StoredSecret(row.name, row.value, row.created_at, False)


async def get_or_create(
    conn: AsyncConnection, name: str, generate: Callable[[], str], *, now: datetime
) -> StoredSecret:
    """The stored secret ``name``; generated with ``generate()`` if there is none yet."""
    found = await get(conn, name)
    if found is not None:
        return found
    insert = upsert(conn)
    fresh = generate()
    await conn.execute(
        insert(server_secrets)
        .values(name=name, value=fresh, created_at=now)
        .on_conflict_do_nothing(index_elements=["name"])
    )
    stored = await get(conn, name)
    if stored is None:  # pragma: no cover - the row was just inserted or already there
        raise RuntimeError(f"server secret {name!r} vanished")
    return StoredSecret(name, stored.value, stored.created_at, stored.value == fresh)
