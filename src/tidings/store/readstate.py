"""Feed, unread counts and read receipts of one user.

A notification is read when its receipt has ``read_at``, or — unless its receipt has
``unread_at`` (marked unread, or a snooze ended) — when ``seq <= watermark`` or the user is its
actor. Archived when its receipt has ``archived_at``, snoozed while it has ``snoozed_until``.
Archived and snoozed notifications are neither unread nor in the inbox (``status=all``).

Every state change here is one upsert over the given ids; the service sends the matching event
(``read``, ``unread``, ``archived``, ``unarchived``, ``snoozed``, ``unsnoozed``) to the user's
streams after the commit. The snooze sweep (:func:`claim_due_snoozes`) claims due rows with
``FOR UPDATE SKIP LOCKED`` in the caller's write transaction — the reminder scheduler's
mechanism — so each snooze ends exactly once, whatever the number of instances.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import and_, bindparam, func, not_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from tidings.domain.notifications import Notification, format_time
from tidings.domain.readstate import UNREAD_DISPLAY_CAP, UnreadCount
from tidings.errors import Code, NotFound
from tidings.store.notifications import from_row, visible
from tidings.store.tables import notifications, read_state, receipts
from tidings.store.upsert import upsert as _upsert

Status = Literal["unread", "read", "archived", "snoozed", "all"]
_N = notifications.c
_R = receipts.c


@dataclass(frozen=True, slots=True)
class FeedItem:
    notification: Notification
    read: bool
    archived: bool
    snoozed_until: datetime | None = None

    def public(self) -> dict[str, Any]:
        out = self.notification.public()
        out["read"] = self.read
        out["archived"] = self.archived
        until = self.snoozed_until
        out["snoozed_until"] = None if until is None else format_time(until)
        return out


async def watermark(conn: AsyncConnection, tenant: str, user: str) -> int:
    value = (
        await conn.execute(
            select(read_state.c.watermark).where(
                read_state.c.tenant_id == tenant, read_state.c.user_id == user
            )
        )
    ).scalar_one_or_none()
    return 0 if value is None else int(value)


def _receipt_join() -> Any:
    return notifications.outerjoin(
        receipts,
        and_(_R.tenant_id == _N.tenant_id, _R.seq == _N.seq, _R.user_id == select_user_param()),
    )


def select_user_param() -> Any:

    return bindparam("feed_user")


def is_read(mark: int | ColumnElement[int], user: str | ColumnElement[str]) -> ColumnElement[bool]:
    """SQL: the joined notification is read by ``user`` (watermark ``mark``)."""
    implicit = or_(_N.seq <= mark, and_(_N.actor_id.is_not(None), _N.actor_id == user))
    return or_(_R.read_at.is_not(None), and_(_R.unread_at.is_(None), implicit))


def status_clause(
    status: Status, mark: int | ColumnElement[int], user: str | ColumnElement[str]
) -> ColumnElement[bool]:
    read = is_read(mark, user)
    inbox = and_(_R.archived_at.is_(None), _R.snoozed_until.is_(None))
    if status == "unread":
        return and_(not_(read), inbox)
    if status == "read":
        return and_(read, inbox)
    if status == "archived":
        return _R.archived_at.is_not(None)
    if status == "snoozed":
        return and_(_R.snoozed_until.is_not(None), _R.archived_at.is_(None))
    return inbox


def read_now(row: Any, mark: int, user: str) -> bool:
    """:func:`is_read` for a fetched row."""
    if row.read_at is not None:
        return True
    return row.unread_at is None and (int(row.seq) <= mark or row.actor_id == user)


async def feed(
    conn: AsyncConnection,
    tenant: str,
    user: str,
    roles: Sequence[str],
    *,
    status: Status = "all",
    type_: str | None = None,
    before: int | None = None,
    limit: int = 20,
    exclude_types: Collection[str] = (),
) -> tuple[list[FeedItem], int | None]:
    """Newest first. Returns the page and the seq to continue *before*, if there is more.
    ``exclude_types``: types the user switched off in-app (tidings.channels)."""
    mark = await watermark(conn, tenant, user)
    query = (
        select(notifications, _R.read_at, _R.archived_at, _R.unread_at, _R.snoozed_until)
        .select_from(_receipt_join())
        .where(visible(tenant, user, roles), status_clause(status, mark, user))
    )
    if type_ is not None:
        query = query.where(_N.type == type_)
    if exclude_types:
        query = query.where(_N.type.not_in(sorted(exclude_types)))
    if before is not None:
        query = query.where(_N.seq < before)
    query = query.order_by(_N.seq.desc()).limit(limit + 1)
    rows = (await conn.execute(query, {"feed_user": user})).all()
    items = [
        FeedItem(
            notification=from_row(row),
            read=read_now(row, mark, user),
            archived=row.archived_at is not None,
            snoozed_until=row.snoozed_until,
        )
        for row in rows[:limit]
    ]
    next_before = items[-1].notification.seq if len(rows) > limit else None
    return items, next_before


async def unread_count(
    conn: AsyncConnection,
    tenant: str,
    user: str,
    roles: Sequence[str],
    exclude_types: Collection[str] = (),
) -> UnreadCount:
    """Counts at most ``UNREAD_DISPLAY_CAP + 1`` rows, whatever the backlog: those above the
    watermark, and those at or below it that a receipt marks unread (found by the receipts'
    primary key, so the scan stays bounded by the user's own unread marks)."""
    mark = await watermark(conn, tenant, user)
    where = [visible(tenant, user, roles), status_clause("unread", mark, user)]
    if exclude_types:
        where.append(_N.type.not_in(sorted(exclude_types)))
    above = (
        select(_N.seq)
        .select_from(_receipt_join())
        .where(*where, _N.seq > mark)
        .limit(UNREAD_DISPLAY_CAP + 1)
        .subquery()
    )
    counted = int(
        (
            await conn.execute(select(func.count()).select_from(above), {"feed_user": user})
        ).scalar_one()
    )
    if counted <= UNREAD_DISPLAY_CAP:
        # At or below the watermark only what the user marked unread counts: driven from
        # their receipts (primary key prefix), not from the tenant's history.
        mine = receipts.join(notifications, and_(_N.tenant_id == _R.tenant_id, _N.seq == _R.seq))
        below = (
            select(_R.seq)
            .select_from(mine)
            .where(
                _R.tenant_id == tenant,
                _R.user_id == user,
                _R.seq <= mark,
                _R.unread_at.is_not(None),
                *where,
            )
            .limit(UNREAD_DISPLAY_CAP + 1 - counted)
            .subquery()
        )
        counted += int((await conn.execute(select(func.count()).select_from(below))).scalar_one())
    return UnreadCount.from_probe(counted)


async def visible_seqs(
    conn: AsyncConnection, tenant: str, user: str, roles: Sequence[str], seqs: Sequence[int]
) -> set[int]:
    rows = await conn.execute(
        select(_N.seq).where(visible(tenant, user, roles), _N.seq.in_(list(seqs)))
    )
    return {int(s) for (s,) in rows}


async def _require_visible(
    conn: AsyncConnection, tenant: str, user: str, roles: Sequence[str], seqs: Sequence[int]
) -> None:
    found = await visible_seqs(conn, tenant, user, roles, seqs)
    missing = sorted(set(seqs) - found)
    if missing:
        raise NotFound(
            f"No notification with id {', '.join(map(str, missing[:20]))} for this user.",
            code=Code.NOTIFICATION_NOT_FOUND,
            extra={"ids": missing[:100]},
        )


async def mark_read(
    conn: AsyncConnection,
    tenant: str,
    user: str,
    roles: Sequence[str],
    seqs: Sequence[int],
    *,
    now: datetime,
) -> None:
    await _require_visible(conn, tenant, user, roles, seqs)
    upsert = _upsert(conn)
    stmt = upsert(receipts).values(
        [{"tenant_id": tenant, "user_id": user, "seq": s, "read_at": now} for s in seqs]
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["tenant_id", "user_id", "seq"],
        set_={
            "read_at": func.coalesce(receipts.c.read_at, stmt.excluded.read_at),
            "unread_at": None,
        },
    )
    await conn.execute(stmt)


async def mark_all_read(
    conn: AsyncConnection, tenant: str, user: str, up_to: int, *, now: datetime
) -> None:
    """Move the watermark to ``up_to`` (never backwards). One statement."""
    upsert = _upsert(conn)
    stmt = upsert(read_state).values(
        tenant_id=tenant, user_id=user, watermark=up_to, updated_at=now
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["tenant_id", "user_id"],
        set_={
            "watermark": func.max(read_state.c.watermark, stmt.excluded.watermark)
            if conn.dialect.name == "sqlite"
            else func.greatest(read_state.c.watermark, stmt.excluded.watermark),
            "updated_at": stmt.excluded.updated_at,
        },
    )
    await conn.execute(stmt)
    # Unread marks at or below the new watermark were the user's own: all read now means read.
    await conn.execute(
        update(receipts)
        .where(
            _R.tenant_id == tenant,
            _R.user_id == user,
            _R.seq <= up_to,
            _R.unread_at.is_not(None),
        )
        .values(unread_at=None)
    )


async def archive(
    conn: AsyncConnection,
    tenant: str,
    user: str,
    roles: Sequence[str],
    seqs: Sequence[int],
    *,
    now: datetime,
) -> None:
    await _require_visible(conn, tenant, user, roles, seqs)
    upsert = _upsert(conn)
    stmt = upsert(receipts).values(
        [
            {"tenant_id": tenant, "user_id": user, "seq": s, "read_at": now, "archived_at": now}
            for s in seqs
        ]
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["tenant_id", "user_id", "seq"],
        set_={
            "read_at": func.coalesce(receipts.c.read_at, stmt.excluded.read_at),
            "archived_at": func.coalesce(receipts.c.archived_at, stmt.excluded.archived_at),
            "unread_at": None,
            "snoozed_until": None,  # archived, it does not come back
        },
    )
    await conn.execute(stmt)


async def mark_unread(
    conn: AsyncConnection,
    tenant: str,
    user: str,
    roles: Sequence[str],
    seqs: Sequence[int],
    *,
    now: datetime,
) -> None:
    """Unread again, whatever the watermark or the actor; a snooze on them ends now (they are
    back in the inbox). Archived ones stay archived."""
    await _require_visible(conn, tenant, user, roles, seqs)
    upsert = _upsert(conn)
    stmt = upsert(receipts).values(
        [{"tenant_id": tenant, "user_id": user, "seq": s, "unread_at": now} for s in seqs]
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["tenant_id", "user_id", "seq"],
        set_={
            "read_at": None,
            "unread_at": stmt.excluded.unread_at,
            "snoozed_until": None,
        },
    )
    await conn.execute(stmt)


async def unarchive(
    conn: AsyncConnection,
    tenant: str,
    user: str,
    roles: Sequence[str],
    seqs: Sequence[int],
    *,
    now: datetime,
) -> None:
    """Back in the inbox, as read (archiving read them). Not archived: unchanged."""
    await _require_visible(conn, tenant, user, roles, seqs)
    await conn.execute(
        update(receipts)
        .where(_R.tenant_id == tenant, _R.user_id == user, _R.seq.in_(list(seqs)))
        .values(archived_at=None)
    )


async def snooze(
    conn: AsyncConnection,
    tenant: str,
    user: str,
    roles: Sequence[str],
    seqs: Sequence[int],
    *,
    until: datetime,
) -> None:
    """Out of the inbox and the unread count until ``until`` (a later snooze replaces an
    earlier one; an archived notification moves from the archive to snoozed)."""
    await _require_visible(conn, tenant, user, roles, seqs)
    upsert = _upsert(conn)
    stmt = upsert(receipts).values(
        [{"tenant_id": tenant, "user_id": user, "seq": s, "snoozed_until": until} for s in seqs]
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["tenant_id", "user_id", "seq"],
        set_={"snoozed_until": stmt.excluded.snoozed_until, "archived_at": None},
    )
    await conn.execute(stmt)


@dataclass(frozen=True, slots=True)
class Woken:
    """A snooze that ended: ``seq`` is unread again for ``user`` of ``tenant``."""

    tenant: str
    user: str
    seq: int


async def claim_due_snoozes(conn: AsyncConnection, now: datetime, *, limit: int) -> list[Woken]:
    """End up to ``limit`` snoozes due at ``now``, in the caller's write transaction: each row
    is claimed ``FOR UPDATE SKIP LOCKED`` (PostgreSQL; SQLite's write lock makes claims
    serial) and becomes unread, so a snooze ends exactly once whatever the instances."""
    rows = (
        await conn.execute(
            select(_R.tenant_id, _R.user_id, _R.seq)
            .where(_R.snoozed_until.is_not(None), _R.snoozed_until <= now)
            .order_by(_R.snoozed_until, _R.tenant_id, _R.user_id, _R.seq)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    ).all()
    woken: list[Woken] = []
    for tenant, user, seq in rows:
        done = await conn.execute(
            update(receipts)
            .where(
                _R.tenant_id == tenant,
                _R.user_id == user,
                _R.seq == seq,
                _R.snoozed_until.is_not(None),  # a second guard: ended by nobody else
                _R.snoozed_until <= now,
            )
            .values(snoozed_until=None, read_at=None, unread_at=now)
        )
        if done.rowcount == 1:
            woken.append(Woken(str(tenant), str(user), int(seq)))
    return woken


async def items(
    conn: AsyncConnection,
    tenant: str,
    user: str,
    roles: Sequence[str] | None,
    seqs: Sequence[int],
) -> list[FeedItem]:
    """The feed items ``seqs`` of ``user``, newest first: those visible with ``roles``, or,
    with ``roles=None``, those the user holds a receipt for (checked visible when made)."""
    mark = await watermark(conn, tenant, user)
    mine = (
        visible(tenant, user, roles)
        if roles is not None
        else and_(_N.tenant_id == tenant, _R.user_id.is_not(None))
    )
    query = (
        select(notifications, _R.read_at, _R.archived_at, _R.unread_at, _R.snoozed_until)
        .select_from(_receipt_join())
        .where(mine, _N.seq.in_(list(seqs)))
        .order_by(_N.seq.desc())
    )
    rows = (await conn.execute(query, {"feed_user": user})).all()
    return [
        FeedItem(
            notification=from_row(row),
            read=read_now(row, mark, user),
            archived=row.archived_at is not None,
            snoozed_until=row.snoozed_until,
        )
        for row in rows
    ]


async def readers(conn: AsyncConnection, tenant: str, seq: int) -> list[str]:
    """Who has read notification ``seq``: receipts, plus watermarks at or above it and its actor
    (unless they marked it unread)."""
    by_receipt = select(_R.user_id).where(
        _R.tenant_id == tenant, _R.seq == seq, _R.read_at.is_not(None)
    )
    by_mark = select(read_state.c.user_id).where(
        read_state.c.tenant_id == tenant, read_state.c.watermark >= seq
    )
    by_actor = select(_N.actor_id).where(
        _N.tenant_id == tenant, _N.seq == seq, _N.actor_id.is_not(None)
    )
    unmarked = select(_R.user_id).where(
        _R.tenant_id == tenant, _R.seq == seq, _R.unread_at.is_not(None)
    )
    rows = await conn.execute(by_receipt.union(by_mark, by_actor))
    undone = {str(u) for (u,) in await conn.execute(unmarked)}
    return sorted(str(u) for (u,) in rows if str(u) not in undone)
