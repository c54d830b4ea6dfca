"""Outbox helpers: queue a notification in the host's own database transaction (docs/outbox.md).

:func:`outbox_row` builds the row (``tenant``, and ``payload``: the body of
``POST /v1/notifications``, checked by :mod:`._payload`); :func:`insert_outbox` /
:func:`insert_outbox_async` insert it into ``tidings_outbox`` through the connection the caller's
transaction runs on, and answer the row's id. The row commits or rolls back with that
transaction, so the notification exists exactly when the business change does; tidings publishes
each committed row once.

Invariants:

- the insert goes through the caller's own connection, never one of ours: an ``Engine`` (which
  would commit on a connection of its own) is refused with ``TypeError``, and so is an asyncpg
  connection outside a transaction (asyncpg commits every statement outside one);
- the payload is validated before anything is sent (``ValueError``), so a row tidings would move
  to ``tidings_outbox_dead`` is refused in the caller's code instead;
- no database driver is imported here: SQLAlchemy is imported only when an SQLAlchemy object is
  passed in (the caller has it), a DB-API cursor is used through its ``execute``/``fetchone``.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tidings.client._payload import NotificationLimits, notification_payload

__all__ = ["OutboxRow", "insert_outbox", "insert_outbox_async", "outbox_row"]

TENANT = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
_INSERT = "INSERT INTO tidings_outbox (tenant, payload) VALUES ({}, CAST({} AS jsonb)) RETURNING id"
PLACEHOLDERS = {
    "format": ("%s", "%s"),  # psycopg 3, psycopg2, pg8000
    "pyformat": ("%s", "%s"),
    "numeric_dollar": ("$1", "$2"),  # asyncpg, and adapters of it
    "qmark": ("?", "?"),
    "numeric": (":1", ":2"),
    "named": (":tenant", ":payload"),
}
"""SQL placeholders per DB-API ``paramstyle`` (PEP 249)."""


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """One row of ``tidings_outbox``: the tidings ``tenant`` and the notification ``payload``
    (what ``POST /v1/notifications`` takes, already validated). ``payload_json`` is the text
    stored in the ``jsonb`` column."""

    tenant: str
    payload: Mapping[str, Any]

    @property
    def payload_json(self) -> str:
        return json.dumps(self.payload, ensure_ascii=False, allow_nan=False, separators=(",", ":"))

    def statement(self, paramstyle: str = "named") -> tuple[str, Any]:
        """``(sql, parameters)`` for a driver of that DB-API ``paramstyle``: for drivers the
        insert functions do not know (``INSERT … RETURNING id``)."""
        try:
            tenant, payload = PLACEHOLDERS[paramstyle]
        except KeyError:
            raise ValueError(f"unknown paramstyle {paramstyle!r}") from None
        sql = _INSERT.format(tenant, payload)
        if paramstyle == "named":
            return sql, {"tenant": self.tenant, "payload": self.payload_json}
        return sql, (self.tenant, self.payload_json)


def outbox_row(
    tenant: str,
    type: str,
    title: str,
    *,
    body: str = "",
    data: Mapping[str, Any] | None = None,
    link: str | None = None,
    audience: Mapping[str, Sequence[str]] | None = None,
    actor: str | Mapping[str, Any] | None = None,
    group: str | None = None,
    limits: NotificationLimits = NotificationLimits(),
) -> OutboxRow:
    """The outbox row for one publish; ``ValueError`` for what tidings would refuse (with
    ``limits``: tidings' defaults unless given). The fields are those of
    :meth:`Client.publish`."""
    if not isinstance(tenant, str) or not TENANT.fullmatch(tenant):
        raise ValueError(f"tenant {tenant!r}: 1-63 of a-z 0-9 and '-', not starting with '-'")
    payload = notification_payload(
        type,
        title,
        body=body,
        data=data,
        link=link,
        audience=audience,
        actor=actor,
        group=group,
        limits=limits,
    )
    return OutboxRow(tenant, payload)


def _sqlalchemy_kind(conn: object) -> str | None:
    """``"engine"``, ``"sync"`` (a Connection or Session), ``"async"`` (an AsyncConnection or
    AsyncSession) or ``None`` (not SQLAlchemy's). SQLAlchemy is imported only if ``conn`` comes
    from it."""
    if not type(conn).__module__.startswith("sqlalchemy."):
        return None
    from sqlalchemy import Connection, Engine
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
    from sqlalchemy.orm import Session

    if isinstance(conn, Engine | AsyncEngine):
        return "engine"
    if isinstance(conn, Connection | Session):
        return "sync"
    if isinstance(conn, AsyncConnection | AsyncSession):
        return "async"
    return None


def _paramstyle(cursor: object, given: str | None) -> str:
    if given is not None:
        return given
    driver = sys.modules.get(type(cursor).__module__.partition(".")[0])
    style = getattr(driver, "paramstyle", "format")
    return style if isinstance(style, str) else "format"


def insert_outbox(conn: Any, row: OutboxRow, *, paramstyle: str | None = None) -> int:
    """Insert ``row`` through ``conn`` in its current transaction and return the row's id.

    ``conn``: an SQLAlchemy ``Connection`` or ``Session`` (sync), or a DB-API (PEP 249) cursor or
    connection of a PostgreSQL driver (psycopg, psycopg2, pg8000). The placeholders follow the
    driver's ``paramstyle`` (``format`` when it declares none); ``paramstyle=`` overrides it.
    Nothing is committed here: the caller's commit publishes, its rollback forgets.
    """
    kind = _sqlalchemy_kind(conn)
    if kind == "engine":
        raise TypeError("pass the Connection or Session of your transaction, not the Engine")
    if kind == "async":
        raise TypeError("an SQLAlchemy AsyncConnection/AsyncSession: use insert_outbox_async")
    if kind == "sync":
        from sqlalchemy import text

        sql, params = row.statement("named")
        return int(conn.execute(text(sql), params).scalar_one())
    cursor = conn
    if not callable(getattr(conn, "fetchone", None)) and callable(getattr(conn, "cursor", None)):
        cursor = conn.cursor()  # a DB-API connection: a cursor of its (current) transaction
    if not callable(getattr(cursor, "execute", None)):
        raise TypeError(
            f"insert_outbox takes an SQLAlchemy Connection/Session or a DB-API cursor, "
            f"not a {type(conn).__name__}"
        )
    sql, params = row.statement(_paramstyle(cursor, paramstyle))
    cursor.execute(sql, params)
    found = cursor.fetchone()
    if cursor is not conn and callable(getattr(cursor, "close", None)):
        cursor.close()
    return int(found[0])


async def insert_outbox_async(conn: Any, row: OutboxRow) -> int:
    """:func:`insert_outbox` for asyncio: an SQLAlchemy ``AsyncConnection`` or ``AsyncSession``,
    or an asyncpg ``Connection`` inside ``conn.transaction()`` (outside one asyncpg would commit
    the row on its own: refused with ``TypeError``)."""
    kind = _sqlalchemy_kind(conn)
    if kind == "engine":
        raise TypeError(
            "pass the AsyncConnection or AsyncSession of your transaction, not the engine"
        )
    if kind == "sync":
        raise TypeError("an SQLAlchemy Connection/Session: use insert_outbox")
    if kind == "async":
        from sqlalchemy import text

        sql, params = row.statement("named")
        result = await conn.execute(text(sql), params)
        return int(result.scalar_one())
    if type(conn).__module__.startswith("asyncpg"):
        if not conn.is_in_transaction():
            raise TypeError(
                "the asyncpg connection is not in a transaction: insert inside "
                "`async with conn.transaction():`, with the change it announces"
            )
        sql, params = row.statement("numeric_dollar")
        return int(await conn.fetchval(sql, *params))
    raise TypeError(
        "insert_outbox_async takes an SQLAlchemy AsyncConnection/AsyncSession or an asyncpg "
        f"connection, not a {type(conn).__name__}"
    )
