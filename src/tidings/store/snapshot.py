"""The unread count and latest inbox items a stream opens with (``delivery/opening.py``):
two statements built once, for the caller's one read transaction.

The read rule is ``store.readstate``'s (:func:`~tidings.store.readstate.status_clause`,
:func:`~tidings.store.readstate.read_now`), applied with the watermark as a subquery and the
user as a parameter: unread marks below the line count, the user's own notifications are read,
archived and snoozed ones are out. Invariant: for the same state the result equals what
``readstate.unread_count`` and ``readstate.feed`` give (``tests/delivery/test_connect.py``).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import Connection, and_, bindparam, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.domain.notifications import Notification
from tidings.domain.readstate import UNREAD_DISPLAY_CAP, UnreadCount
from tidings.store.notifications import from_row
from tidings.store.prepared import Prepared
from tidings.store.readstate import FeedItem, read_now, status_clause
from tidings.store.tables import audience_targets, notifications, read_state, receipts

_N = notifications.c
_R = receipts.c
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
_UNREAD = status_clause("unread", _MARK, bindparam("uid"))  # the read rule of readstate
_ABOVE = (
    select(_N.seq)
    .select_from(_MINE)
    .where(_VISIBLE, _N.seq > _MARK, _UNREAD)
    .limit(UNREAD_DISPLAY_CAP + 1)
    .subquery()
)
_BELOW = (  # at or below the line only what a receipt marks unread: driven from the receipts
    select(_R.seq)
    .select_from(receipts.join(notifications, and_(_N.tenant_id == _R.tenant_id, _N.seq == _R.seq)))
    .where(
        _R.tenant_id == bindparam("tid"),
        _R.user_id == bindparam("uid"),
        _R.seq <= _MARK,
        _R.unread_at.is_not(None),
        _VISIBLE,
        _UNREAD,
    )
    .limit(UNREAD_DISPLAY_CAP + 1)
    .subquery()
)
_SNAPSHOT_COUNT = select(
    select(func.count()).select_from(_ABOVE).scalar_subquery()
    + select(func.count()).select_from(_BELOW).scalar_subquery()
)
_SNAPSHOT_LATEST = (
    select(
        notifications,
        _R.read_at,
        _R.archived_at,
        _R.unread_at,
        _R.snoozed_until,
        _MARK.label("mark"),
    )
    .select_from(_MINE)
    .where(_VISIBLE, status_clause("all", _MARK, bindparam("uid")))  # the inbox
    .order_by(_N.seq.desc())
    .limit(bindparam("size"))
)
Known = dict[tuple[str, int], Notification]
"""Notifications built from rows of one read transaction, by (tenant, seq): a stored
notification's columns do not change within it, so each is built (and encoded) once."""

_PREPARED_COUNT = Prepared(_SNAPSHOT_COUNT)
_PREPARED_LATEST = Prepared(_SNAPSHOT_LATEST)


async def snapshot(
    conn: AsyncConnection,
    tenant: str,
    user: str,
    roles: Collection[str],
    muted: Collection[str],
    *,
    upto: int,
    size: int,
    known: Known | None = None,
) -> tuple[UnreadCount, list[FeedItem]]:
    """The unread count and the latest ``size`` inbox items of ``user`` among ``seq <= upto``,
    muted types left out, by the read rule of :func:`is_read` (unread marks below the line
    count, the user's own notifications are read, snoozed ones are out): two statements (built
    once), for the caller's one read transaction.
    Bounded by ``upto`` so the result is exact as of that seq whatever the isolation level.
    ``known``: the notifications already built in the same read transaction, by (tenant, seq),
    shared by the views of one batch (the same latest few for most users); added to."""
    params = _params(tenant, user, roles, muted, upto, size)
    counted = (await conn.execute(_SNAPSHOT_COUNT, params)).scalar_one()
    rows = (await conn.execute(_SNAPSHOT_LATEST, params)).all()
    return _result(int(counted), rows, user, known)


def snapshot_sync(
    conn: Connection,
    tenant: str,
    user: str,
    roles: Collection[str],
    muted: Collection[str],
    *,
    upto: int,
    size: int,
    known: Known | None = None,
) -> tuple[UnreadCount, list[FeedItem]]:
    """:func:`snapshot` on a synchronous SQLite connection (``Store.run_read``): the same two
    statements, the same answer, each run on the DBAPI cursor (``store/prepared.py``: most of a
    view read was SQLAlchemy's per-execution work)."""
    params = _params(tenant, user, roles, muted, upto, size)
    counted = _PREPARED_COUNT.rows(conn, params)[0][0]
    rows = _PREPARED_LATEST.rows(conn, params)
    return _result(int(counted), rows, user, known)


def _params(
    tenant: str, user: str, roles: Collection[str], muted: Collection[str], upto: int, size: int
) -> dict[str, object]:
    return {
        "tid": tenant,
        "uid": user,
        "roles": sorted(roles),
        "muted": sorted(muted),
        "upto": upto,
        "size": size,
    }


def _result(
    counted: int, rows: Sequence[Any], user: str, known: Known | None
) -> tuple[UnreadCount, list[FeedItem]]:
    if known is None:
        known = {}
    items = []
    for row in rows:
        key = (row.tenant_id, int(row.seq))
        notification = known.get(key)
        if notification is None:
            notification = known[key] = from_row(row)
        items.append(
            FeedItem(
                notification=notification, read=read_now(row, int(row.mark), user), archived=False
            )
        )
    return UnreadCount.from_probe(counted), items
