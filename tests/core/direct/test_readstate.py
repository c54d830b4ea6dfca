"""Read state at the store level (store/readstate.py): fast, direct tests written to kill the
mutants that survived the HTTP-level suite (docs/testing.md, "Mutation testing")."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.core.direct.support import new, principal
from tidings.domain.notifications import Audience, utcnow
from tidings.domain.principals import Principal
from tidings.domain.readstate import UNREAD_DISPLAY_CAP
from tidings.errors import NotFound
from tidings.service import Tidings
from tidings.store import readstate as rq

pytestmark = pytest.mark.anyio

ALICE = principal("t1", "alice", "staff")


async def publish(svc: Tidings, count: int, tenant: str = "t1", **fields: object) -> list[int]:
    seqs = []
    for i in range(count):
        stored, _ = await svc.publish(tenant, new(f"n{i}", **fields))  # type: ignore[arg-type]
        seqs.append(stored.seq)
    return seqs


async def feed_seqs(svc: Tidings, status: rq.Status = "all", **kw: object) -> list[int]:
    async with svc.store.read() as conn:
        items, _ = await rq.feed(conn, "t1", "alice", ["staff"], status=status, **kw)  # type: ignore[arg-type]
    return [i.notification.seq for i in items]


async def test_fresh_user_watermark_is_zero_and_everything_is_unread(service: Tidings) -> None:
    await publish(service, 2)
    async with service.store.read() as conn:
        assert await rq.watermark(conn, "t1", "alice") == 0
    assert (await service.unread(ALICE)).count == 2
    assert await feed_seqs(service, "unread") == [2, 1]


async def test_each_status_selects_exactly_its_rows(service: Tidings) -> None:
    await publish(service, 5)
    await service.mark_all_read(ALICE, 1)  # 1 read by watermark
    await service.mark_read(ALICE, [3])  # 3 read by receipt
    await service.archive(ALICE, [4])  # 4 archived (and read)
    assert await feed_seqs(service, "unread") == [5, 2]
    assert await feed_seqs(service, "read") == [3, 1]
    assert await feed_seqs(service, "archived") == [4]
    assert await feed_seqs(service, "all") == [5, 3, 2, 1]
    async with service.store.read() as conn:
        items, _ = await rq.feed(conn, "t1", "alice", ["staff"], status="all")
    flags = {i.notification.seq: (i.read, i.archived) for i in items}
    assert flags == {5: (False, False), 3: (True, False), 2: (False, False), 1: (True, False)}
    async with service.store.read() as conn:
        archived, _ = await rq.feed(conn, "t1", "alice", ["staff"], status="archived")
    assert [(i.read, i.archived) for i in archived] == [(True, True)]
    assert archived[0].public()["archived"] is True
    assert archived[0].public()["read"] is True
    assert (await service.unread(ALICE)).public() == {"count": 2, "more": False}


async def test_pages_end_exactly_where_the_rows_do(service: Tidings) -> None:
    await publish(service, 4)
    async with service.store.read() as conn:
        page, more = await rq.feed(conn, "t1", "alice", [], limit=4)
        assert [i.notification.seq for i in page] == [4, 3, 2, 1]
        assert more is None  # exactly `limit` rows: no next page
        page, more = await rq.feed(conn, "t1", "alice", [], limit=3)
        assert [i.notification.seq for i in page] == [4, 3, 2]
        assert more == 2
        page, more = await rq.feed(conn, "t1", "alice", [], limit=3, before=more)
        assert [i.notification.seq for i in page] == [1]
        assert more is None


async def test_type_filters_and_exclusions(service: Tidings) -> None:
    await publish(service, 1, type_="payment_received")
    await publish(service, 1, type_="booking_created")
    assert await feed_seqs(service, type_="payment_received") == [1]
    assert await feed_seqs(service, exclude_types={"payment_received"}) == [2]
    async with service.store.read() as conn:
        count = await rq.unread_count(conn, "t1", "alice", [], {"booking_created"})
    assert count.count == 1


async def test_role_targeted_rows_reach_only_the_role(service: Tidings) -> None:
    """The SQL side of the audience filter: feed, count and snapshot (invariant 4 within a
    tenant)."""
    await publish(service, 1, audience=Audience(roles=("owner",)))
    await publish(service, 1, audience=Audience(users=("bob",)))
    await publish(service, 1)
    owner = principal("t1", "olga", "owner")
    assert await seqs_of(service, owner) == [3, 1]
    assert (await service.unread(owner)).count == 2
    assert [i["id"] for i in (await service.snapshot(owner))["latest"]] == [3, 1]
    assert await seqs_of(service, ALICE) == [3]
    assert (await service.unread(ALICE)).count == 1
    no_roles = principal("t1", "bob")
    assert await seqs_of(service, no_roles) == [3, 2]
    assert (await service.unread(no_roles)).count == 2
    assert [i["id"] for i in (await service.snapshot(no_roles))["latest"]] == [3, 2]
    async with service.store.read() as conn:
        assert await rq.visible_seqs(conn, "t1", "olga", ["owner"], [1, 2, 3]) == {1, 3}
        assert await rq.visible_seqs(conn, "t1", "bob", [], [1, 2, 3]) == {2, 3}
        assert await rq.visible_seqs(conn, "t2", "bob", [], [1, 2, 3]) == set()


async def seqs_of(svc: Tidings, who: Principal) -> list[int]:
    items, _ = await svc.feed(who, status="all", type_=None, before=None, limit=20)
    return [i.notification.seq for i in items]


async def test_unread_count_is_capped_after_probing_one_more(service: Tidings) -> None:
    await publish(service, UNREAD_DISPLAY_CAP)
    assert (await service.unread(ALICE)).public() == {"count": UNREAD_DISPLAY_CAP, "more": False}
    await publish(service, 1)
    assert (await service.unread(ALICE)).public() == {"count": UNREAD_DISPLAY_CAP, "more": True}


async def test_watermark_never_moves_backwards_and_a_third_mark_moves_it(service: Tidings) -> None:
    await publish(service, 6)
    assert (await service.mark_all_read(ALICE, 4)).count == 2
    assert (await service.mark_all_read(ALICE, 2)).count == 2  # never backwards
    async with service.store.read() as conn:
        assert await rq.watermark(conn, "t1", "alice") == 4
    assert (await service.mark_all_read(ALICE, None)).count == 0  # the third moves it on
    async with service.store.read() as conn:
        assert await rq.watermark(conn, "t1", "alice") == 6
        assert await rq.watermark(conn, "t1", "bob") == 0


async def test_marking_unknown_or_invisible_ids_changes_nothing(service: Tidings) -> None:
    await publish(service, 1, audience=Audience(users=("bob",)))
    await publish(service, 1)
    for action in (service.mark_read, service.archive):
        with pytest.raises(NotFound) as caught:
            await action(ALICE, [2, 1, 9])
        assert caught.value.code == "notification_not_found"
        assert caught.value.extra == {"ids": [1, 9]}
    assert await feed_seqs(service, "unread") == [2]


async def test_receipts_keep_the_first_read_and_archive(service: Tidings) -> None:
    await publish(service, 2)
    await service.archive(ALICE, [1])
    await service.mark_read(ALICE, [1, 2])  # re-reading an archived row keeps it archived
    await service.archive(ALICE, [1])
    assert await feed_seqs(service, "archived") == [1]
    assert await feed_seqs(service, "read") == [2]
    assert (await service.unread(ALICE)).count == 0


async def test_readers_are_receipts_plus_watermarks(service: Tidings) -> None:
    await publish(service, 3)
    await service.mark_read(principal("t1", "carol"), [2])
    await service.archive(principal("t1", "dave"), [3])
    await service.mark_all_read(principal("t1", "erin"), 2)
    await service.mark_all_read(principal("t1", "fay"), 1)
    async with service.store.read() as conn:
        assert await rq.readers(conn, "t1", 2) == ["carol", "erin"]
        assert await rq.readers(conn, "t1", 3) == ["dave"]
        assert await rq.readers(conn, "t1", 1) == ["erin", "fay"]
        assert await rq.readers(conn, "t2", 2) == []
    now = utcnow()
    async with service.store.write() as conn:
        await rq.mark_all_read(conn, "t2", "erin", 9, now=now - timedelta(seconds=1))
    async with service.store.read() as conn:
        assert await rq.readers(conn, "t1", 3) == ["dave"]
