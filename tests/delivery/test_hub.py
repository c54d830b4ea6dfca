"""The hub on its own, over a real store: the buffer bound (invariant 5) and in-order, gap-free,
exactly-once fan-out (invariants 2 and 3), each branch driven directly.

The hub is fed by hand, as the broker listener and ``Tidings.publish`` feed it; notifications
are committed with the store's own ``insert`` so seqs are real and the gap fill reads real rows.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete

from tests.delivery.conftest import BUFFER, TENANT
from tidings.delivery.hub import Hub, Subscriber
from tidings.domain.notifications import Audience, NewNotification, Notification, utcnow
from tidings.domain.principals import Principal
from tidings.store import Store
from tidings.store import notifications as nq
from tidings.store.tables import audience_targets, notifications

pytestmark = pytest.mark.anyio


def principal(user: str = "ana", roles: frozenset[str] = frozenset()) -> Principal:
    return Principal(TENANT, user, roles, datetime.now(UTC) + timedelta(hours=1))


async def commit(store: Store, count: int, audience: Audience | None = None) -> list[Notification]:
    """Commit ``count`` notifications without telling any hub (a broker that lost them)."""
    out = []
    async with store.write() as conn:
        for _ in range(count):
            new = NewNotification(type="system", title="t", audience=audience)
            stored, _ = await nq.insert(conn, TENANT, new, now=utcnow())
            out.append(stored)
    return out


def seqs(sub: Subscriber) -> list[int]:
    return [seq for seq, _ in sub.buffer]


# -- invariant 5: the buffer bound ------------------------------------------------------------


def test_offer_never_holds_more_than_maxlen() -> None:
    sub = Subscriber(principal(), maxlen=3)
    for seq in range(1, 101):
        sub.offer(seq, b"x")
        assert len(sub.buffer) <= 3
    assert sub.lagging and sub.reason is None  # behind a burst: catches up from the store


async def test_a_subscriber_that_does_not_drain_stays_bounded_and_catches_up(
    hub: Hub, store: Store
) -> None:
    """Not stuck in a write, merely behind: its buffer is dropped and it is marked to catch up
    from the store, and it stays registered the whole time (the bound is checked while it is)."""
    sub = await hub.subscribe(principal())
    for item in await commit(store, 3 * BUFFER):
        await hub.deliver(item)
        assert hub.subscribers_of(TENANT, "ana") == [sub]
        assert len(sub.buffer) <= BUFFER, seqs(sub)
    assert sub.lagging
    assert sub.reason is None
    assert hub.last_seen(TENANT) == 3 * BUFFER


async def test_a_subscriber_stuck_in_a_write_is_cut_off_at_the_bound(
    hub: Hub, store: Store
) -> None:
    """Stuck in a write (the socket is full): cut off with ``overflow``; it resumes from the
    store on reconnect. Its buffer never passes the bound before or after."""
    sub = await hub.subscribe(principal())
    sub.sending = True
    for item in await commit(store, 3 * BUFFER):
        await hub.deliver(item)
        assert hub.subscribers_of(TENANT, "ana") == [sub]
        assert len(sub.buffer) <= BUFFER, seqs(sub)
    assert sub.reason == "overflow"
    assert list(sub.buffer) == []
    hub.unsubscribe(sub)
    assert hub.stream_count == 0


# -- invariants 2 and 3: order, gaps, duplicates ---------------------------------------------


async def test_a_gap_is_filled_from_the_store_before_the_arrival(hub: Hub, store: Store) -> None:
    sub = await hub.subscribe(principal())
    first, _second, third = await commit(store, 3)
    await hub.deliver(first)
    await hub.deliver(third)  # seq 3 after seq 1: seq 2 was lost on the way
    assert seqs(sub) == [1, 2, 3]
    assert hub.last_seen(TENANT) == 3


async def test_a_frame_arriving_after_its_gap_was_filled_is_dropped(hub: Hub, store: Store) -> None:
    sub = await hub.subscribe(principal())
    first, second, third = await commit(store, 3)
    await hub.deliver(first)
    await hub.deliver(third)
    await hub.deliver(second)  # the lost one turns up late: already filled
    await hub.deliver_raw(TENANT, 2, second.encode())  # and again through the broker
    await hub.deliver_raw(TENANT, 3, b"")  # an echo of the arrival itself
    assert seqs(sub) == [1, 2, 3]


async def test_a_broker_announcement_without_payload_is_read_from_the_store(
    hub: Hub, store: Store
) -> None:
    sub = await hub.subscribe(principal())
    await commit(store, 2)
    await hub.deliver_raw(TENANT, 2, b"")
    assert seqs(sub) == [1, 2]
    assert b'"title":"t"' in sub.buffer[1][1]


async def test_a_gap_whose_rows_are_gone_ends_the_streams_instead_of_a_silent_hole(
    hub: Hub, store: Store
) -> None:
    """Seqs up to 4 were committed (seq order is commit order) but retention pruned them before
    this hub heard of 2..4: it cannot fill them, so its subscribers are told to leave; resuming
    from 1, a stream is answered ``reset`` (the oldest row is 5) instead of a silent hole."""
    sub = await hub.subscribe(principal())
    items = await commit(store, 5)
    await hub.deliver(items[0])
    async with store.write() as conn:
        # What store.notifications.prune does to a tenant: everything up to a seq goes.
        await conn.execute(delete(audience_targets).where(audience_targets.c.seq <= 4))
        await conn.execute(delete(notifications).where(notifications.c.seq <= 4))
    await hub.deliver(items[4])
    assert sub.reason == "gap"
    assert list(sub.buffer) == []
    assert hub.last_seen(TENANT) == 5
    # The hub itself is not stuck: a stream that joins now gets what follows.
    hub.unsubscribe(sub)
    later = await hub.subscribe(principal("ben"))
    (sixth,) = await commit(store, 1)
    await hub.deliver(sixth)
    assert seqs(later) == [6]


async def test_a_frame_is_offered_only_to_its_audience(hub: Hub, store: Store) -> None:
    staff = await hub.subscribe(principal("ana", frozenset({"staff"})))
    guest = await hub.subscribe(principal("ben"))
    named = await hub.subscribe(principal("cy"))
    (item,) = await commit(store, 1, Audience(roles=("staff",), users=("cy",)))
    await hub.deliver(item)
    assert (seqs(staff), seqs(guest), seqs(named)) == ([1], [], [1])


async def test_a_frame_never_reaches_another_tenants_subscriber(hub: Hub, store: Store) -> None:
    ours = await hub.subscribe(principal("ana", frozenset({"staff"})))
    theirs = Principal("bounce-bros", "ana", frozenset({"staff"}), ours.principal.expires_at)
    async with store.write() as conn:
        from tidings.store import tenants as tq

        await tq.create_tenant(conn, "bounce-bros", "bounce-bros", now=utcnow())
    other = await hub.subscribe(theirs)
    (item,) = await commit(store, 1)
    await hub.deliver(item)
    await hub.deliver_raw(TENANT, 1, b"")  # the broker's echo of it
    assert (seqs(ours), seqs(other)) == ([1], [])
    assert hub.last_seen("bounce-bros") == 0
