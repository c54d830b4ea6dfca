"""Collapse keys (issue 10 item 3): the grouped feed and a group's ids.

Invariants:
- A card is the newest notification of its group among those the query admits (visibility,
  ``status``, ``type``, muted types); ``count`` and ``unread`` are over exactly those items.
  A notification without a group is a card of its own (count 1).
- Pages are exact: a page continues *before* the last card's seq, and a row is a card only if
  no newer admitted row shares its group, so no group appears on two pages.
- The unread count stays a count of items (groups change only what is shown).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.store.notifications import from_row, visible
from tidings.store.readstate import (
    FeedItem,
    Status,
    _receipt_join,
    is_read,
    read_now,
    status_clause,
    watermark,
)
from tidings.store.tables import notifications, receipts

_N = notifications.c
_R = receipts.c
_SCAN = 200  # rows fetched per round while collecting a page of cards
GROUP_IDS_MAX = 1000  # ids one mark-read-by-group may touch


@dataclass(frozen=True, slots=True)
class Card:
    """A feed item standing for its group: ``count`` items, ``unread`` of them unread."""

    item: FeedItem
    count: int
    unread: int

    def public(self) -> dict[str, Any]:
        out = self.item.public()
        out["group_count"] = self.count
        out["group_unread"] = self.unread
        return out


async def grouped_feed(
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
) -> tuple[list[Card], int | None]:
    """Newest card first; returns the page and the seq to continue *before*, if there is more."""
    mark = await watermark(conn, tenant, user)
    admitted = [visible(tenant, user, roles), status_clause(status, mark, user)]
    if type_ is not None:
        admitted.append(_N.type == type_)
    if exclude_types:
        admitted.append(_N.type.not_in(sorted(exclude_types)))
    cards: list[Card] = []
    cursor = before
    while len(cards) <= limit:
        query = (
            select(notifications, _R.read_at, _R.archived_at, _R.unread_at, _R.snoozed_until)
            .select_from(_receipt_join())
            .where(*admitted)
        )
        if cursor is not None:
            query = query.where(_N.seq < cursor)
        rows = (
            await conn.execute(query.order_by(_N.seq.desc()).limit(_SCAN), {"feed_user": user})
        ).all()
        if not rows:
            break
        keys = sorted({r.group_key for r in rows if r.group_key is not None})
        stats: dict[str, tuple[int, int, int]] = {}
        if keys:
            unread = func.sum(case((is_read(mark, user), 0), else_=1))
            agg = (
                select(_N.group_key, func.max(_N.seq), func.count(), unread)
                .select_from(_receipt_join())
                .where(*admitted, _N.group_key.in_(keys))
                .group_by(_N.group_key)
            )
            for key, top, count, n_unread in await conn.execute(agg, {"feed_user": user}):
                stats[key] = (int(top), int(count), int(n_unread or 0))
        for row in rows:
            item = FeedItem(
                notification=from_row(row),
                read=read_now(row, mark, user),
                archived=row.archived_at is not None,
                snoozed_until=row.snoozed_until,
            )
            if row.group_key is None:
                cards.append(Card(item, 1, 0 if item.read else 1))
            else:
                top, count, n_unread = stats[row.group_key]
                if top == int(row.seq):
                    cards.append(Card(item, count, n_unread))
            if len(cards) > limit:
                break
        cursor = int(rows[-1].seq)
        if len(rows) < _SCAN:
            break
    page = cards[:limit]
    next_before = page[-1].item.notification.seq if len(cards) > limit else None
    return page, next_before


async def group_seqs(
    conn: AsyncConnection, tenant: str, user: str, roles: Sequence[str], groups: Sequence[str]
) -> tuple[list[int], list[str]]:
    """The ids of every notification of ``groups`` the user may see (oldest first, at most
    ``GROUP_IDS_MAX + 1``), and the groups of which the user may see none."""
    rows = (
        await conn.execute(
            select(_N.seq, _N.group_key)
            .where(visible(tenant, user, roles), _N.group_key.in_(list(groups)))
            .order_by(_N.seq)
            .limit(GROUP_IDS_MAX + 1)
        )
    ).all()
    found = {row.group_key for row in rows}
    missing = [g for g in groups if g not in found]
    if len(rows) > GROUP_IDS_MAX:
        missing = []  # cut short: the caller refuses the request anyway
    return [int(row.seq) for row in rows], missing
