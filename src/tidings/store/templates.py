"""Per-type notification templates and a tenant's message overrides (issue 10 item 5).

Every function takes a connection of the caller's transaction and filters on the tenant
(invariant 4). The rows hold template *sources*; compiling and rendering them is
:mod:`tidings.domain.templating`'s, checking them the service's (:mod:`tidings.templates`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.errors import Code, NotFound
from tidings.store.tables import message_overrides, templates
from tidings.store.upsert import upsert

_T = templates.c
_M = message_overrides.c


@dataclass(frozen=True, slots=True)
class TemplateSet:
    """A type's templates: ``locales`` = ``{locale: {"title": src, "body": src}}``."""

    tenant: str
    type: str
    default_locale: str
    locales: dict[str, dict[str, str]]
    updated_at: datetime

    def public(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "default_locale": self.default_locale,
            "locales": self.locales,
            "updated_at": self.updated_at.isoformat().replace("+00:00", "Z"),
        }


def _set(row: Any) -> TemplateSet:
    return TemplateSet(row.tenant_id, row.type, row.default_locale, row.locales, row.updated_at)


async def get(conn: AsyncConnection, tenant: str, type_: str) -> TemplateSet | None:
    row = (
        await conn.execute(select(templates).where(_T.tenant_id == tenant, _T.type == type_))
    ).first()
    return None if row is None else _set(row)


async def list_for(conn: AsyncConnection, tenant: str) -> list[TemplateSet]:
    rows = await conn.execute(select(templates).where(_T.tenant_id == tenant).order_by(_T.type))
    return [_set(r) for r in rows]


async def count(conn: AsyncConnection, tenant: str) -> int:
    query = select(func.count()).select_from(templates).where(_T.tenant_id == tenant)
    return int((await conn.execute(query)).scalar_one())


async def put(conn: AsyncConnection, found: TemplateSet) -> TemplateSet:
    """Create or replace a type's templates."""
    values = {
        "default_locale": found.default_locale,
        "locales": found.locales,
        "updated_at": found.updated_at,
    }
    stmt = upsert(conn)(templates).values(tenant_id=found.tenant, type=found.type, **values)
    try:
        await conn.execute(
            stmt.on_conflict_do_update(index_elements=["tenant_id", "type"], set_=values)
        )
    except IntegrityError as error:  # the only constraint left: the tenant must exist
        raise NotFound(
            f"Tenant {found.tenant!r} does not exist.", code=Code.TENANT_NOT_FOUND
        ) from error
    return found


async def remove(conn: AsyncConnection, tenant: str, type_: str) -> bool:
    done = await conn.execute(delete(templates).where(_T.tenant_id == tenant, _T.type == type_))
    return bool(done.rowcount)


# -- message overrides ---------------------------------------------------------------------------


async def overrides(conn: AsyncConnection, tenant: str) -> dict[str, dict[str, str]]:
    """``{locale: {key: text}}`` of the tenant."""
    rows = await conn.execute(
        select(_M.locale, _M.messages).where(_M.tenant_id == tenant).order_by(_M.locale)
    )
    return {r.locale: dict(r.messages or {}) for r in rows}


async def put_overrides(
    conn: AsyncConnection, tenant: str, locale: str, messages: dict[str, str], *, now: datetime
) -> None:
    """Replace the tenant's overrides of ``locale`` (an empty dict removes them)."""
    if not messages:
        await conn.execute(
            delete(message_overrides).where(_M.tenant_id == tenant, _M.locale == locale)
        )
        return
    values = {"messages": messages, "updated_at": now}
    stmt = upsert(conn)(message_overrides).values(tenant_id=tenant, locale=locale, **values)
    try:
        await conn.execute(
            stmt.on_conflict_do_update(index_elements=["tenant_id", "locale"], set_=values)
        )
    except IntegrityError as error:
        raise NotFound(f"Tenant {tenant!r} does not exist.", code=Code.TENANT_NOT_FOUND) from error
