"""The service (service.py) without a server: fast, direct tests written to kill the mutants that
survived the HTTP-level suite (docs/testing.md, "Mutation testing")."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import jwt
import orjson
import pytest

from tests.core.direct.support import SECRET, new, principal, service_on
from tests.support import free_port
from tidings import auth
from tidings.delivery.broker import Envelope, Signal
from tidings.delivery.hub import Subscriber
from tidings.delivery.memory import MemoryBroker
from tidings.domain.notifications import Audience, Notification
from tidings.domain.principals import KeyPrincipal
from tidings.errors import NotFound, PayloadTooLarge, ValidationFailed
from tidings.service import Tidings

pytestmark = pytest.mark.anyio

ALICE = principal("t1", "alice", "staff")


def sample(svc: Tidings, name: str, **labels: str) -> float:
    value = svc.metrics.registry.get_sample_value(name, labels or None)
    return 0.0 if value is None else value


async def listening(svc: Tidings) -> AsyncIterator[bytes | Signal]:
    """A real listener on the service's (memory) broker, registered before it returns."""
    messages = svc.broker.listen()
    with anyio.fail_after(5):
        assert await anext(messages) is Signal.CONNECTED
    return messages


async def next_envelope(messages: AsyncIterator[bytes | Signal]) -> Envelope:
    with anyio.fail_after(5):
        raw = await anext(messages)
    assert isinstance(raw, bytes)
    return Envelope.decode(raw)


def frames(sub: Subscriber) -> list[tuple[int, bytes]]:
    out = list(sub.buffer)
    sub.buffer.clear()
    return out


def event_data(frame: bytes) -> dict[str, object]:
    data = frame.partition(b"\ndata: ")[2].strip()
    value: dict[str, object] = orjson.loads(data)
    return value


async def test_limits_accept_the_maximum_and_refuse_one_more(
    store_template: Path,
    tmp_path: Path,
) -> None:
    async with service_on(
        store_template, tmp_path, max_title_chars=5, max_body_chars=6, max_data_bytes=12
    ) as svc:
        await svc.create_tenant("t1", "one")
        data = {"k": "1234"}  # {"k":"1234"} is 12 bytes
        assert len(orjson.dumps(data)) == 12
        stored, _ = await svc.publish("t1", new("12345", body="123456", data=data))
        assert stored.seq == 1
        with pytest.raises(ValidationFailed, match="title"):
            await svc.publish("t1", new("123456"))
        with pytest.raises(ValidationFailed, match="body"):
            await svc.publish("t1", new("1", body="1234567"))
        with pytest.raises(PayloadTooLarge):
            await svc.publish("t1", new("1", data={"k": "12345"}))
        with pytest.raises(ValidationFailed):  # checked before anything is written
            await svc.publish_many("t1", [new("ok"), new("123456")])
        assert (await svc.unread(principal("t1", "u"))).count == 1


async def test_publish_reaches_hub_and_broker_after_commit(service: Tidings) -> None:
    sub = await service.hub.subscribe(ALICE)
    messages = await listening(service)
    stored, created = await service.publish("t1", new("hello"))
    assert created
    assert [seq for seq, _ in frames(sub)] == [1]
    envelope = await next_envelope(messages)
    assert (envelope.kind, envelope.tenant, envelope.seq) == ("n", "t1", 1)
    assert envelope.origin == service.instance_id
    assert orjson.loads(envelope.payload) == stored.public()
    assert sample(service, "tidings_published_total") == 1
    assert sample(service, "tidings_publish_seconds_count") == 1
    assert 0 < sample(service, "tidings_publish_seconds_sum") < 30


async def test_envelopes_go_to_every_other_listener_and_none_to_a_lone_instance(
    service: Tidings,
) -> None:
    """A lone instance on the in-process broker has only its own relay listening, which the
    broker spares its own messages: the service builds no envelope then. Any other listener
    (another origin, or none) gets every notification, single and batched, in seq order."""
    broker = service.broker
    assert isinstance(broker, MemoryBroker)
    own = broker.listen(origin=service.instance_id)
    with anyio.fail_after(5):
        assert await anext(own) is Signal.CONNECTED
    assert not broker.reaches_others(service.instance_id)
    assert broker.reaches_others(None)  # a message without an origin reaches its relay
    sub = await service.hub.subscribe(ALICE)
    await service.publish("t1", new("alone"))
    assert [seq for seq, _ in frames(sub)] == [1]  # delivered here all the same
    other = broker.listen(origin="another-instance")
    with anyio.fail_after(5):
        assert await anext(other) is Signal.CONNECTED
    assert broker.reaches_others(service.instance_id)
    await service.publish("t1", new("seen"))
    await service.publish_many("t1", [new("a"), new("b")])
    got = [await next_envelope(other) for _ in range(3)]
    assert [(e.kind, e.tenant, e.seq) for e in got] == [
        ("n", "t1", 2),
        ("n", "t1", 3),
        ("n", "t1", 4),
    ]
    assert [seq for seq, _ in frames(sub)] == [2, 3, 4]


async def test_a_rolled_back_transaction_announces_nothing(service: Tidings) -> None:
    sub = await service.hub.subscribe(ALICE)

    async def failing_unit_of_work() -> None:
        async with service.transaction() as tx:
            await tx.publish("t1", new("never"))
            raise RuntimeError("domain change failed")

    with pytest.raises(RuntimeError):
        await failing_unit_of_work()
    async with service.transaction() as tx:
        assert await tx.publish("t1", new("kept")) == (tx.published[0], True)
    assert [seq for seq, _ in frames(sub)] == [1]  # seq 1 again: the first left no trace
    assert sample(service, "tidings_published_total") == 1


async def test_publish_many_keys_each_item_and_retries_return_them(service: Tidings) -> None:
    sub = await service.hub.subscribe(ALICE)
    items = [new("a"), new("b")]
    first = await service.publish_many("t1", items, idempotency_key="batch")
    assert [(n.seq, created) for n, created in first] == [(1, True), (2, True)]
    again = await service.publish_many("t1", items, idempotency_key="batch")
    assert [(n.seq, created) for n, created in again] == [(1, False), (2, False)]
    single, created = await service.publish("t1", items[1], idempotency_key="batch#1")
    assert (single.seq, created) == (2, False)
    unkeyed = await service.publish_many("t1", items)
    unkeyed_again = await service.publish_many("t1", items)
    assert [n.seq for n, _ in unkeyed + unkeyed_again] == [3, 4, 5, 6]
    assert [seq for seq, _ in frames(sub)] == [1, 2, 3, 4, 5, 6]  # retries announce nothing
    assert sample(service, "tidings_published_total") == 6
    assert sample(service, "tidings_publish_seconds_count") == 5
    assert 0 < sample(service, "tidings_publish_seconds_sum") < 30


async def test_a_broker_or_hook_failure_never_fails_a_publish(
    store_template: Path,
    tmp_path: Path,
) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"  # a real client; nothing listens there
    async with service_on(store_template, tmp_path, broker_url=dead) as svc:
        await svc.create_tenant("t1", "one")
        seen: list[list[int]] = []

        async def failing(published: list[Notification]) -> None:
            raise RuntimeError("hook failed")

        async def recording(published: list[Notification]) -> None:
            seen.append([n.seq for n in published])

        svc.after_publish.extend([failing, recording])
        sub = await svc.hub.subscribe(ALICE)
        stored, created = await svc.publish("t1", new("still here"))
        assert (stored.seq, created) == (1, True)
        assert [seq for seq, _ in frames(sub)] == [1]  # the local hub still has it
        assert seen == [[1]]  # a failing hook does not stop the next one
        assert sample(svc, "tidings_broker_errors_total") == 1
        count = await svc.mark_read(ALICE, [1])  # an ephemeral event: same rule
        assert count.count == 0
        assert sample(svc, "tidings_broker_errors_total") == 2


async def test_read_events_reach_the_users_streams_and_the_broker(service: Tidings) -> None:
    mine = await service.hub.subscribe(ALICE)
    other = await service.hub.subscribe(principal("t1", "bob"))
    for title in ("a", "b", "c"):
        await service.publish("t1", new(title))
    frames(mine), frames(other)
    messages = await listening(service)

    count = await service.mark_read(ALICE, [2])
    assert count.public() == {"count": 2, "more": False}
    [(seq, frame)] = frames(mine)
    assert seq == 0
    assert frame.startswith(b"event: read\n")
    assert event_data(frame) == {"ids": [2], "unread": {"count": 2, "more": False}}
    envelope = await next_envelope(messages)
    assert (envelope.kind, envelope.tenant, envelope.user, envelope.event) == (
        "e",
        "t1",
        "alice",
        "read",
    )
    assert envelope.origin == service.instance_id
    assert orjson.loads(envelope.payload) == {"ids": [2], "unread": {"count": 2, "more": False}}

    count = await service.archive(ALICE, [1])
    assert count.count == 1
    [(_, frame)] = frames(mine)
    assert frame.startswith(b"event: archived\n")
    assert event_data(frame) == {"ids": [1], "unread": {"count": 1, "more": False}}
    assert (await next_envelope(messages)).event == "archived"

    count = await service.mark_all_read(ALICE, 99)  # clamped to the latest seq
    assert count.count == 0
    [(_, frame)] = frames(mine)
    assert event_data(frame) == {"all": True, "up_to": 3, "unread": {"count": 0, "more": False}}
    assert frames(other) == []
    await service.publish("t1", new("d"))
    assert (await service.unread(ALICE)).count == 1  # the watermark stopped at 3, not 99
    count = await service.mark_all_read(ALICE, 2)
    [(_, frame)] = [f for f in frames(mine) if f[0] == 0]
    assert event_data(frame)["up_to"] == 2
    assert count.count == 1


async def test_snapshot_is_count_latest_seq_and_the_latest_five(service: Tidings) -> None:
    empty = await service.snapshot(ALICE)
    assert empty == {
        "unread": {"count": 0, "more": False},
        "latest_seq": 0,
        "latest": [],
        "user": "alice",
    }
    for i in range(7):
        await service.publish("t1", new(f"n{i}"))
    await service.publish("t1", new("x", audience=Audience(users=("bob",))))
    await service.publish("t2", new("other tenant"))
    snap = await service.snapshot(ALICE)
    assert snap["latest_seq"] == 8
    assert snap["unread"] == {"count": 7, "more": False}
    assert [i["id"] for i in snap["latest"]] == [7, 6, 5, 4, 3]
    assert all(i["read"] is False for i in snap["latest"])


async def test_muted_types_leave_feed_count_and_snapshot(service: Tidings) -> None:
    await service.publish("t1", new("a", type_="payment_failed"))
    await service.publish("t1", new("b", type_="booking_created"))
    asked: list[str] = []

    async def muted(who: object) -> frozenset[str]:
        asked.append(who.user)  # type: ignore[attr-defined]
        return frozenset({"payment_failed"})

    assert await service.muted(ALICE) == frozenset()
    service.muted_types = muted
    items, _ = await service.feed(ALICE, status="all", type_=None, before=None, limit=20)
    assert [i.notification.seq for i in items] == [2]
    assert (await service.unread(ALICE)).count == 1
    snap = await service.snapshot(ALICE)
    assert [i["id"] for i in snap["latest"]] == [2]
    assert snap["unread"]["count"] == 1
    assert asked == ["alice", "alice", "alice"]


async def test_feed_passes_every_filter_through(service: Tidings) -> None:
    for i in range(4):
        await service.publish("t1", new(f"n{i}", type_="reminder" if i % 2 else "system"))
    await service.publish("t1", new("r", audience=Audience(roles=("staff",))))
    await service.mark_read(ALICE, [4])
    items, more = await service.feed(ALICE, status="unread", type_="reminder", before=None, limit=5)
    assert [i.notification.seq for i in items] == [2]
    items, more = await service.feed(ALICE, status="all", type_=None, before=5, limit=2)
    assert [i.notification.seq for i in items] == [4, 3]
    assert more == 3
    items, _ = await service.feed(ALICE, status="read", type_=None, before=None, limit=5)
    assert [i.notification.seq for i in items] == [4]
    items, _ = await service.feed(ALICE, status="all", type_=None, before=None, limit=1)
    assert [i.notification.seq for i in items] == [5]  # the role-targeted row is alice's


async def test_tokens_respect_the_ttl_bounds(service: Tidings) -> None:
    settings = service.settings
    token, expires = service.mint_token("t1", "alice", ["staff", "owner"], email="a@b.example")
    claims = auth.verify(SECRET, token, max_ttl=settings.token_max_ttl)
    assert (claims.tenant, claims.user, claims.roles) == (
        "t1",
        "alice",
        frozenset({"staff", "owner"}),
    )
    assert claims.email == "a@b.example"
    assert claims.expires_at == expires
    token, _ = service.mint_token("t1", "alice")
    assert auth.verify(SECRET, token, max_ttl=settings.token_max_ttl).roles == frozenset()
    for ttl in (1, settings.token_max_ttl):
        service.mint_token("t1", "alice", ttl=ttl)
    for ttl in (-1, settings.token_max_ttl + 1):
        with pytest.raises(ValidationFailed, match="ttl"):
            service.mint_token("t1", "alice", ttl=ttl)
    default, _ = service.mint_token("t1", "alice", ttl=None)
    issued = jwt.decode(default, SECRET, algorithms=["HS256"], options={"verify_aud": False})
    assert issued["exp"] - issued["iat"] == settings.token_default_ttl


async def test_keys_and_tenants(service: Tidings) -> None:
    assert [t.id for t in await service.list_tenants()] == ["t1", "t2"]
    key, secret = await service.create_key("t1", "ci", ["publish"])
    assert secret.startswith("tdg_")
    assert [k.id for k in await service.list_keys("t1")] == [key.id]
    assert await service.list_keys("t2") == []
    with pytest.raises(NotFound):
        await service.list_keys("nope")
    with pytest.raises(NotFound):
        await service.revoke_key(key.id, tenant_id="t2")  # another tenant's key
    revoked = await service.revoke_key(key.id, tenant_id="t1")
    assert revoked.revoked_at is not None


async def test_publish_rate_uses_the_shared_limits_it_is_given(
    store_template: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A service told to share its limits through Redis asks Redis (here: a real client to a
    port where nothing listens, so it says so and falls back to the per-instance window)."""
    dead = f"redis://127.0.0.1:{free_port()}/0"
    async with service_on(store_template, tmp_path, limits_url=dead) as svc:
        key = KeyPrincipal(tenant="t1", key_id="k1", scopes=frozenset({"publish"}))
        with caplog.at_level(logging.WARNING, logger="tidings.ratelimit"):
            await svc.rate_limit(key)
        assert "shared rate limit storage unavailable" in caplog.text
