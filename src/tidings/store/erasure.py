"""Removing data for good: a whole tenant, or everything tidings holds about one user.

Both run in the caller's write transaction, so they happen wholly or not at all.

Invariants:
- :func:`delete_tenant` locks the tenant row first (``FOR UPDATE`` on PostgreSQL; SQLite's
  write lock covers it), so a publish racing with it either committed before (and its rows go
  too) or finds no tenant (``tenant_not_found``). It deletes the tenant's rows from every
  table on the shared ``metadata`` that has a ``tenant_id`` column, children before parents,
  then the tenant row. The channels' and the demo's tables join that ``metadata`` when their
  modules are imported: the app imports both, and so does the CLI before it deletes. Only the
  tables the database has are touched: each package's schema is its own Alembic branch, so a
  database the demo never ran on has no demo table (ARCHITECTURE.md, "Schema history").
- :func:`erase_user` deletes the user's read state and receipts, removes the user from every
  notification audience that names them, and deletes the notifications that named only them
  (no role, no other user: nobody else could see them). Broadcasts and role audiences are not
  the user's and stay; those the user caused no longer name them as their actor. Extensions
  add their own part (``also``): the channels erase the user's preferences, push
  subscriptions, digest state, presence, delivery log and reminders.
- Seqs and erasure: an erased notification's row is deleted, not tombstoned. Seq assignment
  stays gap-free (``tenants.last_seq`` is not touched; the next publish gets the next seq),
  but the stored rows have a hole where the erased one was. Readers already page by
  ``seq > sent`` and skip rows they may not see, so a hole reads like a notification of
  someone else: a resume across it (replay, the edge's catch-up) sends everything else that
  is visible, and other users' streams stay live. The hub checks contiguity only for seqs it
  has not offered yet; should an erasure overtake a notification still on its way through the
  broker, that instance ends the tenant's streams with ``bye`` ``gap`` and they resume by id
  (never a silent hole). If the erased row was the tenant's oldest retained one, a client
  resuming from just below it gets ``reset`` (the retention check), as after pruning.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from sqlalchemy import Table, bindparam, delete, inspect, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.errors import Code, NotFound, ValidationFailed
from tidings.store.tables import (
    audience_targets,
    metadata,
    notifications,
    read_state,
    receipts,
    signing_keys,
    tenants,
)
from tidings.store.tenants import TENANT_ID

USER_ID = re.compile(r"^[A-Za-z0-9_.@:+\-]{1,128}\Z")
_CHUNK = 500  # ids per IN (...) list

UserEraser = Callable[[AsyncConnection, str, str], Awaitable[dict[str, int]]]
"""An extension's part of :func:`erase_user`: ``(conn, tenant, user)`` → rows removed per kind."""


def _no_tenant(tenant_id: str) -> NotFound:
    return NotFound(f"Tenant {tenant_id!r} does not exist.", code=Code.TENANT_NOT_FOUND)


async def lock_tenant(conn: AsyncConnection, tenant_id: str) -> None:
    """Lock the tenant's row for this transaction, or raise ``NotFound`` (also for an id that
    is not a tenant id at all: no such tenant can exist)."""
    if not TENANT_ID.match(tenant_id):
        raise _no_tenant(tenant_id)
    found = (
        await conn.execute(select(tenants.c.id).where(tenants.c.id == tenant_id).with_for_update())
    ).first()
    if found is None:
        raise _no_tenant(tenant_id)


async def hold_tenant(conn: AsyncConnection, tenant_id: str) -> None:
    """Hold the tenant's row against erasure for this transaction (``FOR KEY SHARE`` on
    PostgreSQL; SQLite's write lock covers it). A background writer that records something
    about a user (a delivery-log row, a digest run) takes this before it checks that its
    work item still exists: an erasure or tenant deletion in flight (which holds the row
    ``FOR UPDATE``) then finishes first and the writer finds its item gone, or the writer
    commits first and the erasure, whose deletes run after, removes what it wrote. Publishes
    (``FOR NO KEY UPDATE`` of ``last_seq``) are not held up by it."""
    await conn.execute(
        select(tenants.c.id)
        .where(tenants.c.id == tenant_id)
        .with_for_update(read=True, key_share=True)
    )


def check_user(user: str) -> str:
    if not USER_ID.match(user):
        raise ValidationFailed("A user id is 1-128 of A-Z a-z 0-9 _ . @ : + -.")
    return user


def tenant_tables() -> list[Table]:
    """Every registered table with a ``tenant_id``, children before parents (tenants last)."""
    return [t for t in reversed(metadata.sorted_tables) if "tenant_id" in t.c and t is not tenants]


async def tenant_signing_kids(conn: AsyncConnection, tenant_id: str) -> list[str]:
    rows = await conn.execute(
        select(signing_keys.c.kid).where(signing_keys.c.tenant_id == tenant_id)
    )
    return [str(kid) for (kid,) in rows]


async def delete_tenant(conn: AsyncConnection, tenant_id: str) -> dict[str, int]:
    """Delete the tenant and all of its rows. Returns rows removed per table (non-zero only)."""
    await lock_tenant(conn, tenant_id)
    present = set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))
    removed: dict[str, int] = {}
    for table in tenant_tables():
        if table.name not in present:  # an extension whose branch this database never ran
            continue
        count = (await conn.execute(delete(table).where(table.c.tenant_id == tenant_id))).rowcount
        if count:
            removed[table.name] = count
    await conn.execute(delete(tenants).where(tenants.c.id == tenant_id))
    removed[tenants.name] = 1
    return dict(sorted(removed.items()))


def _chunks(values: Sequence[int]) -> list[list[int]]:
    return [list(values[i : i + _CHUNK]) for i in range(0, len(values), _CHUNK)]


def without_user(audience: dict[str, Any] | None, user: str) -> dict[str, list[str]] | None:
    """The audience with ``user`` taken out; ``None`` when nobody is left in it. Shared with
    the channels (a reminder's audience follows the same rule)."""
    users = [u for u in (audience or {}).get("users", []) if u != user]
    roles = list((audience or {}).get("roles", []))
    left: dict[str, list[str]] = {}
    if users:
        left["users"] = users
    if roles:
        left["roles"] = roles
    return left or None


async def erase_user(
    conn: AsyncConnection, tenant_id: str, user: str, *, also: Sequence[UserEraser] = ()
) -> dict[str, int]:
    """Erase what tidings holds about ``user`` of the tenant. Returns counts per kind:
    ``read_state``, ``receipts``, ``notifications`` (addressed only to the user: deleted),
    ``audiences`` (addressed to others too: the user taken out), ``actors`` (the user no longer
    named as the actor), then the extensions' kinds.
    Erasing a user tidings never heard of is not an error: every count is 0."""
    check_user(user)
    await lock_tenant(conn, tenant_id)
    removed: dict[str, int] = {}
    removed["read_state"] = (
        await conn.execute(
            delete(read_state).where(
                read_state.c.tenant_id == tenant_id, read_state.c.user_id == user
            )
        )
    ).rowcount
    removed["receipts"] = (
        await conn.execute(
            delete(receipts).where(receipts.c.tenant_id == tenant_id, receipts.c.user_id == user)
        )
    ).rowcount
    target = audience_targets.c
    # The tenant's audience rows, by the primary key's tenant prefix: there is no index by user
    # (0009_lean_indexes: every publish to users would pay for it), as there is none by actor.
    named = [
        int(seq)
        for (seq,) in await conn.execute(
            select(target.seq).where(
                target.tenant_id == tenant_id, target.kind == "u", target.value == user
            )
        )
    ]
    only: list[int] = []
    shared: list[dict[str, Any]] = []
    for chunk in _chunks(named):
        rows = await conn.execute(
            select(notifications.c.seq, notifications.c.audience).where(
                notifications.c.tenant_id == tenant_id, notifications.c.seq.in_(chunk)
            )
        )
        for seq, audience in rows:
            left = without_user(audience, user)
            if left is None:
                only.append(int(seq))
            else:
                shared.append({"s": int(seq), "a": left})
    for chunk in _chunks(only):
        for table in (receipts, audience_targets, notifications):
            await conn.execute(
                delete(table).where(table.c.tenant_id == tenant_id, table.c.seq.in_(chunk))
            )
    if shared:
        await conn.execute(
            update(notifications)
            .where(notifications.c.tenant_id == tenant_id, notifications.c.seq == bindparam("s"))
            .values(audience=bindparam("a", type_=notifications.c.audience.type)),
            shared,
        )
        await conn.execute(
            delete(audience_targets).where(
                target.tenant_id == tenant_id, target.kind == "u", target.value == user
            )
        )
    removed["notifications"] = len(only)
    removed["audiences"] = len(shared)
    # What the user caused keeps its text, but no longer names them (issue 10's actor).
    removed["actors"] = (
        await conn.execute(
            update(notifications)
            .where(notifications.c.tenant_id == tenant_id, notifications.c.actor_id == user)
            .values(actor_id=None, actor_name=None)
        )
    ).rowcount
    for eraser in also:
        removed.update(await eraser(conn, tenant_id, user))
    return removed


__all__ = [
    "USER_ID",
    "UserEraser",
    "check_user",
    "delete_tenant",
    "erase_user",
    "lock_tenant",
    "tenant_signing_kids",
    "tenant_tables",
    "without_user",
]
