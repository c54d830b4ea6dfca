"""Inbox states at the store level (issue 10): the read rule with unread marks and actors, the
unread count below the watermark, readers, and the snooze claim (exactly once)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.core.direct.support import new, principal
from tidings.domain.notifications import Actor, utcnow
from tidings.service import Tidings
from tidings.store import readstate as rq

pytestmark = pytest.mark.anyio

ALICE = principal("t1", "alice", "staff")


async def feed(svc: Tidings, status: rq.Status = "all") -> list[tuple[int, bool]]:
    async with svc.store.read() as conn:
        items, _ = await rq.feed(conn, "t1", "alice", ["staff"], status=status)
    return [(i.notification.seq, i.read) for i in items]


async def test_unread_marks_beat_the_watermark_and_the_actor(service: Tidings) -> None:
    for i in range(4):
        actor = Actor(id="alice") if i == 3 else None
        await service.publish("t1", new(f"n{i}").model_copy(update={"actor": actor}))
    assert (await service.unread(ALICE)).count == 3, "her own (4) is read"
    await service.mark_all_read(ALICE, 2)
    assert (await service.unread(ALICE)).count == 1
    assert (await service.mark_unread(ALICE, [1, 4])).count == 3
    assert await feed(service, "unread") == [(4, False), (3, False), (1, False)]
    async with service.store.read() as conn:
        assert await rq.readers(conn, "t1", 2) == ["alice"]
        assert await rq.readers(conn, "t1", 1) == []
    await service.mark_read(ALICE, [4])
    async with service.store.read() as conn:
        assert await rq.readers(conn, "t1", 4) == ["alice"]
    assert (await service.mark_all_read(ALICE, 4)).count == 0
    assert await feed(service, "unread") == []


async def test_snooze_leaves_the_count_and_a_claim_ends_it_once(service: Tidings) -> None:
    for i in range(3):
        await service.publish("t1", new(f"n{i}"))
    await service.mark_read(ALICE, [2])
    until = utcnow() + timedelta(minutes=5)
    assert (await service.snooze(ALICE, [1, 2], until)).count == 1
    assert [s for s, _ in await feed(service)] == [3]
    assert [s for s, _ in await feed(service, "snoozed")] == [2, 1]
    assert await service.wake_snoozed(until - timedelta(seconds=1)) == []
    woken = await service.wake_snoozed(until)
    assert sorted(w.seq for w in woken) == [1, 2]
    assert await service.wake_snoozed(until + timedelta(hours=1)) == []
    assert await feed(service) == [(3, False), (2, False), (1, False)], "back, unread"
    assert (await service.unread(ALICE)).count == 3
    # Archive cancels a snooze; a snooze takes an archived one out of the archive.
    await service.snooze(ALICE, [3], until)
    await service.archive(ALICE, [3])
    assert await feed(service, "snoozed") == []
    await service.snooze(ALICE, [3], until)
    assert [s for s, _ in await feed(service, "snoozed")] == [3]
    assert await feed(service, "archived") == []
