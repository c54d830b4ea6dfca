"""A statement prepared for the DBAPI cursor gives SQLAlchemy's rows (store/prepared.py).

The view reads of a reconnect storm (store/snapshot.py) run this way; the property holds the
rows — values, their Python types and the columns by key — equal to ``conn.execute``'s for any
data and any lengths of the ``IN`` lists (roles, muted types), the shapes rendered once each."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st
from sqlalchemy import Connection, Engine, bindparam, exc, insert, select, text
from sqlalchemy.dialects import postgresql

from tests.core.schema_support import sqlite_engine
from tidings.store import snapshot as sq
from tidings.store.prepared import SHAPES, Prepared
from tidings.store.tables import (
    audience_targets,
    notifications,
    read_state,
    receipts,
    tenants,
)

USERS = ("ann", "bob", "cy")
TYPES = ("booking_created", "payment_failed", "system", "party_starts")
ROLES = ("staff", "owner", "crew")
T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    yield from sqlite_engine(tmp_path_factory.mktemp("prepared"))


notification = st.fixed_dictionaries(
    {
        "type": st.sampled_from(TYPES),
        "audience": st.one_of(
            st.none(),
            st.tuples(st.sampled_from(("u", "r")), st.sampled_from(USERS + ROLES)),
        ),
        "actor": st.one_of(st.none(), st.sampled_from(USERS)),
        "data": st.dictionaries(st.sampled_from("abc"), st.integers(-3, 3), max_size=2),
        "l10n": st.one_of(st.none(), st.just({"de": {"title": "Buchung", "body": ""}})),
        "fingerprint": st.one_of(st.none(), st.binary(min_size=32, max_size=32)),
        "receipt": st.one_of(
            st.none(),
            st.tuples(st.sampled_from(USERS), st.booleans(), st.booleans(), st.booleans()),
        ),
    }
)


def _fill(conn: Connection, items: list[dict[str, Any]], marks: dict[str, int]) -> None:
    for table in (receipts, audience_targets, notifications, read_state, tenants):
        conn.execute(table.delete())
    conn.execute(insert(tenants).values(id="t", name="t", last_seq=len(items), created_at=T0))
    for seq, item in enumerate(items, start=1):
        audience = item["audience"]
        conn.execute(
            insert(notifications).values(
                tenant_id="t",
                seq=seq,
                type=item["type"],
                title=f"n{seq}",
                body="A bounce house for Saturday",
                data=item["data"],
                link=None if seq % 2 else f"/bookings/{seq}",
                audience=None
                if audience is None
                else {"users" if audience[0] == "u" else "roles": [audience[1]]},
                targeted=audience is not None,
                idempotency_key=None if seq % 3 else f"k{seq}",
                fingerprint=item["fingerprint"],
                created_at=T0 + timedelta(seconds=seq),
                actor_id=item["actor"],
                actor_name=None if item["actor"] is None else item["actor"].title(),
                group_key=None,
                l10n=item["l10n"],
            )
        )
        if audience is not None:
            conn.execute(
                insert(audience_targets).values(
                    tenant_id="t", seq=seq, kind=audience[0], value=audience[1]
                )
            )
        if item["receipt"] is not None:
            user, read, archived, unread = item["receipt"]
            conn.execute(
                insert(receipts).values(
                    tenant_id="t",
                    user_id=user,
                    seq=seq,
                    read_at=T0 if read else None,
                    archived_at=T0 if archived else None,
                    unread_at=T0 if unread else None,
                    snoozed_until=None,
                )
            )
    for user, mark in marks.items():
        conn.execute(
            insert(read_state).values(tenant_id="t", user_id=user, watermark=mark, updated_at=T0)
        )


def _typed(rows: Any) -> list[list[tuple[type, Any]]]:
    return [[(type(v), v) for v in row] for row in rows]


@hyp_settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    items=st.lists(notification, max_size=12),
    marks=st.dictionaries(st.sampled_from(USERS), st.integers(0, 12), max_size=3),
    user=st.sampled_from(USERS),
    roles=st.lists(st.sampled_from(ROLES), unique=True, max_size=3),
    muted=st.lists(st.sampled_from(TYPES), unique=True, max_size=3),
    upto=st.integers(0, 14),
    size=st.integers(1, 6),
)
def test_the_view_statements_give_sqlalchemys_rows(
    engine: Engine,
    items: list[dict[str, Any]],
    marks: dict[str, int],
    user: str,
    roles: list[str],
    muted: list[str],
    upto: int,
    size: int,
) -> None:
    params = {"tid": "t", "uid": user, "roles": roles, "muted": muted, "upto": upto, "size": size}
    with engine.begin() as conn:
        _fill(conn, items, marks)
        for statement in (sq._SNAPSHOT_COUNT, sq._SNAPSHOT_LATEST):
            expected = conn.execute(statement, params).all()
            got = Prepared(statement).rows(conn, params)
            assert _typed(got) == _typed(expected)
        latest = conn.execute(sq._SNAPSHOT_LATEST, params).all()
        for mine, theirs in zip(
            Prepared(sq._SNAPSHOT_LATEST).rows(conn, params), latest, strict=True
        ):
            assert mine._asdict() == dict(theirs._mapping)  # the columns by key
        assert sq.snapshot_sync(
            conn, ("t", user, roles, muted, upto), size=size
        ) == _sqlalchemy_snapshot(conn, params, user)


def _sqlalchemy_snapshot(conn: Connection, params: dict[str, Any], user: str) -> Any:
    counted = conn.execute(sq._SNAPSHOT_COUNT, params).scalar_one()
    rows = conn.execute(sq._SNAPSHOT_LATEST, params).all()
    return sq._result(int(counted), rows, user, None)


def test_each_in_list_length_is_rendered_once_and_every_value_bound_by_its_type(
    engine: Engine,
) -> None:
    """The ``IN`` list and a datetime parameter (its type's bind conversion: SQLite compares
    the text SQLAlchemy writes) around a constant; the SQL of each list length is rendered
    once."""
    statement = select(tenants.c.id, tenants.c.created_at, tenants.c.settings).where(
        tenants.c.id.in_(bindparam("ids", expanding=True)),
        tenants.c.name != "-",
        tenants.c.created_at <= bindparam("until"),
    )
    prepared = Prepared(statement)
    with engine.begin() as conn:
        _fill(conn, [], {})
        conn.execute(insert(tenants).values(id="u", name="u", created_at=T0 + timedelta(days=1)))
        for ids, until in (
            ([], T0),
            (["t"], T0),
            (["t", "u"], T0 + timedelta(days=1)),
            (["u", "t"], T0 + timedelta(hours=1)),
            (["x"], T0),
            (["t", "u", "x"], T0 - timedelta(days=1)),
        ):
            params = {"ids": ids, "until": until}
            got = prepared.rows(conn, params)
            assert _typed(got) == _typed(conn.execute(statement, params).all())
        assert sorted(prepared._for(conn.dialect).shapes) == [(0,), (1,), (2,), (3,)]
        for n in range(SHAPES + 5):  # however many lengths come, the SQL kept stays bounded
            params = {"ids": [f"x{i}" for i in range(n)], "until": T0}
            assert prepared.rows(conn, params) == []
            assert len(prepared._for(conn.dialect).shapes) <= SHAPES
        rows = prepared.rows(conn, {"ids": ["t", "u"], "until": T0})
        assert [(r.id, r.created_at, r.settings) for r in rows] == [
            ("t", T0.replace(tzinfo=None), {})
        ]


def test_a_store_error_is_raised_as_sqlalchemy_raises_it(engine: Engine) -> None:
    prepared = Prepared(select(text("nothing_here.x")).select_from(text("nothing_here")))
    with engine.connect() as conn, pytest.raises(exc.OperationalError, match="no such table"):
        prepared.rows(conn, {})


def test_only_sqlite_statements_are_prepared() -> None:
    with pytest.raises(ValueError, match="SQLite only"):
        Prepared(sq._SNAPSHOT_COUNT)._for(postgresql.dialect())  # type: ignore[no-untyped-call]
