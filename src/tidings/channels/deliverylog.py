"""The delivery log: what happened to each notification on each channel, for whom.

Rows are appended, never updated: ``queued`` when the fan-out decides to push or to include a
notification in a digest, then ``sent`` / ``failed`` (with a reason; a retried push logs each
failed attempt) / ``skipped`` (``preference``, ``quiet_hours``, ``live_stream``,
``already_read``, ``stale``). The state of one delivery is its latest row per
``(channel, user, target)``; :func:`summarize` counts those.

The in-app channel is not logged here: the stream and read receipts are its record.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.channels.clock import as_utc
from tidings.channels.tables import delivery_log
from tidings.domain.notifications import format_time

Status = Literal["queued", "sent", "failed", "skipped"]
LogChannel = Literal["push", "email"]
_L = delivery_log.c


def entry(
    tenant: str,
    seq: int,
    channel: LogChannel,
    status: Status,
    *,
    at: datetime,
    user: str | None = None,
    target: str | None = None,
    reason: str | None = None,
    detail: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "tenant_id": tenant,
        "seq": seq,
        "channel": channel,
        "status": status,
        "user_id": user,
        "target": target,
        "reason": reason[:40] if reason else None,
        "detail": detail,
        "at": at,
    }


async def write(conn: AsyncConnection, entries: list[dict[str, Any]]) -> None:
    if entries:
        await conn.execute(insert(delivery_log), entries)


async def for_notification(
    conn: AsyncConnection, tenant: str, seq: int, *, limit: int = 1000
) -> list[dict[str, Any]]:
    """Entries of one notification, oldest first (at most ``limit``)."""
    rows = await conn.execute(
        select(delivery_log)
        .where(_L.tenant_id == tenant, _L.seq == seq)
        .order_by(_L.id)
        .limit(limit)
    )
    return [
        {
            "channel": r.channel,
            "status": r.status,
            "user": r.user_id,
            "target": r.target,
            "reason": r.reason,
            "detail": r.detail,
            "at": format_time(as_utc(r.at)),
        }
        for r in rows
    ]


def summarize(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """Per channel: how many deliveries are in each state now, and when the last was sent.

    ``{"push": {"sent": 2, "failed": 0, "queued": 0, "skipped": 3, "devices": 2,
    "last_sent_at": …}, "email": {...}}`` — push ``devices`` counts devices pushed to.
    """
    latest: dict[tuple[str, str | None, str | None], dict[str, Any]] = {}
    for item in entries:
        latest[(item["channel"], item["user"], item["target"])] = item
    out: dict[str, Any] = {}
    for channel in ("push", "email"):
        mine = [e for (c, _, _), e in latest.items() if c == channel]
        counts = Counter(e["status"] for e in mine)
        sent = [e["at"] for e in mine if e["status"] == "sent"]
        out[channel] = {
            **{status: counts.get(status, 0) for status in ("queued", "sent", "failed", "skipped")},
            "last_sent_at": max(sent) if sent else None,
        }
    out["push"]["devices"] = out["push"]["sent"]
    out["email"]["recipients"] = out["email"]["sent"]
    return out


async def prune(conn: AsyncConnection, cutoff: datetime) -> int:
    done = await conn.execute(delete(delivery_log).where(_L.at < cutoff))
    return int(done.rowcount or 0)
