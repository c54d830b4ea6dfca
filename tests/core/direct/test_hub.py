"""The hub's bookkeeping and routing (delivery/hub.py) over a real store, without streams: caps,
cleanup, audiences, broker arrivals, catch-up and ephemeral events. The buffer bound and the gap
fill have their own unit tests (tests/delivery/); these cover the branches around them."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from tests.core.direct.support import new, principal
from tidings.delivery.hub import Hub, Subscriber
from tidings.domain.notifications import Audience
from tidings.errors import TooManyRequests, Unavailable
from tidings.service import Tidings

pytestmark = pytest.mark.anyio


def seqs(sub: Subscriber) -> list[int]:
    out = [seq for seq, _ in sub.buffer]
    sub.buffer.clear()
    return out


def sample(svc: Tidings, name: str, **labels: str) -> float:
    value = svc.metrics.registry.get_sample_value(name, labels or None)
    return 0.0 if value is None else value


def small_hub(
    svc: Tidings,
    *,
    buffer: int = 10,
    per_user: int = 2,
    per_tenant: int = 3,
    view_ttl: float = 60.0,
) -> Hub:
    return Hub(
        svc.store,
        svc.metrics,
        buffer=buffer,
        max_per_user=per_user,
        max_per_tenant=per_tenant,
        view_ttl=view_ttl,
    )


async def test_caps_per_user_and_per_tenant(service: Tidings) -> None:
    hub = small_hub(service)
    await hub.subscribe(principal("t1", "a"))
    await hub.subscribe(principal("t1", "a"))
    with pytest.raises(TooManyRequests) as caught:
        await hub.subscribe(principal("t1", "a"))
    assert caught.value.code == "too_many_streams"
    assert "2 open streams" in caught.value.detail
    assert caught.value.headers.get("Retry-After") == "5"
    third = await hub.subscribe(principal("t1", "b"))
    with pytest.raises(TooManyRequests) as caught:
        await hub.subscribe(principal("t1", "c"))
    assert caught.value.code == "too_many_streams"
    assert "3 open streams" in caught.value.detail
    assert caught.value.headers.get("Retry-After") == "5"
    await hub.subscribe(principal("t2", "c"))  # caps are per tenant
    assert hub.stream_count == 4
    hub.unsubscribe(third)
    await hub.subscribe(principal("t1", "c"))  # a freed place can be taken again


async def test_a_closing_hub_refuses_and_ends_every_stream(service: Tidings) -> None:
    hub = small_hub(service)
    subs = [await hub.subscribe(principal("t1", "a")), await hub.subscribe(principal("t2", "b"))]
    subs[0].buffer.append((1, b"x"))
    hub.shutdown()
    assert hub.closing
    assert [(s.reason, list(s.buffer), s.wake.is_set()) for s in subs] == [
        ("shutdown", [], True),
        ("shutdown", [], True),
    ]
    with pytest.raises(Unavailable) as caught:
        await hub.subscribe(principal("t1", "c"))
    assert caught.value.code == "shutting_down"


async def test_unsubscribe_forgets_users_and_tenants(service: Tidings) -> None:
    await service.publish("t1", new("before"))
    hub = small_hub(service, view_ttl=0)  # no grace: the last stream's leaving forgets it
    a1 = await hub.subscribe(principal("t1", "a"))
    a2 = await hub.subscribe(principal("t1", "a"))
    b = await hub.subscribe(principal("t1", "b"))
    assert (hub.tenants(), hub.last_seen("t1"), hub.last_seen("t2")) == (["t1"], 1, None)
    assert hub.has_stream("t1", "a")
    assert not hub.has_stream("t1", "z")
    assert not hub.has_stream("t2", "a")
    assert set(hub.subscribers_of("t1", "a")) == {a1, a2}
    assert hub.subscribers_of("t2", "a") == []
    assert hub.subscribers_of("t1", "z") == []
    assert sorted(p.user for p in hub.present()) == ["a", "b"]
    assert sample(service, "tidings_streams_open") == 3
    hub.unsubscribe(a1)
    hub.unsubscribe(a1)  # twice is harmless
    assert hub.subscribers_of("t1", "a") == [a2]
    hub.unsubscribe(a2)
    assert not hub.has_stream("t1", "a")
    assert [p.user for p in hub.present()] == ["b"]
    assert hub.tenants() == ["t1"]
    b.leave("overflow")
    hub.unsubscribe(b)
    assert (hub.tenants(), hub.stream_count, hub.last_seen("t1")) == ([], 0, None)
    assert sample(service, "tidings_streams_open") == 0  # the double unsubscribe counted once
    assert sample(service, "tidings_subscribers_dropped_total", reason="overflow") == 1


async def test_a_tenant_without_streams_is_kept_for_view_ttl(service: Tidings) -> None:
    """A reconnect storm finds the ring and views: the tenant stays served for ``view_ttl``
    after its last stream leaves, and ``catch_up`` forgets it once that has passed."""
    await service.publish("t1", new("before"))
    hub = small_hub(service, view_ttl=0.2)
    sub = await hub.subscribe(principal("t1", "a"))
    hub.unsubscribe(sub)
    await hub.catch_up()
    assert (hub.tenants(), hub.stream_count, hub.last_seen("t1")) == (["t1"], 0, 1)
    await asyncio.sleep(0.25)
    await hub.catch_up()
    assert (hub.tenants(), hub.last_seen("t1")) == ([], None)


async def test_metrics_count_open_streams(service: Tidings) -> None:
    hub = service.hub
    sub = await hub.subscribe(principal("t1", "a"))
    assert sample(service, "tidings_streams_open") == 1
    hub.unsubscribe(sub)
    assert sample(service, "tidings_streams_open") == 0
    assert sample(service, "tidings_subscribers_dropped_total", reason="overflow") == 0


async def test_audiences_pick_users_and_roles(service: Tidings) -> None:
    hub = service.hub
    owner = await hub.subscribe(principal("t1", "olga", "owner"))
    staff = await hub.subscribe(principal("t1", "sam", "staff"))
    bob = await hub.subscribe(principal("t1", "bob"))
    other = await hub.subscribe(principal("t2", "bob"))
    await service.publish("t1", new("all"))
    await service.publish("t1", new("owners", audience=Audience(roles=("owner",))))
    await service.publish("t1", new("bob", audience=Audience(users=("bob",))))
    await service.publish("t1", new("both", audience=Audience(users=("bob",), roles=("staff",))))
    assert (seqs(owner), seqs(staff), seqs(bob), seqs(other)) == ([1, 2], [1, 4], [1, 3, 4], [])


async def test_broker_arrivals_with_and_without_payload(service: Tidings) -> None:
    hub = service.hub
    bob = await hub.subscribe(principal("t1", "bob"))
    amy = await hub.subscribe(principal("t1", "amy"))
    async with service.transaction() as tx:  # committed, but not offered to this hub
        service.hub = Hub(
            service.store, service.metrics, buffer=1, max_per_user=1, max_per_tenant=1
        )
        first, _ = await tx.publish("t1", new("for all"))
        second, _ = await tx.publish("t1", new("for bob", audience=Audience(users=("bob",))))
        third, _ = await tx.publish("t1", new("big"))
        fourth, _ = await tx.publish("t1", new("last"))
    service.hub = hub
    await hub.deliver_raw("t1", 2, second.encode())  # a gap of one: seq 1 comes first
    assert (seqs(bob), seqs(amy)) == ([1, 2], [1])  # the audience travels in the payload
    await hub.deliver_raw("t1", 3, b"")  # too big for the broker: read from the store
    [(seq, frame)] = list(amy.buffer)
    assert seq == 3
    assert orjson.loads(frame.partition(b"\ndata: ")[2])["title"] == "big"
    await hub.deliver_raw("t1", 3, third.encode())  # a duplicate
    await hub.deliver_raw("t9", 1, first.encode())  # a tenant nobody here follows
    assert (seqs(bob), seqs(amy)) == ([3], [3])
    await hub.deliver(fourth)  # committed by this process
    assert (seqs(bob), seqs(amy)) == ([4], [4])
    assert hub.last_seen("t1") == 4


async def test_catch_up_fills_every_followed_tenant(service: Tidings) -> None:
    hub = small_hub(service)
    one = await hub.subscribe(principal("t1", "a"))
    two = await hub.subscribe(principal("t2", "a"))
    for tenant in ("t1", "t1", "t2"):
        await service.publish(tenant, new("x"))  # the service's own hub, not this one
    await hub.catch_up("t2")
    assert (seqs(one), seqs(two)) == ([], [1])
    await hub.catch_up()
    assert (seqs(one), seqs(two)) == ([1, 2], [])
    await hub.catch_up()
    assert (seqs(one), seqs(two)) == ([], [])
    assert sample(service, "tidings_catch_up_notifications_total") == 3


async def test_catch_up_reads_tenants_in_batches(service: Tidings) -> None:
    for i in range(3, 6):
        await service.create_tenant(f"t{i}", f"Tenant {i}")
    hub = Hub(service.store, service.metrics, buffer=10, max_per_user=5, max_per_tenant=5, batch=2)
    subs = [await hub.subscribe(principal(f"t{i}", "a")) for i in range(1, 6)]
    for i in range(1, 6):
        await service.publish(f"t{i}", new("x"))
    await hub.catch_up()
    assert [seqs(s) for s in subs] == [[1]] * 5


async def test_ephemeral_events_reach_only_that_users_streams(service: Tidings) -> None:
    hub = service.hub
    mine = [await hub.subscribe(principal("t1", "a")), await hub.subscribe(principal("t1", "a"))]
    theirs = await hub.subscribe(principal("t1", "b"))
    elsewhere = await hub.subscribe(principal("t2", "a"))
    hub.deliver_ephemeral("t1", "a", "read", b'{"ids":[1]}')
    hub.deliver_ephemeral("t9", "a", "read", b"{}")  # a tenant nobody here follows
    hub.deliver_ephemeral("t1", "z", "read", b"{}")  # a user with no stream here
    for sub in mine:
        assert list(sub.buffer) == [(0, b'event: read\ndata: {"ids":[1]}\n\n')]
    assert list(theirs.buffer) == list(elsewhere.buffer) == []


async def test_a_subscriber_that_is_behind_drops_its_buffer_and_catches_up(
    service: Tidings,
) -> None:
    sub = Subscriber(principal("t1", "a"), maxlen=2)
    sub.offer(1, b"1")
    sub.offer(2, b"2")
    sub.wake.clear()
    sub.offer(3, b"3")  # not stuck writing: lagging, not cut off
    assert (sub.lagging, sub.reason, list(sub.buffer), sub.wake.is_set()) == (True, None, [], True)
    sub.offer(4, b"4")
    assert list(sub.buffer) == [(4, b"4")]
    sub.sending = True
    sub.offer(5, b"5")
    sub.offer(6, b"6")  # stuck writing and full: cut off
    assert (sub.reason, list(sub.buffer)) == ("overflow", [])
    sub.offer(7, b"7")  # nothing more once told to leave
    assert list(sub.buffer) == []
    sub.leave("shutdown")
    assert sub.reason == "overflow"  # the first reason stands
