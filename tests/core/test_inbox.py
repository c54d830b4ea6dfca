"""Inbox states and actors (issue 10 items 1-2): mark unread, unarchive, snooze; the actor gets
their own notification already read. Over HTTP (single, batch), the compatible broadcast route
and in-process; each state change reaches the user's other streams; bad input changes nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.support import ServerThread, Stream, Tenant, mark, open_service, publish
from tidings.config import Settings
from tidings.domain.notifications import NewNotification
from tidings.domain.principals import Principal

pytestmark = pytest.mark.anyio

ANN = {"id": "ann", "name": "Ann Alvarez"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def later(**delta: float) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).isoformat()


async def count(client: httpx.AsyncClient, token: str) -> Any:
    r = await client.get("/v1/feed/unread-count", headers=bearer(token))
    assert r.status_code == 200, r.text
    return r.json()


async def feed(client: httpx.AsyncClient, token: str, **params: Any) -> list[tuple[int, bool]]:
    r = await client.get("/v1/feed", params={"limit": 100, **params}, headers=bearer(token))
    assert r.status_code == 200, r.text
    return [(n["id"], n["read"]) for n in r.json()["items"]]


async def test_the_actor_gets_it_read_over_http_batch_and_compat(
    server: ServerThread, tenant: Tenant
) -> None:
    ann, bob = tenant.token("ann"), tenant.token("bob")
    ann_stream, bob_stream = Stream(server.url, ann), Stream(server.url, bob)
    async with ann_stream, bob_stream, httpx.AsyncClient(timeout=10, base_url=server.url) as c:
        ready = await ann_stream.next_event("ready")
        assert ready.data["user"] == "ann", "the client learns whose stream it is"
        await bob_stream.next_event("ready")
        one = await publish(c, tenant, "Booking confirmed", actor=ANN)
        assert one["actor"] == ANN
        r = await c.post(
            "/v1/notifications/batch",
            headers=tenant.auth,
            json={"notifications": [{"type": "system", "title": "paid", "actor": {"id": "ann"}}]},
        )
        assert r.status_code == 201, r.text
        r = await c.post(
            "/api/sse/broadcast",
            headers=tenant.auth,
            json={
                "tenantId": tenant.id,
                "notification": {"type": "booking_cancelled", "title": "x", "actorId": "ann"},
            },
        )
        assert r.status_code == 200, r.text
        assert r.json()["notification"]["actor"] == {"id": "ann", "name": None}
        await publish(c, tenant, "by bob", actor={"id": "bob"})

        # The frame carries the actor: the client treats it as read for that user (protocol.md).
        frames = await ann_stream.notifications(4)
        assert [f.data["actor"] and f.data["actor"]["id"] for f in frames] == [
            "ann",
            "ann",
            "ann",
            "bob",
        ]
        assert await count(c, ann) == {"count": 1, "more": False}, "only bob's counts for ann"
        assert await count(c, bob) == {"count": 3, "more": False}
        assert await feed(c, ann) == [(4, False), (3, True), (2, True), (1, True)]
        assert await feed(c, ann, status="unread") == [(4, False)]
        # A new ready (a reconnect) agrees: the count and the latest five say read.
        async with Stream(server.url, ann) as again:
            snap = (await again.next_event("ready")).data
        assert snap["unread"] == {"count": 1, "more": False}
        assert [(n["id"], n["read"]) for n in snap["latest"]] == [
            (4, False),
            (3, True),
            (2, True),
            (1, True),
        ]
        # The actor may still mark their own notification unread: it counts then.
        r = await c.post("/v1/feed/unread", json={"ids": [1]}, headers=bearer(ann))
        assert r.json()["unread"] == {"count": 2, "more": False}


async def test_the_actor_gets_it_read_in_process(settings: Settings) -> None:
    async with open_service(settings) as service:
        await service.create_tenant("acme", "Acme")
        stored, _ = await service.publish(
            "acme", NewNotification(type="system", title="mine", actor=ANN)
        )
        async with service.transaction() as tx:
            await tx.publish("acme", NewNotification(type="system", title="t", actor=ANN))
        soon = datetime.now(UTC) + timedelta(hours=1)
        ann = Principal(tenant="acme", user="ann", roles=frozenset(), expires_at=soon)
        bob = Principal(tenant="acme", user="bob", roles=frozenset(), expires_at=soon)
        assert stored.public()["actor"] == ANN
        assert (await service.unread(ann)).public() == {"count": 0, "more": False}
        assert (await service.unread(bob)).public() == {"count": 2, "more": False}
        items, _ = await service.feed(ann, status="all", type_=None, before=None, limit=10)
        assert [(i.notification.seq, i.read) for i in items] == [(2, True), (1, True)]


async def test_state_changes_reach_the_users_other_streams_and_counts_stay_exact(
    server: ServerThread, tenant: Tenant
) -> None:
    ann = tenant.token("ann")
    one, two = Stream(server.url, ann), Stream(server.url, ann)
    bob = Stream(server.url, tenant.token("bob"))
    async with one, two, bob, httpx.AsyncClient(timeout=10, base_url=server.url) as c:
        for s in (one, two, bob):
            await s.next_event("ready")
        for i in range(5):
            await publish(c, tenant, f"n{i + 1}")
        r = await c.post("/v1/feed/read", json={"all": True}, headers=bearer(ann))
        assert r.json()["unread"] == {"count": 0, "more": False}

        # Mark unread below the watermark: it counts again, everywhere.
        r = await c.post("/v1/feed/unread", json={"ids": [2, 4]}, headers=bearer(ann))
        assert r.status_code == 200, r.text
        assert r.json()["unread"] == {"count": 2, "more": False}
        for s in (one, two):
            event = await s.next_event("unread")
            assert event.id is None
            assert event.data["ids"] == [2, 4]
            assert event.data["unread"] == {"count": 2, "more": False}
            assert [(n["id"], n["read"]) for n in event.data["items"]] == [(4, False), (2, False)]
        assert await feed(c, ann, status="unread") == [(4, False), (2, False)]

        # Archive then unarchive: back in the inbox, read (archiving read it).
        await c.post("/v1/feed/archive", json={"ids": [4]}, headers=bearer(ann))
        assert await count(c, ann) == {"count": 1, "more": False}
        r = await c.post("/v1/feed/unarchive", json={"ids": [4]}, headers=bearer(ann))
        assert r.json()["unread"] == {"count": 1, "more": False}
        for s in (one, two):
            event = await s.next_event("unarchived")
            assert event.data["ids"] == [4] and event.data["unread"]["count"] == 1
            assert [(n["id"], n["read"], n["archived"]) for n in event.data["items"]] == [
                (4, True, False)
            ]
        assert (4, True) in await feed(c, ann)

        # Snooze: out of the count and the default view, listed under status=snoozed.
        until = later(hours=1)
        r = await c.post("/v1/feed/snooze", json={"ids": [2], "until": until}, headers=bearer(ann))
        assert r.status_code == 200, r.text
        assert r.json()["unread"] == {"count": 0, "more": False}
        for s in (one, two):
            event = await s.next_event("snoozed")
            assert event.data["ids"] == [2] and event.data["unread"]["count"] == 0
            assert event.data["until"].endswith("Z")
        assert [i for i, _ in await feed(c, ann)] == [5, 4, 3, 1]
        snoozed = (
            await c.get("/v1/feed", params={"status": "snoozed"}, headers=bearer(ann))
        ).json()
        assert [(n["id"], n["snoozed_until"] is not None) for n in snoozed["items"]] == [(2, True)]
        # Marking a snoozed item unread ends its snooze: back in the inbox, counted.
        r = await c.post("/v1/feed/unread", json={"ids": [2]}, headers=bearer(ann))
        assert r.json()["unread"] == {"count": 1, "more": False}
        assert [i for i, _ in await feed(c, ann)] == [5, 4, 3, 2, 1]
        # Mark all read clears ann's own unread marks below the watermark.
        await c.post("/v1/feed/read", json={"all": True}, headers=bearer(ann))
        assert await count(c, ann) == {"count": 0, "more": False}
        await publish(c, tenant, "n6")
        assert await count(c, ann) == {"count": 1, "more": False}

        # Bob's stream heard none of it; his count is untouched.
        frames = await bob.until(await mark(tenant))
        assert [f.event for f in frames if f.event not in ("notification",)] == []
        assert await count(c, tenant.token("bob")) == {"count": 7, "more": False}


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/v1/feed/unread", {"ids": []}, 422),
        ("/v1/feed/unread", {"ids": [0]}, 422),
        ("/v1/feed/unread", {"ids": ["x"]}, 422),
        ("/v1/feed/unread", {"ids": [1], "extra": 1}, 422),
        ("/v1/feed/unread", {"ids": [1, 99]}, 404),
        ("/v1/feed/unarchive", {"ids": [99]}, 404),
        ("/v1/feed/unarchive", {}, 422),
        ("/v1/feed/snooze", {"ids": [1]}, 422),
        ("/v1/feed/snooze", {"ids": [1], "until": "tomorrow"}, 422),
        ("/v1/feed/snooze", {"ids": [1], "until": "2030-01-01T09:00:00"}, 422),  # no zone
        ("/v1/feed/snooze", {"ids": [1], "until": "2001-01-01T09:00:00Z"}, 422),  # past
        ("/v1/feed/snooze", {"ids": [1], "until": "2999-01-01T09:00:00Z"}, 422),  # too far
        ("/v1/feed/snooze", {"ids": [1, 99], "until": "LATER"}, 404),
        ("/v1/feed/snooze", {"ids": [3], "until": "LATER"}, 404),  # bob's, not ann's
    ],
)
async def test_bad_input_is_a_problem_and_changes_nothing(
    server: ServerThread, tenant: Tenant, path: str, body: dict[str, Any], status: int
) -> None:
    ann = tenant.token("ann")
    if body.get("until") == "LATER":
        body = {**body, "until": later(hours=1)}
    async with httpx.AsyncClient(timeout=10, base_url=server.url) as c:
        await publish(c, tenant, "n1")
        await publish(c, tenant, "n2")
        await publish(c, tenant, "for bob", audience={"users": ["bob"]})
        await c.post("/v1/feed/read", json={"ids": [1]}, headers=bearer(ann))
        await c.post("/v1/feed/archive", json={"ids": [2]}, headers=bearer(ann))
        before = (await feed(c, ann), await feed(c, ann, status="archived"), await count(c, ann))
        r = await c.post(path, json=body, headers=bearer(ann))
        assert r.status_code == status, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        after = (await feed(c, ann), await feed(c, ann, status="archived"), await count(c, ann))
        assert after == before
        assert await feed(c, ann, status="snoozed") == []
        r = await c.post(path, json=body)  # and without a token: 401, nothing either
        assert r.status_code == 401


async def test_compat_actor_fields_are_checked(server: ServerThread, tenant: Tenant) -> None:
    async with httpx.AsyncClient(timeout=10, base_url=server.url) as c:
        for note in (
            {"title": "x", "actorId": True},
            {"title": "x", "actorName": "Ann"},
            {"title": "x", "actor": {"id": "ann"}, "actorId": "ann"},
            {"title": "x", "actor": {"name": "Ann"}},
            {"title": "x", "actor": {"id": "bad id"}},
        ):
            r = await c.post(
                "/api/sse/broadcast",
                headers=tenant.auth,
                json={"tenantId": tenant.id, "notification": note},
            )
            assert r.status_code == 422, (note, r.text)
        r = await c.post(
            "/v1/notifications",
            headers=tenant.auth,
            json={"type": "system", "title": "x", "actor": {"id": "a", "role": "x"}},
        )
        assert r.status_code == 422
        latest = (await c.get("/v1/feed", headers=bearer(tenant.token("ann")))).json()
        assert latest["items"] == []


async def test_erasing_the_actor_unnames_them(server: ServerThread, tenant: Tenant) -> None:
    from tests.support import OPERATOR

    async with httpx.AsyncClient(timeout=10, base_url=server.url) as c:
        sent = await publish(c, tenant, "Ann cancelled #4", actor=ANN)
        r = await c.delete(
            f"/v1/admin/tenants/{tenant.id}/users/ann",
            headers={"Authorization": f"Bearer {OPERATOR}"},
        )
        assert r.status_code == 200, r.text
        assert r.json()["removed"]["actors"] == 1
        [item] = (await c.get("/v1/feed", headers=bearer(tenant.token("bob")))).json()["items"]
        assert item["id"] == sent["id"] and item["actor"] is None
