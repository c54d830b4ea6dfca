"""The unread count and latest inbox items a stream opens with (``delivery/opening.py``):
two statements built once, for the caller's one read transaction. How an opener batch runs
them: on SQLite in a file on the DBAPI cursor (:func:`snapshot_sync`, ``store/prepared.py``);
on PostgreSQL all users of the batch in ONE statement (:func:`snapshot_many`: the same two
statements as LATERAL subqueries of a row per user); else per user (:func:`snapshot`).

The read rule is ``store.readstate``'s (:func:`~tidings.store.readstate.status_clause`,
:func:`~tidings.store.readstate.read_now`), applied with the watermark as a subquery and the
user as a parameter: unread marks below the line count, the user's own notifications are read,
archived and snoozed ones are out. Invariant: for the same state the result equals what
``readstate.unread_count`` and ``readstate.feed`` give (``tests/delivery/test_connect.py``).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Connection,
    Integer,
    Select,
    String,
    all_,
    and_,
    any_,
    bindparam,
    column,
    exists,
    func,
    literal_column,
    or_,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import operators, visitors
from sqlalchemy.sql.elements import BinaryExpression, BindParameter

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

# -- the views of many users in ONE statement (PostgreSQL) -----------------------------------
# The users are the rows of ``ask`` (a JSON array of them, one parameter; PostgreSQL 10 or
# later turns a JSON array into the text[] column); the two statements above run per row as
# LATERAL subqueries, their parameters replaced by the row's columns: the same SQL, the same
# read rule, one round trip for an opener batch instead of two per user.
_ASK = "ask"
_ASKS = (
    func.jsonb_to_recordset(bindparam("asks", type_=JSONB))
    .table_valued(
        column("idx", Integer),
        column("tid", String),
        column("uid", String),
        column("roles", ARRAY(String)),
        column("muted", ARRAY(String)),
        column("upto", BigInteger),
    )
    .render_derived(name=_ASK, with_types=True)
)


def _ask(name: str, type_: Any) -> Any:
    # By name, not as a column of _ASKS: SQLAlchemy would add ``ask`` to the FROM of each
    # nested SELECT; PostgreSQL resolves the name to the outer row, as a correlated reference.
    return literal_column(f"{_ASK}.{name}", type_)


_BY_ASK = {
    "tid": _ask("tid", String()),
    "uid": _ask("uid", String()),
    "upto": _ask("upto", BigInteger()),
}


def _per_ask(element: Any, **_: Any) -> Any:
    """The single-user statements' parameters as the ``ask`` row's columns; the ``IN`` lists
    as ``= ANY`` / ``<> ALL`` of its arrays (false / true when empty, as ``IN ()`` and ``NOT
    IN ()``)."""
    if isinstance(element, BindParameter) and element.key in _BY_ASK:
        return _BY_ASK[element.key]
    if isinstance(element, BinaryExpression) and isinstance(element.right, BindParameter):
        key, op = element.right.key, element.operator
        if key == "roles" and op is operators.in_op:
            return element.left == any_(_ask("roles", ARRAY(String())))
        if key == "muted" and op is operators.not_in_op:
            return element.left != all_(_ask("muted", ARRAY(String())))
        if element.right.expanding:
            raise ValueError(f"no array of the ask row for the IN list {key!r}")
    return None


_COUNT_PER_ASK = cast(
    "Select[Any]", visitors.replacement_traverse(_SNAPSHOT_COUNT, {}, _per_ask)
).lateral("counted")
_LATEST_PER_ASK = cast(
    "Select[Any]", visitors.replacement_traverse(_SNAPSHOT_LATEST, {}, _per_ask)
).lateral("latest")
_SNAPSHOT_MANY = (
    select(_ASKS.c.idx, _COUNT_PER_ASK.c[0].label("counted"), _LATEST_PER_ASK)
    .select_from(_ASKS.join(_COUNT_PER_ASK, true()).outerjoin(_LATEST_PER_ASK, true()))
    .order_by(_ASKS.c.idx, _LATEST_PER_ASK.c.seq.desc())
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
    conn: Connection, ask: Ask, *, size: int, known: Known | None = None
) -> tuple[UnreadCount, list[FeedItem]]:
    """:func:`snapshot` of ``ask`` on a synchronous SQLite connection (``Store.run_read``): the
    same two statements, the same answer, each run on the DBAPI cursor (``store/prepared.py``:
    most of a view read was SQLAlchemy's per-execution work)."""
    tenant, user, roles, muted, upto = ask
    params = _params(tenant, user, roles, muted, upto, size)
    counted = _PREPARED_COUNT.rows(conn, params)[0][0]
    rows = _PREPARED_LATEST.rows(conn, params)
    return _result(int(counted), rows, user, known)


Ask = tuple[str, str, Collection[str], Collection[str], int]
"""What a view read asks: tenant, user, roles, muted types, the seq it is exact at."""


async def snapshot_many(
    conn: AsyncConnection, asks: Sequence[Ask], *, size: int, known: Known | None = None
) -> list[tuple[UnreadCount, list[FeedItem]]]:
    """:func:`snapshot` of each ask, on PostgreSQL in ONE statement (``_SNAPSHOT_MANY``): the
    same two statements per user as LATERAL subqueries of a row per user, so the same answer
    (``tests/delivery/test_connect.py``), one round trip for the whole batch."""
    if not asks:
        return []
    payload = [
        {"idx": i, "tid": t, "uid": u, "roles": sorted(r), "muted": sorted(m), "upto": upto}
        for i, (t, u, r, m, upto) in enumerate(asks)
    ]
    counted = [0] * len(asks)
    latest: list[list[Any]] = [[] for _ in asks]
    for row in (await conn.execute(_SNAPSHOT_MANY, {"asks": payload, "size": size})).all():
        counted[row.idx] = int(row.counted)
        if row.seq is not None:  # the user's inbox is not empty (LEFT JOIN LATERAL)
            latest[row.idx].append(row)
    return [_result(counted[i], latest[i], ask[1], known) for i, ask in enumerate(asks)]


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
