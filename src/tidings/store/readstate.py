"""Feed, unread counts and read receipts of one user.

A notification is read when ``seq <= watermark`` or its receipt has ``read_at``; archived when
its receipt has ``archived_at``. Archived notifications are neither unread nor in the inbox.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import and_, bindparam, exists, func, not_, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from tidings.domain.notifications import Notification
from tidings.domain.readstate import UNREAD_DISPLAY_CAP, UnreadCount
from tidings.errors import Code, NotFound
from tidings.store.notifications import from_row, visible
from tidings.store.tables import audience_targets, notifications, read_state, receipts

Status = Literal["unread", "read", "archived", "all"]
_N = notifications.c
_R = receipts.c


@dataclass(frozen=True, slots=True)
class FeedItem:
    notification: Notification
    read: bool
    archived: bool

    def public(self) -> dict[str, Any]:
        out = self.notification.public()
        out["read"] = self.read
        out["archived"] = self.archived
        return out


def _upsert(conn: AsyncConnection) -> Any:
    return postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert


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
    from sqlalchemy import bindparam

    return bindparam("feed_user")


def _status_clause(status: Status, mark: int) -> ColumnElement[bool]:
    is_read = or_(_N.seq <= mark, _R.read_at.is_not(None))
    not_archived = _R.archived_at.is_(None)
    if status == "unread":
        return and_(not_(is_read), not_archived)
    if status == "read":
        return and_(is_read, not_archived)
    if status == "archived":
        return _R.archived_at.is_not(None)
    return not_archived


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
        select(notifications, _R.read_at, _R.archived_at)
        .select_from(_receipt_join())
        .where(visible(tenant, user, roles), _status_clause(status, mark))
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
            read=int(row.seq) <= mark or row.read_at is not None,
            archived=row.archived_at is not None,
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
    """Counts at most ``UNREAD_DISPLAY_CAP + 1`` rows, whatever the backlog."""
    mark = await watermark(conn, tenant, user)
    where = [visible(tenant, user, roles), _N.seq > mark, _status_clause("unread", mark)]
    if exclude_types:
        where.append(_N.type.not_in(sorted(exclude_types)))
    inner = (
        select(_N.seq)
        .select_from(_receipt_join())
        .where(*where)
        .limit(UNREAD_DISPLAY_CAP + 1)
        .subquery()
    )
    counted = (
        await conn.execute(select(func.count()).select_from(inner), {"feed_user": user})
    ).scalar_one()
    return UnreadCount.from_probe(int(counted))


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
        set_={"read_at": func.coalesce(receipts.c.read_at, stmt.excluded.read_at)},
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
        },
    )
    await conn.execute(stmt)


async def readers(conn: AsyncConnection, tenant: str, seq: int) -> list[str]:
    """Who has read notification ``seq``: receipts plus watermarks at or above it."""
    by_receipt = select(_R.user_id).where(
        _R.tenant_id == tenant, _R.seq == seq, _R.read_at.is_not(None)
    )
    by_mark = select(read_state.c.user_id).where(
        read_state.c.tenant_id == tenant, read_state.c.watermark >= seq
    )
    rows = await conn.execute(by_receipt.union(by_mark))
    return sorted(str(u) for (u,) in rows)


# -- the stream's opening snapshot (delivery/recent.py): statements built once ------------------
_T = audience_targets.c
_MARK = (
    select(func.coalesce(func.max(read_state.c.watermark), 0))
    .where(read_state.c.tenant_id == bindparam("tid"), read_state.c.user_id == bindparam("uid"))
    .scalar_subquery()
)
_VISIBLE = and_(
    _N.tenant_id == bindparam("tid"),
    _N.seq <= bindparam("upto"),
    _N.type.not_in(bindparam("muted", expanding=True)),
    or_(
        _N.targeted.is_(False),
        exists().where(
            _T.tenant_id == _N.tenant_id,
            _T.seq == _N.seq,
            or_(
                and_(_T.kind == "u", _T.value == bindparam("uid")),
                and_(_T.kind == "r", _T.value.in_(bindparam("roles", expanding=True))),
            ),
        ),
    ),
)
_MINE = notifications.outerjoin(
    receipts, and_(_R.tenant_id == _N.tenant_id, _R.seq == _N.seq, _R.user_id == bindparam("uid"))
)
_SNAPSHOT_COUNT = select(func.count()).select_from(
    select(_N.seq)
    .select_from(_MINE)
    .where(_VISIBLE, _N.seq > _MARK, _R.read_at.is_(None), _R.archived_at.is_(None))
    .limit(UNREAD_DISPLAY_CAP + 1)
    .subquery()
)
_SNAPSHOT_LATEST = (
    select(notifications, _R.read_at, _R.archived_at, _MARK.label("mark"))
    .select_from(_MINE)
    .where(_VISIBLE, _R.archived_at.is_(None))
    .order_by(_N.seq.desc())
    .limit(bindparam("size"))
)


async def snapshot(
    conn: AsyncConnection,
    tenant: str,
    user: str,
    roles: Collection[str],
    muted: Collection[str],
    *,
    upto: int,
    size: int,
) -> tuple[UnreadCount, list[FeedItem]]:
    """The unread count and the latest ``size`` inbox items of ``user`` among ``seq <= upto``,
    muted types left out: two statements (built once), for the caller's one read transaction.
    Bounded by ``upto`` so the result is exact as of that seq whatever the isolation level."""
    params = {
        "tid": tenant,
        "uid": user,
        "roles": sorted(roles),
        "muted": sorted(muted),
        "upto": upto,
        "size": size,
    }
    counted = (await conn.execute(_SNAPSHOT_COUNT, params)).scalar_one()
    rows = (await conn.execute(_SNAPSHOT_LATEST, params)).all()
    items = [
        FeedItem(
            notification=from_row(row),
            read=int(row.seq) <= int(row.mark) or row.read_at is not None,
            archived=False,
        )
        for row in rows
    ]
    return UnreadCount.from_probe(int(counted)), items
