"""Web Push end to end: tidings → a push service stand-in that checks VAPID and decrypts."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from tests.channels.conftest import (
    PushService,
    bearer,
    channel_settings,
    on_server,
    start_server,
    token,
    wait_until,
)
from tests.conftest import STORES
from tests.support import OPERATOR, ServerThread, Stream, Tenant, create_tenant, publish
from tidings.store.erasure import erase_user

pytestmark = pytest.mark.anyio


@pytest.fixture
def server(push_server: ServerThread) -> ServerThread:
    """The root ``tenant`` fixture builds on this server."""
    return push_server


async def subscribe(
    client: httpx.AsyncClient, server: ServerThread, user_token: str, subscription: dict[str, Any]
) -> dict[str, Any]:
    r = await client.post(
        f"{server.url}/v1/push/subscriptions", json=subscription, headers=bearer(user_token)
    )
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def deliveries(client: httpx.AsyncClient, tenant: Tenant, seq: int) -> dict[str, Any]:
    r = await client.get(f"{tenant.url}/v1/notifications/{seq}/deliveries", headers=tenant.auth)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_push_reaches_the_device_encrypted_and_signed(
    server: ServerThread, tenant: Tenant, push_service: PushService
) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        key = (await client.get(f"{server.url}/v1/push/key")).json()["public_key"]
        push_service.vapid_key = key  # the stand-in insists on the published key
        ann = token(tenant, "ann", roles=["owner"])
        phone, laptop = push_service.device("ann-phone"), push_service.device("ann-laptop")
        saved = await subscribe(client, server, ann, phone.subscription())
        await subscribe(client, server, ann, laptop.subscription())
        assert saved["push_service"] == push_service.origin
        listed = await client.get(f"{server.url}/v1/push/subscriptions", headers=bearer(ann))
        assert len(listed.json()["subscriptions"]) == 2

        sent = await publish(
            client,
            tenant,
            "Booking #7 cancelled",
            type="booking_cancelled",
            body="Castle XL, Saturday",
            link="/bookings/7",
            audience={"roles": ["owner"]},
        )
        [message] = await push_service.wait_for("ann-phone")
        await push_service.wait_for("ann-laptop")
        assert message == {
            "id": sent["id"],
            "type": "booking_cancelled",
            "title": "Booking #7 cancelled",
            "body": "Castle XL, Saturday",
            "url": "https://app.example.test/bookings/7",
            "tag": f"tidings:jump-joy:{sent['id']}",
            "created_at": sent["created_at"],
        }
        assert push_service.errors == []
        [first] = push_service.received[:1]
        assert first.claims["aud"] == push_service.origin
        assert first.headers["urgency"] == "normal" and int(first.headers["ttl"]) > 0

        async def logged() -> bool:
            summary = (await deliveries(client, tenant, sent["id"]))["summary"]
            return bool(summary["push"]["sent"] == 2)

        await wait_until(logged, what="two sent deliveries in the log")
        log = await deliveries(client, tenant, sent["id"])
        assert log["summary"]["push"]["devices"] == 2
        statuses = sorted((e["status"], e["target"]) for e in log["entries"])
        assert statuses == sorted(
            [
                ("queued", f"device:{saved['id']}"),
                ("sent", f"device:{saved['id']}"),
                ("queued", f"device:{saved['id'] + 1}"),
                ("sent", f"device:{saved['id'] + 1}"),
            ]
        )


async def test_gone_subscription_is_removed(
    server: ServerThread, tenant: Tenant, push_service: PushService
) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        bob = token(tenant, "bob")
        old, new = push_service.device("bob-old"), push_service.device("bob-new")
        gone = await subscribe(client, server, bob, old.subscription())
        await subscribe(client, server, bob, new.subscription())
        push_service.script["bob-old"] = [410]
        sent = await publish(client, tenant, "Payment failed", type="payment_failed")
        await push_service.wait_for("bob-new")

        async def removed() -> bool:
            r = await client.get(f"{server.url}/v1/push/subscriptions", headers=bearer(bob))
            return [s["id"] for s in r.json()["subscriptions"]] != [gone["id"], gone["id"] + 1]

        await wait_until(removed, what="the 410 subscription to be removed")
        r = await client.get(f"{server.url}/v1/push/subscriptions", headers=bearer(bob))
        assert [s["id"] for s in r.json()["subscriptions"]] == [gone["id"] + 1]
        log = await deliveries(client, tenant, sent["id"])
        failed = [e for e in log["entries"] if e["status"] == "failed"]
        assert failed == [
            {
                **failed[0],
                "target": f"device:{gone['id']}",
                "reason": "gone",
                "detail": {"status": 410, "removed": True},
            }
        ]
        # The next notification goes to the remaining device only, once.
        await publish(client, tenant, "Another one", type="payment_failed")
        await push_service.wait_for("bob-new", 2)
        assert push_service.attempts["bob-old"] == 1


async def test_live_stream_is_not_pushed_until_it_closes(
    server: ServerThread, tenant: Tenant, push_service: PushService
) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        cat, dan = token(tenant, "cat"), token(tenant, "dan")
        await subscribe(client, server, cat, push_service.device("cat").subscription())
        await subscribe(client, server, dan, push_service.device("dan").subscription())
        async with Stream(server.url, cat) as stream:
            await stream.next_event("ready")
            sent = await publish(client, tenant, "New booking")
            await stream.notifications(1)
            await push_service.wait_for("dan")
            log = await deliveries(client, tenant, sent["id"])
            cat_entries = [(e["status"], e["reason"]) for e in log["entries"] if e["user"] == "cat"]
            assert cat_entries == [("skipped", "live_stream")]
        # Stream closed: the hub forgets cat at once, so the next one is pushed.
        await wait_until(lambda: _no_stream(server, "cat"), what="the stream to close")
        await publish(client, tenant, "Second booking")
        got = await push_service.wait_for("cat")
        assert [m["title"] for m in got] == ["Second booking"]


async def _no_stream(server: ServerThread, user: str) -> bool:
    return not server.service.hub.has_stream("jump-joy", user)


async def test_failures_are_retried_with_backoff(
    server: ServerThread, tenant: Tenant, push_service: PushService
) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        eve = token(tenant, "eve")
        saved = await subscribe(client, server, eve, push_service.device("eve").subscription())
        push_service.script["eve"] = [503, 500]
        sent = await publish(client, tenant, "Payment received", type="payment_received")
        [message] = await push_service.wait_for("eve")
        assert message["id"] == sent["id"]
        assert push_service.attempts["eve"] == 3

        async def settled() -> bool:
            summary = (await deliveries(client, tenant, sent["id"]))["summary"]
            return bool(summary["push"]["sent"] == 1)

        await wait_until(settled, what="the retried push to be logged as sent")
        log = await deliveries(client, tenant, sent["id"])
        trail = [
            (e["status"], e["reason"], (e["detail"] or {}).get("status")) for e in log["entries"]
        ]
        assert trail == [
            ("queued", None, None),
            ("failed", "retrying", 503),
            ("failed", "retrying", 500),
            ("sent", None, 201),
        ]
        assert all(e["target"] == f"device:{saved['id']}" for e in log["entries"])


@pytest.mark.postgres
async def test_two_instances_push_each_notification_once_and_share_presence(
    tmp_path: Path, push_service: PushService, postgres_url: str
) -> None:
    import asyncio

    # B's presence rows must stay current through the burst of publishes: both servers and the
    # test share one process, and on a loaded 2-core CI machine a beat has come 0.6 s late (the
    # suite's lease, 3 x 0.2 s, lapsed and bob was pushed). A 1 s beat gives a 3 s lease.
    settings = channel_settings(
        tmp_path,
        database_url=postgres_url,
        push_ca_file=str(push_service.ca),
        presence_interval=1.0,
    )
    a, b = start_server(settings), start_server(settings)
    try:
        tenant = create_tenant(a.url, "jump-joy")
        async with httpx.AsyncClient(timeout=10) as client:
            ann, bob = token(tenant, "ann"), token(tenant, "bob")
            for name in ("ann-1", "ann-2"):
                await subscribe(client, b, ann, push_service.device(name).subscription())
            await subscribe(client, a, bob, push_service.device("bob").subscription())
            async with Stream(b.url, bob) as stream:  # bob is live on B only
                await stream.next_event("ready")

                async def bob_live_for_a() -> bool:
                    async def check(channels: Any) -> bool:
                        async with channels.service.store.read() as conn:
                            return "bob" in await channels.presence.live(conn, "jump-joy", ["bob"])

                    return await on_server(a, check)

                await wait_until(bob_live_for_a, what="B's presence row for bob")
                sent = await asyncio.gather(
                    *(publish(client, tenant, f"n{i}") for i in range(6)),
                    *(
                        publish(client, Tenant(tenant.id, tenant.key, b.url), f"m{i}")
                        for i in range(6)
                    ),
                )
                ids = sorted(n["id"] for n in sent)
                for name in ("ann-1", "ann-2"):
                    got = await push_service.wait_for(name, 12)
                    assert sorted(m["id"] for m in got) == ids
                await asyncio.sleep(0.5)  # both planners and both workers had time to err
                for name in ("ann-1", "ann-2"):
                    assert len(push_service.for_device(name)) == 12
                assert push_service.for_device("bob") == []
                log = await deliveries(client, tenant, ids[0])
                assert [e["reason"] for e in log["entries"] if e["user"] == "bob"] == [
                    "live_stream"
                ]
    finally:
        a.stop()
        b.stop()


async def test_unread_delay_pushes_live_users_who_did_not_read(
    tmp_path: Path, push_service: PushService
) -> None:
    import asyncio

    # The delay leaves room for two publishes, a stream read and a read request on a loaded
    # machine (0.8 s did not, once): the read must land within it for the test to mean anything.
    delay = 2.5
    settings = channel_settings(
        tmp_path, push_ca_file=str(push_service.ca), push_unread_delay=delay
    )
    srv = start_server(settings)
    try:
        tenant = create_tenant(srv.url, "jump-joy")
        ann = token(tenant, "ann")
        async with httpx.AsyncClient(timeout=10) as client, Stream(srv.url, ann) as stream:
            await subscribe(client, srv, ann, push_service.device("ann").subscription())
            await stream.next_event("ready")
            started = time.monotonic()
            ignored = await publish(client, tenant, "Seen on screen but not read")
            read = await publish(client, tenant, "Read at once")
            await stream.notifications(2)
            r = await client.post(
                f"{srv.url}/v1/feed/read", headers=bearer(ann), json={"ids": [read["id"]]}
            )
            assert r.status_code == 200
            within = time.monotonic() - started
            assert within < delay, f"the read took {within:.2f} s: past the delay, proves nothing"
            assert push_service.for_device("ann") == []  # nothing before the delay
            got = await push_service.wait_for("ann")
            assert [m["id"] for m in got] == [ignored["id"]]

            async def skipped() -> bool:
                log = await deliveries(client, tenant, read["id"])
                return any(e["status"] == "skipped" for e in log["entries"])

            await wait_until(skipped, what="the read one to be skipped")
            log = await deliveries(client, tenant, read["id"])
            assert [(e["status"], e["reason"]) for e in log["entries"]] == [
                ("queued", None),
                ("skipped", "already_read"),
            ]
            await asyncio.sleep(0.3)
            assert len(push_service.for_device("ann")) == 1
    finally:
        srv.stop()


async def _hold_a_push_to_ann(
    client: httpx.AsyncClient, server: ServerThread, tenant: Tenant, push_service: PushService
) -> threading.Event:
    """ann and bob each with a device (``<tenant>-ann`` / ``<tenant>-bob``); a push to ann
    held in flight at the push service until the returned gate is set."""
    push_service.vapid_key = (await client.get(f"{server.url}/v1/push/key")).json()["public_key"]
    for user in ("ann", "bob"):
        device = push_service.device(f"{tenant.id}-{user}").subscription()
        await subscribe(client, server, token(tenant, user), device)
    push_service.gates[f"{tenant.id}-ann"] = gate = threading.Event()
    await publish(client, tenant, "For ann", audience={"users": ["ann"]})
    assert await asyncio.to_thread(push_service.arrived[f"{tenant.id}-ann"].wait, 10)
    return gate


async def _plan_a_push_to_bob(
    client: httpx.AsyncClient, server: ServerThread, tenant: Tenant
) -> int:
    """Publish to bob and wait until his push is in the outbox; its row's id."""
    await publish(client, tenant, "For bob", audience={"users": ["bob"]})

    async def bobs_row(channels: Any) -> int | None:
        async with channels.service.store.read() as conn:
            found = await conn.execute(
                text("SELECT id FROM push_outbox WHERE tenant_id = :t AND user_id = 'bob'"),
                {"t": tenant.id},
            )
            row = found.first()
            return None if row is None else int(row[0])

    async def planned(channels: Any) -> bool:
        return await bobs_row(channels) is not None

    await wait_until(lambda: on_server(server, planned), what="bob's push to be planned")
    found = await on_server(server, bobs_row)
    assert found is not None
    return found


async def _logged_once_bob_is_sent(
    client: httpx.AsyncClient, server: ServerThread, tenant: Tenant, push_service: PushService
) -> dict[str, list[str]]:
    """The delivery log's statuses per user, once a push to bob went out. The worker claims
    its next batch only once the one before is finished: bob's push is the marker that ann's
    attempt has been settled."""
    await push_service.wait_for(f"{tenant.id}-bob")

    async def logged(channels: Any) -> dict[str, list[str]]:
        async with channels.service.store.read() as conn:
            rows = await conn.execute(
                text("SELECT user_id, status FROM delivery_log WHERE tenant_id = :t"),
                {"t": tenant.id},
            )
            found: dict[str, list[str]] = {}
            for user, status in rows:
                found.setdefault(str(user), []).append(str(status))
            return found

    async def bob_sent(channels: Any) -> bool:
        return "sent" in (await logged(channels)).get("bob", [])

    await wait_until(lambda: on_server(server, bob_sent))
    return await on_server(server, logged)


async def test_an_attempt_in_flight_when_its_user_is_erased_leaves_no_log(
    server: ServerThread, tenant: Tenant, push_service: PushService
) -> None:
    """An erasure that lands while a push to the user is in flight: the attempt's outcome is
    not recorded (the erased user leaves no delivery-log row behind), and a push planned
    meanwhile for someone else is untouched by it — on SQLite that row takes the id of the
    erased one (the id of a deleted last row is handed out again), so an attempt that knew its
    row by id alone would delete bob's push and log it as ann's."""
    async with httpx.AsyncClient(timeout=10) as client:
        gate = await _hold_a_push_to_ann(client, server, tenant, push_service)
        r = await client.delete(
            f"{server.url}/v1/admin/tenants/{tenant.id}/users/ann",
            headers={"Authorization": f"Bearer {OPERATOR}"},
        )
        assert r.status_code == 200, r.text
        assert await _plan_a_push_to_bob(client, server, tenant) == 1  # ann's row's id
        gate.set()
        logged = await _logged_once_bob_is_sent(client, server, tenant, push_service)
        assert logged == {"bob": ["queued", "sent"]}


@pytest.fixture(params=STORES)
def store_push_server(
    request: pytest.FixtureRequest, tmp_path: Path, push_service: PushService
) -> Iterator[ServerThread]:
    overrides: dict[str, Any] = {"push_ca_file": str(push_service.ca)}
    if request.param == "postgres":
        overrides["database_url"] = request.getfixturevalue("postgres_url")
    srv = start_server(channel_settings(tmp_path, **overrides))
    try:
        yield srv
    finally:
        srv.stop()


async def test_an_attempt_finishing_during_an_erasure_waits_for_it_and_leaves_no_log(
    store_push_server: ServerThread, push_service: PushService
) -> None:
    """An erasure whose transaction is still open when a push to the user finishes (two
    concurrent transactions on PostgreSQL): the attempt waits for the erasure and records
    nothing, so no delivery-log row of the erased user is left behind."""
    server = store_push_server
    async with httpx.AsyncClient(timeout=10) as client:
        tenant = create_tenant(server.url, "held-erase")
        gate = await _hold_a_push_to_ann(client, server, tenant, push_service)

        async def erase_slowly(channels: Any) -> dict[str, int]:
            service = channels.service
            async with service.store.write() as conn:
                removed = await erase_user(conn, tenant.id, "ann", also=service.user_erasers)
                gate.set()  # the attempt finishes while this transaction is open
                await asyncio.sleep(1.0)
            return removed

        removed = await on_server(server, erase_slowly)
        assert removed["push_subscriptions"] == 1
        await publish(client, tenant, "For bob", audience={"users": ["bob"]})
        logged = await _logged_once_bob_is_sent(client, server, tenant, push_service)
        sent = {user: n for user, statuses in logged.items() if (n := statuses.count("sent"))}
        assert sent == {"bob": 1}
