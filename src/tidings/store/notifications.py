"""Notification queries.

Invariants:
- Each notification gets its tenant's next seq while the caller's write transaction holds the
  tenant's lock — the row lock (PostgreSQL) or the database write lock (SQLite, ``BEGIN
  IMMEDIATE``) — until commit, so seq order is commit order and a rolled-back publish leaves no
  gap. :func:`insert` takes the lock with ``UPDATE tenants … RETURNING``; :func:`insert_group`
  does too for a group of one tenant, reserving a seq per item in the same statement, and
  locks the tenants of a group of several at once, in tenant id order (``SELECT … ORDER BY id
  FOR UPDATE``), so groups from several instances never deadlock; it writes ``last_seq`` back
  before the commit wherever it differs from what the group used (replays burn no seq).
- An idempotency key is looked up only while the tenant is locked, so an earlier holder of the
  key has committed; a key replayed with the same request returns the stored notification and
  burns no seq, with a different request it is refused (``idempotency_key_mismatch``).
"""

from __future__ import annotations

import hashlib
import json
import operator
import sqlite3
import weakref
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, and_, bindparam, delete, exc, exists, false, func, or_, select, update
from sqlalchemy import insert as sa_insert
from sqlalchemy.engine import Connection, Dialect, Row
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.schema import Table

from tidings.domain.notifications import Actor, Audience, NewNotification, Notification
from tidings.errors import Code, NotFound, TidingsError, ValidationFailed
from tidings.store.prepared import Prepared
from tidings.store.tables import audience_targets, notifications, tenants

_N = notifications.c

# Statements built once (SQLAlchemy caches their compiled form per dialect too).
_NEXT_SEQ = (
    update(tenants)
    .where(tenants.c.id == bindparam("tid"))
    .values(last_seq=tenants.c.last_seq + 1)
    .returning(tenants.c.last_seq)
)
_GIVE_BACK_SEQ = (
    update(tenants).where(tenants.c.id == bindparam("tid")).values(last_seq=tenants.c.last_seq - 1)
)
_LOCK_TENANTS = (
    select(tenants.c.id, tenants.c.last_seq)
    .where(tenants.c.id.in_(bindparam("ids", expanding=True)))
    .order_by(tenants.c.id)
    .with_for_update()
)
_RESERVE_SEQS = (
    update(tenants)
    .where(tenants.c.id == bindparam("tid"))
    .values(last_seq=tenants.c.last_seq + bindparam("n"))
    .returning(tenants.c.last_seq)
)
_SET_LAST_SEQ = (
    update(tenants).where(tenants.c.id == bindparam("tid")).values(last_seq=bindparam("top"))
)
# PostgreSQL: a group's audience rows and several tenants' ``last_seq`` each in ONE statement
# over arrays (asyncpg's executemany is one execution per row, on both sides of the socket).
# The tenants' rows are locked already, in id order (_LOCK_TENANTS), so the join's order of
# updates cannot deadlock.
_PG_TARGETS = (
    "INSERT INTO audience_targets (tenant_id, seq, kind, value) "
    "SELECT * FROM unnest($1::varchar[], $2::bigint[], $3::varchar[], $4::varchar[])"
)
_PG_LAST_SEQS = (
    "UPDATE tenants SET last_seq = moved.top "
    "FROM unnest($1::varchar[], $2::bigint[]) AS moved (tid, top) WHERE tenants.id = moved.tid"
)
_BY_KEY = select(notifications).where(
    _N.tenant_id == bindparam("tid"), _N.idempotency_key == bindparam("key")
)
_BY_KEYS = select(notifications).where(
    _N.tenant_id == bindparam("tid"), _N.idempotency_key.in_(bindparam("keys", expanding=True))
)
_INSERT_NOTIFICATION = sa_insert(notifications)
_INSERT_TARGETS = sa_insert(audience_targets)


class _Bulk:
    """``INSERT`` of every column of a table, compiled once per dialect, and each column's bind
    processor (JSON encoding, SQLite's datetime text…): a group's rows go to the driver's
    ``executemany`` as tuples, converted exactly as SQLAlchemy converts them, without its
    per-row parameter processing of a compiled statement (the larger part of a batch's CPU)."""

    def __init__(self, table: Table, dialect: Dialect) -> None:
        compiled = sa_insert(table).compile(dialect=dialect)
        self.sql = compiled.string
        self.columns = tuple(compiled.positiontup or ())
        if sorted(self.columns) != sorted(table.c.keys()):
            raise RuntimeError(f"{table.name}: not a positional INSERT of every column")
        head, _, row = self.sql.rpartition(" VALUES ")
        self._head, self._row = f"{head} VALUES ", row
        # rows per multi-row statement (qmark only): the largest power of two within 999
        self.chunk = 1 << ((_MAX_PARAMETERS // len(self.columns)).bit_length() - 1)
        self._many: dict[int, str] = {}
        self._values = operator.itemgetter(*self.columns)
        self._processors: list[tuple[int, Callable[[Any], Any]]] = []
        for at, name in enumerate(self.columns):
            impl = table.c[name].type.dialect_impl(dialect)
            process = impl.bind_processor(dialect)
            if process is not None and isinstance(impl, JSON) and dialect._json_serializer is None:
                # SQLAlchemy's own JSON processor around ``json.dumps``'s exact output, from an
                # encoder built once instead of once per value
                string = impl._str_impl.bind_processor(dialect)
                process = impl._make_bind_processor(string, _json_dumps)  # type: ignore[no-untyped-call]
            if process is not None:
                self._processors.append((at, process))

    def statements(self, rows: list[tuple[Any, ...]]) -> Iterator[tuple[str, tuple[Any, ...]]]:
        """``rows`` (from :meth:`parameters`) as multi-row ``INSERT … VALUES (…), (…)``
        statements, in order, each with its values flat: SQLite (``qmark``) only. One statement
        steps SQLite's VM once for its rows where ``executemany`` resets and steps it once per
        row (~3 µs a row less, docs/performance.md, session 18). The statements' sizes are
        powers of two up to :attr:`chunk` rows, so a table has at most a handful of shapes in
        the connection's statement cache, and each stays under SQLite's oldest limit of 999
        parameters."""
        chunk, at, total = self.chunk, 0, len(rows)
        while at < total:
            size = chunk
            while size > total - at:
                size //= 2
            part = rows[at : at + size]
            sql = self._many.get(size)
            if sql is None:
                sql = self._many[size] = self._head + ", ".join([self._row] * size)
            yield sql, tuple([value for row in part for value in row])
            at += size

    def parameters(self, rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        """Each row's values in column order, converted. A value that is the very object of
        the row before (a group's ``created_at``, ``None``) reuses that row's conversion."""
        out: list[tuple[Any, ...]] = []
        processors = self._processors
        before: list[Any] = [_NOTHING] * len(self.columns)
        done: list[Any] = [None] * len(self.columns)
        for row in rows:
            values = list(self._values(row))
            for at, process in processors:
                value = values[at]
                if value is not before[at]:
                    before[at] = value
                    done[at] = process(value)
                values[at] = done[at]
            out.append(tuple(values))
        return out


_NOTHING = object()
_MAX_PARAMETERS = 999  # SQLite's limit on a statement's parameters before 3.32 (now 32,766)

_JSON_MARKERS: dict[int, Any] = {}
_JSON_ENCODE = json.encoder.c_make_encoder(  # type: ignore[attr-defined]
    _JSON_MARKERS,
    json.JSONEncoder().default,
    json.encoder.encode_basestring_ascii,
    None,
    ": ",
    ", ",
    False,
    False,
    True,
)


def _json_dumps(value: Any) -> str:
    """``json.dumps(value)``, the same text (its defaults: ASCII, ``", "``/``": "``, circular
    references refused), from the C encoder ``json.dumps`` builds anew on every call."""
    try:
        return "".join(_JSON_ENCODE(value, 0))
    except BaseException:
        _JSON_MARKERS.clear()  # what a failed encoding left behind
        raise


_BULK: weakref.WeakKeyDictionary[Dialect, dict[str, _Bulk]] = weakref.WeakKeyDictionary()


def _bulk(dialect: Dialect, table: Table) -> _Bulk:
    """``table``'s :class:`_Bulk` for ``dialect`` (made once)."""
    by_table = _BULK.setdefault(dialect, {})
    bulk = by_table.get(table.name)
    if bulk is None:
        bulk = by_table[table.name] = _Bulk(table, dialect)
    return bulk


def _mismatch() -> ValidationFailed:
    return ValidationFailed(
        "This Idempotency-Key was used for a different notification.",
        code=Code.IDEMPOTENCY_KEY_MISMATCH,
    )


def _unknown_tenant(tenant: str) -> NotFound:
    return NotFound(f"Tenant {tenant!r} does not exist.", code=Code.TENANT_NOT_FOUND)


def _stage(
    tenant: str,
    seq: int,
    new: NewNotification,
    key: str | None,
    fingerprint: bytes | None,
    now: datetime,
    rows: list[dict[str, Any]],
    targets: list[dict[str, Any]],
) -> Notification:
    """The notification ``new`` becomes at ``seq``; its row and target rows are appended."""
    audience, l10n, actor = new.audience, new.l10n, new.actor  # each read once
    rows.append(
        {
            "tenant_id": tenant,
            "seq": seq,
            "type": new.type,
            "title": new.title,
            "body": new.body,
            "data": new.data,
            "link": new.link,
            "audience": audience.public() if audience else None,
            "targeted": audience is not None,
            "idempotency_key": key,
            "fingerprint": fingerprint,
            "created_at": now,
            "actor_id": actor.id if actor else None,
            "actor_name": actor.name if actor else None,
            "group_key": new.group,
            "l10n": l10n,
        }
    )
    if audience is not None:
        targets.extend(
            {"tenant_id": tenant, "seq": seq, "kind": "u", "value": u} for u in audience.users
        )
        targets.extend(
            {"tenant_id": tenant, "seq": seq, "kind": "r", "value": r} for r in audience.roles
        )
    return Notification(
        tenant=tenant,
        seq=seq,
        type=new.type,
        title=new.title,
        body=new.body,
        data=dict(new.data),
        link=new.link,
        audience=audience,
        created_at=now,
        actor=actor,
        group=new.group,
        l10n=l10n,
    )


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
    seq = (await conn.execute(_NEXT_SEQ, {"tid": tenant})).scalar_one_or_none()
    if seq is None:
        raise _unknown_tenant(tenant)
    fingerprint = hashlib.sha256(new.fingerprint()).digest()
    if idempotency_key is not None:
        # The tenant row is locked now, so an earlier holder of this key has committed.
        row = (await conn.execute(_BY_KEY, {"tid": tenant, "key": idempotency_key})).first()
        if row is not None:
            await conn.execute(_GIVE_BACK_SEQ, {"tid": tenant})
            if row.fingerprint != fingerprint:
                raise _mismatch()
            return _from_row(row), False
    rows: list[dict[str, Any]] = []
    targets: list[dict[str, Any]] = []
    stored = _stage(tenant, seq, new, idempotency_key, fingerprint, now, rows, targets)
    await conn.execute(_INSERT_NOTIFICATION, rows[0])
    if targets:
        await conn.execute(_INSERT_TARGETS, targets)
    return stored, True


@dataclass(frozen=True, slots=True)
class Request:
    """One publish request of a group: all of its notifications are stored, or none."""

    tenant: str
    items: Sequence[NewNotification]
    keys: Sequence[str | None]


Outcome = list[tuple[Notification, bool]] | TidingsError
"""A request's result in a group: (notification, created) per item, or why it was refused."""


async def insert_group(
    conn: AsyncConnection, requests: Sequence[Request], *, now: datetime
) -> tuple[list[Outcome], list[Notification]]:
    """Store several publish requests in the caller's write transaction, in order.

    Returns one outcome per request and the new notifications (in seq order per tenant). A
    request for an unknown tenant or with a mismatched idempotency key is refused alone
    (nothing of it is written); the others proceed. A key repeated within the group is a
    replay of its first use. Statements: one lock of the group's tenants (for one tenant, with
    its seqs reserved), one key lookup per tenant with keys, one executemany of notification
    rows and one of audience targets, and ``last_seq`` writes where they differ from what was
    used (several tenants; replays); on PostgreSQL the targets and the ``last_seq`` writes are
    one statement each, over arrays. The steps are :func:`_group_steps`' (shared with
    :func:`insert_group_sync`).
    """
    steps = _group_steps(conn.dialect, requests, now)
    answer: Any = None
    while True:
        try:
            driver, statement, params = steps.send(answer)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        if isinstance(statement, _Bulk):
            answer = await conn.exec_driver_sql(statement.sql, params)
        elif driver:
            answer = await conn.exec_driver_sql(statement, params)
        else:
            answer = await conn.execute(statement, params)


def insert_group_sync(
    conn: Connection, requests: Sequence[Request], *, now: datetime
) -> tuple[list[Outcome], list[Notification]]:
    """:func:`insert_group` on a synchronous SQLite connection (``Store.run_write``: on the
    loop, or on the writer thread when another process holds the lock): the same steps, the
    same statements, in the caller's transaction.

    The statements whose parameters and results are plain values (the seq reservation, the
    lock of several tenants and ``last_seq`` writes, the prepared bulk inserts, as multi-row
    ``INSERT``s: :meth:`_Bulk.statements`) run on the connection's DBAPI cursor, compiled once
    (:func:`_raw_statement`): SQLAlchemy's per-statement machinery was most of a lone
    publish's transaction (docs/performance.md, session 7). Key lookups, whose rows are typed,
    run through ``conn``. A DBAPI error is raised as SQLAlchemy raises it
    (:meth:`sqlalchemy.exc.DBAPIError.instance`), so callers see the same exceptions either
    way. Statements run this way bypass SQLAlchemy's cursor events
    and echo."""
    steps = _group_steps(conn.dialect, requests, now)
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    answer: Any = None
    try:
        while True:
            try:
                driver, statement, params = steps.send(answer)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]
            if isinstance(statement, _Bulk):
                for sql, values in statement.statements(params):
                    _on_cursor(cursor, sql, values)
                answer = None
                continue
            if driver:
                answer = _on_cursor(cursor, statement, params)
                continue
            raw = _raw_statement(conn.dialect, statement)
            if raw is None:
                answer = conn.execute(statement, params)
            elif isinstance(params, list):
                names = raw.names
                answer = _on_cursor(cursor, raw.sql, [tuple(p[n] for n in names) for p in params])
            elif raw.prepared is not None:  # an IN list: rendered once per length
                answer = _Rows(raw.prepared.rows(conn, params))
            else:
                answer = _on_cursor(cursor, raw.sql, tuple(params[n] for n in raw.names))
    finally:
        cursor.close()


class _Rows:
    """A DBAPI statement's fetched rows, answering what :func:`_group_steps` asks of a result."""

    __slots__ = ("rows",)

    def __init__(self, rows: list[Any]) -> None:
        self.rows = rows

    def __iter__(self) -> Iterator[Any]:
        return iter(self.rows)

    def scalar_one_or_none(self) -> Any:
        if len(self.rows) > 1:
            raise exc.MultipleResultsFound("Multiple rows were found when one or none was required")
        return self.rows[0][0] if self.rows else None


def _on_cursor(cursor: Any, sql: str, params: Any) -> _Rows:
    """``sql`` on the DBAPI ``cursor`` (``executemany`` for a list of rows); its rows."""
    try:
        if isinstance(params, list):
            cursor.executemany(sql, params)
            return _Rows([])
        cursor.execute(sql, params)
        return _Rows(cursor.fetchall())
    except sqlite3.Error as error:
        raise exc.DBAPIError.instance(sql, params, error, sqlite3.Error) from error


# Statements of _group_steps that insert_group_sync runs on the cursor: plain parameters
# (strings, integers; an IN list of them), plain results (strings, integers).
_RAW_STATEMENTS = frozenset({id(_RESERVE_SEQS), id(_SET_LAST_SEQ), id(_LOCK_TENANTS)})


class _RawStatement:
    """A statement compiled once for a dialect: its SQL and parameter names in order, or (a
    SELECT with an ``IN`` list: the lock of several tenants) a :class:`Prepared`, which renders
    the list once per length."""

    __slots__ = ("compiled", "names", "prepared", "sql")

    def __init__(self, statement: Any, dialect: Dialect) -> None:
        self.compiled = statement.compile(dialect=dialect)
        self.sql: str = self.compiled.string
        self.names = tuple(self.compiled.positiontup or ())
        expanding = any(bind.expanding for bind in self.compiled.binds.values())
        self.prepared = Prepared(statement) if expanding else None


_RAW: dict[tuple[int, str], _RawStatement] = {}


def _raw_statement(dialect: Dialect, statement: Any) -> _RawStatement | None:
    """``statement`` compiled for ``dialect`` (once), or ``None`` when it is not one to run on
    the cursor."""
    if id(statement) not in _RAW_STATEMENTS or dialect.paramstyle != "qmark":
        return None
    key = (id(statement), dialect.name)
    found = _RAW.get(key)
    if found is None:
        found = _RAW[key] = _RawStatement(statement, dialect)
    return found


_Step = tuple[bool, Any, Any]
"""(driver SQL?, the statement, its parameters): what :func:`_group_steps` asks to run; it is
sent back the statement's result. A :class:`_Bulk` statement is a table's rows as tuples: the
async driver runs its ``executemany``, the synchronous one its multi-row statements."""


def _group_steps(
    dialect: Dialect, requests: Sequence[Request], now: datetime
) -> Generator[_Step, Any, tuple[list[Outcome], list[Notification]]]:
    """The statements of :func:`insert_group`, one ``yield`` each, and all between them."""
    tenant_ids = sorted({r.tenant for r in requests})
    if len(tenant_ids) == 1:
        # One tenant: lock it and reserve a seq for every item in one statement; what replays
        # leave unused is written back below.
        tid, reserve = tenant_ids[0], sum(len(r.items) for r in requests)
        held = (yield (False, _RESERVE_SEQS, {"tid": tid, "n": reserve})).scalar_one_or_none()
        last = {} if held is None else {tid: int(held) - reserve}
        stored_top = {} if held is None else {tid: int(held)}
    else:
        last = {
            str(tid): int(seq) for tid, seq in (yield (False, _LOCK_TENANTS, {"ids": tenant_ids}))
        }
        stored_top = dict(last)
    wanted: dict[str, set[str]] = {}
    for request in requests:
        if request.tenant in last:
            wanted.setdefault(request.tenant, set()).update(k for k in request.keys if k)
    known: dict[tuple[str, str], tuple[Notification, bytes]] = {}
    for tid, keys in wanted.items():
        if keys:
            found = yield (False, _BY_KEYS, {"tid": tid, "keys": sorted(keys)})
            for row in found:
                known[(tid, row.idempotency_key)] = (_from_row(row), row.fingerprint)
    top = dict(last)
    outcomes: list[Outcome] = []
    rows: list[dict[str, Any]] = []
    targets: list[dict[str, Any]] = []
    published: list[Notification] = []
    for request in requests:
        tenant = request.tenant
        if tenant not in top:
            outcomes.append(_unknown_tenant(tenant))
            continue
        seq = top[tenant]
        results: list[tuple[Notification, bool]] = []
        staged: dict[tuple[str, str], tuple[Notification, bytes]] = {}
        my_rows: list[dict[str, Any]] = []
        my_targets: list[dict[str, Any]] = []
        refused: TidingsError | None = None
        for new, key in zip(request.items, request.keys, strict=True):
            if key is None:  # a fingerprint only tells a key's honest retry from a reuse
                seq += 1
                results.append(
                    (_stage(tenant, seq, new, None, None, now, my_rows, my_targets), True)
                )
                continue
            fingerprint = hashlib.sha256(new.fingerprint()).digest()
            earlier = staged.get((tenant, key)) or known.get((tenant, key))
            if earlier is not None:
                if earlier[1] != fingerprint:
                    refused = _mismatch()
                    break
                results.append((earlier[0], False))
                continue
            seq += 1
            stored = _stage(tenant, seq, new, key, fingerprint, now, my_rows, my_targets)
            results.append((stored, True))
            staged[(tenant, key)] = (stored, fingerprint)
        if refused is not None:
            outcomes.append(refused)
            continue
        top[tenant] = seq
        known.update(staged)
        rows += my_rows
        targets += my_targets
        published += [n for n, created in results if created]
        outcomes.append(results)
    if rows:
        bulk = _bulk(dialect, notifications)
        yield (True, bulk, bulk.parameters(rows))
    arrays = dialect.name == "postgresql"
    if targets and arrays:  # one statement, not one execution a row (asyncpg's executemany)
        columns = ("tenant_id", "seq", "kind", "value")
        yield (True, _PG_TARGETS, tuple([t[c] for t in targets] for c in columns))
    elif targets:
        bulk = _bulk(dialect, audience_targets)
        yield (True, bulk, bulk.parameters(targets))
    moved = [(tid, seq) for tid, seq in top.items() if seq != stored_top[tid]]
    if moved and arrays:
        yield (True, _PG_LAST_SEQS, ([tid for tid, _ in moved], [seq for _, seq in moved]))
    elif moved:
        yield (False, _SET_LAST_SEQ, [{"tid": tid, "top": seq} for tid, seq in moved])
    return outcomes, published


async def latest_seq(conn: AsyncConnection, tenant: str) -> int:
    """The highest committed seq of ``tenant`` (0 when none; the tenant must exist)."""
    value = (
        await conn.execute(select(tenants.c.last_seq).where(tenants.c.id == tenant))
    ).scalar_one_or_none()
    if value is None:
        raise NotFound(f"Tenant {tenant!r} does not exist.", code=Code.TENANT_NOT_FOUND)
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
    """Delete notifications created before ``cutoff`` (all tenants). Returns how many were.

    The old rows are a range of the index by time, streamed: what is kept is each tenant's
    highest such seq, so a large backlog costs no memory here. (A ``GROUP BY tenant_id`` would
    keep less still, but SQLite, without statistics, answers it with a scan of the whole table
    in key order.)"""
    from tidings.store.tables import receipts

    doomed = select(_N.tenant_id, _N.seq).where(_N.created_at < cutoff)
    by_tenant: dict[str, int] = {}
    count = 0
    async for tenant_id, seq in await conn.stream(doomed):
        count += 1
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
    return count


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
        actor=None
        if row.actor_id is None
        else Actor.model_construct(id=row.actor_id, name=row.actor_name),
        group=row.group_key,
        l10n=row.l10n or None,
    )


from_row = _from_row
