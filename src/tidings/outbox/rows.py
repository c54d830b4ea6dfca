"""Queries on the host's outbox tables (asyncpg; the tables are in :mod:`tidings.outbox.schema`).

How a batch is claimed so that several instances cooperate *and* each tenant's rows go out in
insert (id) order:

1. :func:`candidate_tenants` (its own short statement): the tenants of the oldest rows that no
   other instance has claimed — ``FOR UPDATE SKIP LOCKED`` passes over claimed rows, so a
   second instance looks past the first one's batch instead of at it.
2. :func:`lock_tenants` (in the claim transaction): ``pg_try_advisory_xact_lock`` per tenant.
   A tenant is published by one instance at a time; the lock ends with the transaction, also
   when the instance dies (PostgreSQL ends its session).
3. :func:`claim`: the oldest rows of the locked tenants, ``FOR UPDATE SKIP LOCKED``. Because
   the tenant lock was taken first, this statement sees every committed row of those tenants,
   including those a killed instance had claimed and never deleted. A row skipped here is
   locked by someone else (the host itself, say): the tenant's claim is cut at the first such
   row, so no later row of it overtakes an earlier one.

The cut in step 3 is what guarantees the order (tests/outbox/test_cluster.py fails without it
and the lock); the tenant lock is what spreads tenants over instances, so that they do not
claim interleaved rows of one tenant and cut each other's claims.

Published rows are deleted, bad ones moved to ``tidings_outbox_dead``, in the same transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from tidings.outbox.schema import LOCK_SPACE

if TYPE_CHECKING:
    import asyncpg

TIMEOUT = 30.0  # seconds per statement


@dataclass(frozen=True, slots=True)
class Row:
    """One claimed outbox row; ``payload`` is its JSON text, as stored."""

    id: int
    tenant: str
    payload: str
    created_at: datetime

    @property
    def idempotency_key(self) -> str:
        """``outbox:<id>:<created_at in µs>``: the same for every attempt at this row (so a
        crash between publish and delete never doubles it), different for a row that reuses
        an id after the host reset its sequence."""
        micros = int(self.created_at.timestamp() * 1_000_000)
        return f"outbox:{self.id}:{micros}"


@dataclass(frozen=True, slots=True)
class DeadRow:
    id: int
    tenant: str
    payload: str
    created_at: datetime
    failed_at: datetime
    error: str

    def public(self) -> dict[str, Any]:
        import orjson

        return {
            "id": self.id,
            "tenant": self.tenant,
            "payload": orjson.loads(self.payload),
            "created_at": self.created_at.isoformat(),
            "failed_at": self.failed_at.isoformat(),
            "error": self.error,
        }


_CANDIDATES = """
SELECT tenant FROM (
    SELECT id, tenant FROM tidings_outbox ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED
) oldest GROUP BY tenant ORDER BY min(id)
"""
_LOCK = """
SELECT t FROM unnest($1::text[]) WITH ORDINALITY AS u(t, n)
WHERE pg_try_advisory_xact_lock($2, hashtext(t)) ORDER BY n
"""
_CLAIM = """
SELECT id, tenant, payload::text AS payload, created_at FROM tidings_outbox
WHERE tenant = ANY($1::text[]) ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED
"""
_VISIBLE = """
SELECT id, tenant FROM tidings_outbox WHERE tenant = ANY($1::text[]) AND id <= $2 ORDER BY id
"""
_DELETE = "DELETE FROM tidings_outbox WHERE id = ANY($1::bigint[])"
_BURY = """
WITH moved AS (DELETE FROM tidings_outbox WHERE id = ANY($1::bigint[]) RETURNING *)
INSERT INTO tidings_outbox_dead (id, tenant, payload, created_at, error)
SELECT m.id, m.tenant, m.payload, m.created_at, e.error
FROM moved m JOIN unnest($1::bigint[], $2::text[]) AS e(id, error) ON e.id = m.id
ON CONFLICT (id) DO UPDATE SET error = excluded.error, failed_at = now(),
    tenant = excluded.tenant, payload = excluded.payload, created_at = excluded.created_at
"""
_LAG = """
SELECT coalesce(extract(epoch FROM now() - (SELECT created_at FROM tidings_outbox ORDER BY id
LIMIT 1)), 0)::float8
"""
_LIST_DEAD = """
SELECT id, tenant, payload::text AS payload, created_at, failed_at, error
FROM tidings_outbox_dead
WHERE ($1::text IS NULL OR tenant = $1) AND id > $2 ORDER BY id LIMIT $3
"""
_GET_DEAD = """
SELECT id, tenant, payload::text AS payload, created_at, failed_at, error
FROM tidings_outbox_dead WHERE id = $1
"""
_RETRY = """
WITH back AS (
    DELETE FROM tidings_outbox_dead WHERE id = $1 RETURNING id, tenant, payload, created_at
)
INSERT INTO tidings_outbox (id, tenant, payload, created_at) SELECT * FROM back RETURNING id
"""
_DISCARD = "DELETE FROM tidings_outbox_dead WHERE id = $1 RETURNING id"


async def candidate_tenants(conn: asyncpg.Connection, scan: int) -> list[str]:
    """Tenants of the oldest ``scan`` unclaimed rows, oldest first. Run outside a transaction:
    its row locks last only for the statement."""
    return [r["tenant"] for r in await conn.fetch(_CANDIDATES, scan, timeout=TIMEOUT)]


async def lock_tenants(conn: asyncpg.Connection, tenants: Sequence[str]) -> list[str]:
    """The ``tenants`` whose publishing lock this transaction got (the others are busy)."""
    if not tenants:
        return []
    rows = await conn.fetch(_LOCK, list(tenants), LOCK_SPACE, timeout=TIMEOUT)
    return [r["t"] for r in rows]


async def claim(conn: asyncpg.Connection, tenants: Sequence[str], limit: int) -> list[Row]:
    """The oldest rows of ``tenants`` (locked by :func:`lock_tenants`), at most ``limit``,
    row-locked; per tenant a gap-free prefix of its rows in id order."""
    if not tenants:
        return []
    found = [
        Row(r["id"], r["tenant"], r["payload"], r["created_at"])
        for r in await conn.fetch(_CLAIM, list(tenants), limit, timeout=TIMEOUT)
    ]
    if not found:
        return []
    claimed = {row.id for row in found}
    cut: dict[str, int] = {}  # tenant -> first id it must not pass (a row locked elsewhere)
    for r in await conn.fetch(_VISIBLE, list(tenants), found[-1].id, timeout=TIMEOUT):
        if r["id"] not in claimed and r["tenant"] not in cut:
            cut[r["tenant"]] = r["id"]
    return [row for row in found if row.id < cut.get(row.tenant, row.id + 1)]


async def delete(conn: asyncpg.Connection, ids: Sequence[int]) -> None:
    if ids:
        await conn.execute(_DELETE, list(ids), timeout=TIMEOUT)


async def bury(conn: asyncpg.Connection, errors: dict[int, str]) -> None:
    """Move rows to ``tidings_outbox_dead`` with their errors."""
    if errors:
        ids = list(errors)
        await conn.execute(_BURY, ids, [errors[i] for i in ids], timeout=TIMEOUT)


async def lag(conn: asyncpg.Connection) -> float:
    """Seconds since the oldest waiting row was created (0 when the outbox is empty)."""
    value = await conn.fetchval(_LAG, timeout=TIMEOUT)
    return max(0.0, float(value or 0.0))


def _dead(r: Any) -> DeadRow:
    return DeadRow(r["id"], r["tenant"], r["payload"], r["created_at"], r["failed_at"], r["error"])


async def list_dead(
    conn: asyncpg.Connection, *, tenant: str | None, after: int, limit: int
) -> list[DeadRow]:
    rows = await conn.fetch(_LIST_DEAD, tenant, after, limit, timeout=TIMEOUT)
    return [_dead(r) for r in rows]


async def get_dead(conn: asyncpg.Connection, row_id: int) -> DeadRow | None:
    r = await conn.fetchrow(_GET_DEAD, row_id, timeout=TIMEOUT)
    return None if r is None else _dead(r)


async def retry_dead(conn: asyncpg.Connection, row_id: int) -> bool:
    """Put a dead row back into the outbox (same id and created_at, so the same idempotency
    key). False if there is no such dead row."""
    return await conn.fetchval(_RETRY, row_id, timeout=TIMEOUT) is not None


async def discard_dead(conn: asyncpg.Connection, row_id: int) -> bool:
    return await conn.fetchval(_DISCARD, row_id, timeout=TIMEOUT) is not None
