"""Notification queries.

Invariant: :func:`insert` assigns the tenant's next seq with ``UPDATE tenants SET last_seq =
last_seq + 1 … RETURNING`` inside the caller's write transaction. The row lock (PostgreSQL) or
the database write lock (SQLite) is held until commit, so seq order is commit order and a
rolled-back publish leaves no gap.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, exists, false, func, or_, select, update
from sqlalchemy import insert as sa_insert
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from tidings.domain.notifications import Audience, NewNotification, Notification
from tidings.errors import NotFound, ValidationFailed
from tidings.store.tables import audience_targets, notifications, tenants

_N = notifications.c


async def insert(
    conn: AsyncConnection,
    tenant: str,
    new: NewNotification,
    *,
    now: datetime,
    idempotency_key: str | None = None,
) -> tuple[Notification, bool]:
    """Store ``new`` as the tenant's next notification. Returns it and whether it is new.

    With an ``idempotency_key`` seen before, returns the earlier notification (``False``), or
    raises ``ValidationFailed(idempotency_key_mismatch)`` when the request differs.
    """
    seq = (
        await conn.execute(
            update(tenants)
            .where(tenants.c.id == tenant)
            .values(last_seq=tenants.c.last_seq + 1)
            .returning(tenants.c.last_seq)
        )
    ).scalar_one_or_none()
    if seq is None:
        raise NotFound(f"Tenant {tenant!r} does not exist.", code="tenant_not_found")
    fingerprint = hashlib.sha256(new.fingerprint()).digest()
    if idempotency_key is not None:
        # The tenant row is locked now, so an earlier holder of this key has committed.
        row = (
            await conn.execute(
                select(notifications).where(
                    _N.tenant_id == tenant, _N.idempotency_key == idempotency_key
                )
            )
        ).first()
        if row is not None:
            await conn.execute(
                update(tenants)
                .where(tenants.c.id == tenant)
                .values(last_seq=tenants.c.last_seq - 1)
            )
            if row.fingerprint != fingerprint:
                raise ValidationFailed(
                    "This Idempotency-Key was used for a different notification.",
                    code="idempotency_key_mismatch",
                )
            return _from_row(row), False
    audience = new.audience
    await conn.execute(
        sa_insert(notifications).values(
            tenant_id=tenant,
            seq=seq,
            type=new.type,
            title=new.title,
            body=new.body,
            data=new.data,
            link=new.link,
            audience=audience.public() if audience else None,
            targeted=audience is not None,
            idempotency_key=idempotency_key,
            fingerprint=fingerprint,
            created_at=now,
        )
    )
    if audience is not None:
        targets = [
            {"tenant_id": tenant, "seq": seq, "kind": "u", "value": u} for u in audience.users
        ]
        targets += [
            {"tenant_id": tenant, "seq": seq, "kind": "r", "value": r} for r in audience.roles
        ]
        await conn.execute(sa_insert(audience_targets), targets)
    stored = Notification(
        tenant=tenant,
        seq=seq,
        type=new.type,
        title=new.title,
        body=new.body,
        data=dict(new.data),
        link=new.link,
        audience=audience,
        created_at=now,
    )
    return stored, True


async def latest_seq(conn: AsyncConnection, tenant: str) -> int:
    """The highest committed seq of ``tenant`` (0 when none; the tenant must exist)."""
    value = (
        await conn.execute(select(tenants.c.last_seq).where(tenants.c.id == tenant))
    ).scalar_one_or_none()
    if value is None:
        raise NotFound(f"Tenant {tenant!r} does not exist.", code="tenant_not_found")
    return int(value)


async def latest_seqs(conn: AsyncConnection, tenant_ids: Sequence[str]) -> dict[str, int]:
    """The highest committed seq of each existing tenant among ``tenant_ids``, in one query."""
    if not tenant_ids:
        return {}
    rows = await conn.execute(
        select(tenants.c.id, tenants.c.last_seq).where(tenants.c.id.in_(list(tenant_ids)))
    )
    return {str(tenant_id): int(seq) for tenant_id, seq in rows}


async def oldest_seq(conn: AsyncConnection, tenant: str) -> int | None:
    """The lowest seq still retained, or ``None`` when the tenant has none."""
    value = (
        await conn.execute(select(func.min(_N.seq)).where(_N.tenant_id == tenant))
    ).scalar_one_or_none()
    return None if value is None else int(value)


async def fetch_after(
    conn: AsyncConnection, tenant: str, after: int, *, upto: int | None = None, limit: int = 500
) -> list[Notification]:
    """Notifications with ``after < seq <= upto``, oldest first, at most ``limit``."""
    query = select(notifications).where(_N.tenant_id == tenant, _N.seq > after)
    if upto is not None:
        query = query.where(_N.seq <= upto)
    rows = (await conn.execute(query.order_by(_N.seq).limit(limit))).all()
    return [_from_row(r) for r in rows]


async def get(conn: AsyncConnection, tenant: str, seq: int) -> Notification | None:
    row = (
        await conn.execute(select(notifications).where(_N.tenant_id == tenant, _N.seq == seq))
    ).first()
    return None if row is None else _from_row(row)


def visible(tenant: str, user: str, roles: Sequence[str]) -> ColumnElement[bool]:
    """SQL condition: the notification row is visible to ``user`` with ``roles``."""
    target = audience_targets.c
    role_match: ColumnElement[bool] = (
        and_(target.kind == "r", target.value.in_(list(roles))) if roles else false()
    )
    return and_(
        _N.tenant_id == tenant,
        or_(
            _N.targeted.is_(False),
            exists().where(
                target.tenant_id == _N.tenant_id,
                target.seq == _N.seq,
                or_(and_(target.kind == "u", target.value == user), role_match),
            ),
        ),
    )


async def prune(conn: AsyncConnection, cutoff: datetime) -> int:
    """Delete notifications created before ``cutoff`` (all tenants). Returns how many."""
    from tidings.store.tables import receipts

    doomed = select(_N.tenant_id, _N.seq).where(_N.created_at < cutoff)
    rows = (await conn.execute(doomed)).all()
    if not rows:
        return 0
    by_tenant: dict[str, int] = {}
    for tenant_id, seq in rows:
        by_tenant[tenant_id] = max(by_tenant.get(tenant_id, 0), int(seq))
    for tenant_id, top in by_tenant.items():
        await conn.execute(
            delete(audience_targets).where(
                audience_targets.c.tenant_id == tenant_id, audience_targets.c.seq <= top
            )
        )
        await conn.execute(
            delete(receipts).where(receipts.c.tenant_id == tenant_id, receipts.c.seq <= top)
        )
        await conn.execute(delete(notifications).where(_N.tenant_id == tenant_id, _N.seq <= top))
    return len(rows)


def _from_row(row: Row[Any]) -> Notification:
    audience = Audience.model_validate(row.audience) if row.audience else None
    return Notification(
        tenant=row.tenant_id,
        seq=int(row.seq),
        type=row.type,
        title=row.title,
        body=row.body,
        data=row.data,
        link=row.link,
        audience=audience,
        created_at=row.created_at,
    )


from_row = _from_row
