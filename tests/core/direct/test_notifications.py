"""Notification queries at the store level (store/notifications.py): fast, direct tests written
to kill the mutants that survived the HTTP-level suite (docs/testing.md, "Mutation testing")."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.core.direct.support import new, principal
from tidings.domain.notifications import Audience, NewNotification, utcnow
from tidings.errors import NotFound, ValidationFailed
from tidings.service import Tidings
from tidings.store import notifications as nq
from tidings.store.tables import audience_targets, receipts

pytestmark = pytest.mark.anyio


async def insert(
    svc: Tidings, tenant: str, item: NewNotification, **kw: object
) -> tuple[int, bool]:
    async with svc.store.write() as conn:
        stored, created = await nq.insert(conn, tenant, item, now=utcnow(), **kw)  # type: ignore[arg-type]
    return stored.seq, created


async def test_each_tenant_counts_its_own_seqs_from_one(service: Tidings) -> None:
    assert [await insert(service, "t1", new("a")) for _ in range(3)] == [
        (1, True),
        (2, True),
        (3, True),
    ]
    assert await insert(service, "t2", new("b")) == (1, True)
    async with service.store.read() as conn:
        assert await nq.latest_seq(conn, "t1") == 3
        assert await nq.latest_seqs(conn, ["t1", "t2", "nope"]) == {"t1": 3, "t2": 1}
        assert await nq.latest_seqs(conn, []) == {}


async def test_unknown_tenant_is_not_found_and_takes_no_seq(service: Tidings) -> None:
    with pytest.raises(NotFound) as caught:
        await insert(service, "nope", new("a"))
    assert caught.value.code == "tenant_not_found"
    async with service.store.read() as conn:
        with pytest.raises(NotFound) as caught:
            await nq.latest_seq(conn, "nope")
    assert caught.value.code == "tenant_not_found"


async def test_idempotency_key_returns_the_first_and_leaves_no_gap(service: Tidings) -> None:
    first = new("once", body="b", data={"k": 1})
    assert await insert(service, "t1", first, idempotency_key="k1") == (1, True)
    assert await insert(service, "t1", first, idempotency_key="k1") == (1, False)
    with pytest.raises(ValidationFailed) as caught:
        await insert(service, "t1", new("different"), idempotency_key="k1")
    assert caught.value.code == "idempotency_key_mismatch"
    assert await insert(service, "t1", new("next")) == (2, True)  # no seq was lost
    assert await insert(service, "t2", first, idempotency_key="k1") == (1, True)  # per tenant
    async with service.store.read() as conn:
        again = await nq.get(conn, "t1", 1)
    assert again is not None
    assert (again.title, again.body, again.data) == ("once", "b", {"k": 1})


async def test_a_retried_publish_returns_the_stored_notification(service: Tidings) -> None:
    item = new("x", link="/bookings/7", audience=Audience(users=("u1",), roles=("owner",)))
    stored, created = await service.publish("t1", item, idempotency_key="r")
    assert created
    again, created = await service.publish("t1", item, idempotency_key="r")
    assert not created
    assert again.public() == stored.public()
    async with service.store.read() as conn:
        fetched = await nq.get(conn, "t1", stored.seq)
        targets = (
            await conn.execute(
                select(audience_targets.c.kind, audience_targets.c.value).order_by(
                    audience_targets.c.kind
                )
            )
        ).all()
    assert fetched is not None
    assert fetched.public() == stored.public()
    assert fetched.audience == Audience(users=("u1",), roles=("owner",))
    assert [tuple(t) for t in targets] == [("r", "owner"), ("u", "u1")]


async def test_fetch_after_is_a_window_in_seq_order(service: Tidings) -> None:
    for i in range(5):
        await insert(service, "t1", new(f"n{i}"))
    await insert(service, "t2", new("other"))
    async with service.store.read() as conn:
        assert [n.seq for n in await nq.fetch_after(conn, "t1", 1)] == [2, 3, 4, 5]
        assert [n.seq for n in await nq.fetch_after(conn, "t1", 1, upto=3)] == [2, 3]
        assert [n.seq for n in await nq.fetch_after(conn, "t1", 0, limit=2)] == [1, 2]
        assert [n.seq for n in await nq.fetch_after(conn, "t1", 5)] == []
        assert [n.tenant for n in await nq.fetch_after(conn, "t2", 0)] == ["t2"]
        assert await nq.get(conn, "t2", 5) is None
        assert await nq.oldest_seq(conn, "t1") == 1


async def test_prune_deletes_old_rows_with_their_receipts_and_targets(service: Tidings) -> None:
    now = utcnow()
    old, fresh = now - timedelta(days=40), now
    targeted = new("old", audience=Audience(users=("alice",)))
    async with service.store.write() as conn:
        for tenant, item, at in [
            ("t1", targeted, old),
            ("t1", new("old2"), old),
            ("t1", new("new"), fresh),
            ("t2", new("old"), old),
            ("t2", new("new", audience=Audience(users=("bob",))), fresh),
            ("t2", new("new"), fresh),
        ]:
            await nq.insert(conn, tenant, item, now=at)
    alice = principal("t1", "alice")
    await service.mark_read(alice, [1, 3])
    async with service.store.read() as conn:
        assert await nq.oldest_seq(conn, "t2") == 1
    assert await service.prune() == 3
    async with service.store.read() as conn:
        assert [n.seq for n in await nq.fetch_after(conn, "t1", 0)] == [3]
        assert [n.seq for n in await nq.fetch_after(conn, "t2", 0)] == [2, 3]
        assert await nq.oldest_seq(conn, "t1") == 3
        left = (await conn.execute(select(receipts.c.seq))).scalars().all()
        assert list(left) == [3]
        kept = (
            await conn.execute(select(audience_targets.c.tenant_id, audience_targets.c.seq))
        ).all()
        assert [tuple(k) for k in kept] == [("t2", 2)]  # only the old rows' targets went
        assert await nq.latest_seq(conn, "t1") == 3  # pruning never rewinds the sequence
    assert await service.prune() == 0


async def test_oldest_seq_of_an_empty_tenant_is_none(service: Tidings) -> None:
    async with service.store.read() as conn:
        assert await nq.oldest_seq(conn, "t1") is None
