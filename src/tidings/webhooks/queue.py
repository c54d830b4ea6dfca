"""The durable delivery queue: events in, deliveries out, in the store.

- :func:`enqueue` records an event (its exact JSON body, signed as is) and one ``pending``
  delivery per enabled endpoint of the tenant subscribed to its type, in the caller's
  transaction: the change that caused the event and the event commit together (push, digest,
  reminder), or the event is written right after that commit (read state). The tenant's
  pending ``notification.created`` events are made first, in the same transaction, so an
  endpoint never hears of a notification being read or pushed before it was created.
- :func:`tail_notifications` turns notifications into ``notification.created`` events: per
  tenant with endpoints, a cursor on the tenant's seq, advanced in the same transaction that
  writes the events. The notifications table is the queue, so a crash loses nothing and the
  cursor row's lock (PostgreSQL ``FOR UPDATE``; SQLite's one writer) makes each notification
  one event, whichever instance tails it.
- :func:`replay` queues a past event again to one endpoint or to every subscribed one.

An event is stored only if some endpoint of the tenant subscribes to its type (enabled or not,
so it can be replayed once the endpoint is fixed); deliveries go to enabled endpoints only.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.channels.clock import as_utc
from tidings.domain.notifications import Notification, format_time
from tidings.errors import Code, NotFound
from tidings.store import Store
from tidings.store import notifications as nq
from tidings.store.tables import tenants
from tidings.webhooks.catalogue import KNOWN
from tidings.webhooks.endpoints import not_found
from tidings.webhooks.tables import (
    webhook_cursors,
    webhook_deliveries,
    webhook_endpoints,
    webhook_events,
    webhook_log,
)

_E = webhook_endpoints.c
_V = webhook_events.c
_C = webhook_cursors.c
TAIL_BATCH = 200


def new_id() -> str:
    return "msg_" + secrets.token_urlsafe(18)


def body(event_type: str, tenant: str, data: dict[str, Any], at: datetime) -> bytes:
    """The JSON sent: ``{"type", "timestamp", "data": {"tenant", …}}`` (Standard Webhooks)."""
    return orjson.dumps(
        {"type": event_type, "timestamp": format_time(at), "data": {"tenant": tenant, **data}}
    )


async def subscribed(conn: AsyncConnection, tenant: str, event_type: str) -> list[Any]:
    rows = await conn.execute(
        select(_E.id, _E.enabled, _E.event_types).where(_E.tenant_id == tenant)
    )
    return [r for r in rows if event_type in r.event_types]


async def _deliver_to(
    conn: AsyncConnection, tenant: str, event_id: str, endpoints: Sequence[str], now: datetime
) -> None:
    if endpoints:
        await conn.execute(
            insert(webhook_deliveries),
            [
                {
                    "tenant_id": tenant,
                    "endpoint_id": endpoint,
                    "event_id": event_id,
                    "state": "pending",
                    "attempts": 0,
                    "due_at": now,
                    "created_at": now,
                    "updated_at": now,
                }
                for endpoint in endpoints
            ],
        )


async def enqueue(
    conn: AsyncConnection, tenant: str, event_type: str, data: dict[str, Any], now: datetime
) -> str | None:
    """Record the event and queue its deliveries; its id, or ``None`` if nobody subscribes
    (or the type is not in the catalogue)."""
    if event_type not in KNOWN:
        return None
    endpoints = await subscribed(conn, tenant, event_type)
    if not endpoints:
        return None
    # The notifications' own events first: a receiver hears of a notification being created
    # before it hears that it was read, pushed, … (the tailer may not have come by yet).
    while (await tail_in(conn, tenant, now))[1]:
        pass
    encoded = body(event_type, tenant, data, now)
    user = data.get("user")
    return await _record(conn, tenant, event_type, encoded, endpoints, now, user=user)


async def _record(
    conn: AsyncConnection,
    tenant: str,
    event_type: str,
    encoded: bytes,
    endpoints: Sequence[Any],
    now: datetime,
    *,
    user: str | None = None,
) -> str:
    event_id = new_id()
    await conn.execute(
        insert(webhook_events).values(
            id=event_id,
            tenant_id=tenant,
            type=event_type,
            user_id=user,
            body=encoded.decode(),
            created_at=now,
        )
    )
    await _deliver_to(conn, tenant, event_id, [e.id for e in endpoints if e.enabled], now)
    return event_id


async def tail_notifications(store: Store, now: datetime) -> int:
    """``notification.created`` for every notification past each tenant's cursor; how many."""
    async with store.read() as conn:
        behind = (
            (
                await conn.execute(
                    select(_C.tenant_id)
                    .join(tenants, tenants.c.id == _C.tenant_id)
                    .where(tenants.c.last_seq > _C.last_seq)
                )
            )
            .scalars()
            .all()
        )
    made = 0
    for tenant in behind:
        made += await _tail_one(store, tenant, now)
    return made


async def _tail_one(store: Store, tenant: str, now: datetime) -> int:
    made = 0
    while True:
        async with store.write() as conn:
            count, more = await tail_in(conn, tenant, now)
        made += count
        if not more:
            return made


async def tail_in(conn: AsyncConnection, tenant: str, now: datetime) -> tuple[int, bool]:
    """One batch of ``notification.created`` past the tenant's cursor, in ``conn``'s
    transaction, under the cursor row's lock: (events made, whether more may follow)."""
    cursor = (
        await conn.execute(select(_C.last_seq).where(_C.tenant_id == tenant).with_for_update())
    ).scalar()
    if cursor is None:
        return 0, False
    found = await nq.fetch_after(conn, tenant, cursor, limit=TAIL_BATCH)
    if not found:
        return 0, False
    endpoints = await subscribed(conn, tenant, "notification.created")
    for item in found if endpoints else ():
        await _record(conn, tenant, "notification.created", _created(item), endpoints, now)
    await conn.execute(
        update(webhook_cursors)
        .where(_C.tenant_id == tenant)
        .values(last_seq=found[-1].seq, updated_at=now)
    )
    return (len(found) if endpoints else 0), len(found) == TAIL_BATCH


def _created(item: Notification) -> bytes:
    return body(
        "notification.created", item.tenant, {"notification": item.public()}, item.created_at
    )


async def replay(
    conn: AsyncConnection, tenant: str, event_id: str, endpoint_id: str | None, now: datetime
) -> list[str]:
    """Queue event ``event_id`` again (same ``webhook-id``): to ``endpoint_id``, else to every
    enabled endpoint subscribed to its type. The endpoints it was queued to."""
    event = (
        await conn.execute(select(_V.type).where(_V.tenant_id == tenant, _V.id == event_id))
    ).first()
    if event is None:
        raise NotFound(f"No webhook event {event_id!r}.", code=Code.WEBHOOK_EVENT_NOT_FOUND)
    if endpoint_id is not None:
        found = (
            await conn.execute(select(_E.id).where(_E.tenant_id == tenant, _E.id == endpoint_id))
        ).first()
        if found is None:
            raise not_found(endpoint_id)
        targets = [endpoint_id]
    else:
        targets = [e.id for e in await subscribed(conn, tenant, event.type) if e.enabled]
    await _deliver_to(conn, tenant, event_id, targets, now)
    return targets


async def events(
    conn: AsyncConnection, tenant: str, *, event_type: str | None, limit: int
) -> list[dict[str, Any]]:
    """The tenant's latest events, newest first, with their bodies."""
    query = select(webhook_events).where(_V.tenant_id == tenant)
    if event_type:
        query = query.where(_V.type == event_type)
    rows = await conn.execute(query.order_by(_V.created_at.desc(), _V.id).limit(limit))
    return [
        {
            "id": r.id,
            "type": r.type,
            "created_at": format_time(as_utc(r.created_at)),
            "payload": orjson.loads(r.body),
        }
        for r in rows
    ]


async def log_entries(
    conn: AsyncConnection, tenant: str, *, endpoint_id: str | None, before: int | None, limit: int
) -> list[dict[str, Any]]:
    """The delivery log, newest first: attempts, give-ups, automatic disabling."""
    L = webhook_log.c
    query = select(webhook_log).where(L.tenant_id == tenant)
    if endpoint_id:
        query = query.where(L.endpoint_id == endpoint_id)
    if before is not None:
        query = query.where(L.id < before)
    rows = await conn.execute(query.order_by(L.id.desc()).limit(limit))
    return [
        {
            "id": r.id,
            "endpoint_id": r.endpoint_id,
            "event_id": r.event_id,
            "kind": r.kind,
            "ok": r.ok,
            "status": r.status,
            "error": r.error,
            "attempt": r.attempt,
            "duration_ms": r.duration_ms,
            "at": format_time(as_utc(r.at)),
        }
        for r in rows
    ]


async def erase_user(conn: AsyncConnection, tenant: str, user: str) -> dict[str, int]:
    """The webhooks' part of a user's erasure: the events of the user's acts (read state,
    pushes, digests) and their queued deliveries. ``notification.created`` events carry the
    notification as published and stay until the retention prunes them."""
    done = await conn.execute(
        delete(webhook_events).where(_V.tenant_id == tenant, _V.user_id == user)
    )
    return {"webhook_events": int(done.rowcount or 0)}
