"""Collapse keys (issue 10 item 3): ``group`` on publish (HTTP single and batch, the compatible
broadcast, in-process), carried in frames, ``ready`` and the feed; the grouped feed; marking a
group read. The unread count counts items (docs/protocol.md); bad input changes nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest

from tests.support import ServerThread, Stream, Tenant, mark, open_service, publish
from tidings.config import Settings
from tidings.domain.notifications import NewNotification
from tidings.domain.principals import Principal

pytestmark = pytest.mark.anyio


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def count(c: httpx.AsyncClient, token: str) -> Any:
    r = await c.get("/v1/feed/unread-count", headers=bearer(token))
    assert r.status_code == 200, r.text
    return r.json()


async def grouped(c: httpx.AsyncClient, token: str, **params: Any) -> Any:
    r = await c.get("/v1/feed", params={"grouped": "true", **params}, headers=bearer(token))
    assert r.status_code == 200, r.text
    return r.json()


def cards(page: Any) -> list[tuple[int, str | None, int, int, bool]]:
    return [
        (n["id"], n["group"], n["group_count"], n["group_unread"], n["read"]) for n in page["items"]
    ]


async def test_groups_travel_everywhere_and_the_feed_collapses_them(
    server: ServerThread, tenant: Tenant
) -> None:
    ann = tenant.token("ann")
    one, two = Stream(server.url, ann), Stream(server.url, ann)
    async with one, two, httpx.AsyncClient(timeout=10, base_url=server.url) as c:
        for s in (one, two):
            await s.next_event("ready")
        await publish(c, tenant, "Booking #42 created", group="booking:42")  # 1
        r = await c.post(
            "/v1/notifications/batch",
            headers=tenant.auth,
            json={
                "notifications": [
                    {"type": "system", "title": "Booking #7 created", "group": "booking:7"},  # 2
                    {"type": "system", "title": "no group"},  # 3
                    {"type": "system", "title": "Booking #42 paid", "group": "booking:42"},  # 4
                ]
            },
        )
        assert r.status_code == 201, r.text
        assert [n["group"] for n in r.json()["notifications"]] == ["booking:7", None, "booking:42"]
        r = await c.post(
            "/api/sse/broadcast",
            headers=tenant.auth,
            json={
                "tenantId": tenant.id,
                "notification": {"type": "booking_confirmed", "title": "x", "group": "booking:42"},
            },
        )  # 5
        assert r.status_code == 200, r.text
        assert r.json()["notification"]["group"] == "booking:42"

        frames = await one.notifications(5)
        assert [f.data["group"] for f in frames] == [
            "booking:42",
            "booking:7",
            None,
            "booking:42",
            "booking:42",
        ]
        # The count counts items, not groups: five unread items in three cards.
        assert await count(c, ann) == {"count": 5, "more": False}
        page = await grouped(c, ann)
        assert cards(page) == [
            (5, "booking:42", 3, 3, False),
            (3, None, 1, 1, False),
            (2, "booking:7", 1, 1, False),
        ]
        assert page["next_cursor"] is None
        flat = (await c.get("/v1/feed", headers=bearer(ann))).json()["items"]
        assert [n["id"] for n in flat] == [5, 4, 3, 2, 1]
        assert "group_count" not in flat[0] or flat[0]["group_count"] is None

        # Pages of cards are exact: no group on two pages, whatever the limit.
        seen: list[int] = []
        cursor = None
        while True:
            params = {"limit": 1, **({"cursor": cursor} if cursor else {})}
            page = await grouped(c, ann, **params)
            seen += [n["id"] for n in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == [5, 3, 2]

        # Marking the card read marks the group: the read event lists every id of it.
        r = await c.post("/v1/feed/read", json={"groups": ["booking:42"]}, headers=bearer(ann))
        assert r.status_code == 200, r.text
        assert r.json()["unread"] == {"count": 2, "more": False}
        for s in (one, two):
            event = await s.next_event("read")
            assert event.data["ids"] == [1, 4, 5]
            assert event.data["unread"] == {"count": 2, "more": False}
        assert cards(await grouped(c, ann))[0] == (5, "booking:42", 3, 0, True)
        # One item of a group unread again: the card is unread, one of three.
        await c.post("/v1/feed/unread", json={"ids": [1]}, headers=bearer(ann))
        assert cards(await grouped(c, ann))[0] == (5, "booking:42", 3, 1, True)
        assert cards(await grouped(c, ann, status="unread")) == [
            (3, None, 1, 1, False),
            (2, "booking:7", 1, 1, False),
            (1, "booking:42", 1, 1, False),
        ]
        assert await count(c, ann) == {"count": 3, "more": False}

        # A reconnect's ready agrees with the store: the same items, groups and count.
        async with Stream(server.url, ann) as again:
            snap = (await again.next_event("ready")).data
        assert snap["unread"] == {"count": 3, "more": False}
        assert [(n["id"], n["group"], n["read"]) for n in snap["latest"]] == [
            (5, "booking:42", True),
            (4, "booking:42", True),
            (3, None, False),
            (2, "booking:7", False),
            (1, "booking:42", False),
        ]
        # Resume replays the frames with their groups.
        async with Stream(server.url, ann, last_event_id=3) as resumed:
            replayed = await resumed.notifications(2)
        assert [(f.id, f.data["group"]) for f in replayed] == [(4, "booking:42"), (5, "booking:42")]


async def test_groups_in_process(settings: Settings) -> None:
    async with open_service(settings) as service:
        await service.create_tenant("acme", "Acme")
        await service.publish("acme", NewNotification(type="system", title="a", group="g:1"))
        async with service.transaction() as tx:
            await tx.publish("acme", NewNotification(type="system", title="b", group="g:1"))
        soon = datetime.now(UTC) + timedelta(hours=1)
        ann = Principal(tenant="acme", user="ann", roles=frozenset(), expires_at=soon)
        page, after = await service.grouped_feed(
            ann, status="all", type_=None, before=None, limit=10
        )
        assert [c.public()["id"] for c in page] == [2] and after is None
        assert (page[0].count, page[0].unread) == (2, 2)
        assert (await service.mark_groups_read(ann, ["g:1"])).public()["count"] == 0


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/v1/feed/read", {"groups": []}, 422),
        ("/v1/feed/read", {"groups": ["Booking:42"]}, 422),
        ("/v1/feed/read", {"groups": ["x" * 129]}, 422),
        ("/v1/feed/read", {"groups": [42]}, 422),
        ("/v1/feed/read", {"groups": ["g:1"], "ids": [1]}, 422),
        ("/v1/feed/read", {"groups": ["g:1"], "all": True}, 422),
        ("/v1/feed/read", {"groups": ["g:1"], "up_to": 1}, 422),
        ("/v1/feed/read", {"groups": ["g:1", "nope"]}, 404),
        ("/v1/feed/read", {"groups": ["g:bob"]}, 404),  # bob's, not ann's
        ("/v1/notifications", {"type": "system", "title": "x", "group": ""}, 422),
        ("/v1/notifications", {"type": "system", "title": "x", "group": "a b"}, 422),
        ("/v1/notifications", {"type": "system", "title": "x", "group": "9lives"}, 422),
        ("/v1/notifications", {"type": "system", "title": "x", "group": "a" * 129}, 422),
        ("/v1/notifications", {"type": "system", "title": "x", "group": ["a"]}, 422),
        ("/api/sse/broadcast", {"notification": {"title": "x", "group": 42}}, 422),
        ("/api/sse/broadcast", {"notification": {"title": "x", "group": "A:1"}}, 422),
    ],
)
async def test_bad_groups_are_a_problem_and_change_nothing(
    server: ServerThread, tenant: Tenant, path: str, body: dict[str, Any], status: int
) -> None:
    ann = tenant.token("ann")
    async with httpx.AsyncClient(timeout=10, base_url=server.url) as c:
        await publish(c, tenant, "n1", group="g:1")
        await publish(c, tenant, "for bob", audience={"users": ["bob"]}, group="g:bob")
        if path == "/api/sse/broadcast":
            body = {"tenantId": tenant.id, **body}
        headers = bearer(ann) if path.startswith("/v1/feed") else tenant.auth
        before = (await grouped(c, ann), await count(c, ann))
        r = await c.post(path, json=body, headers=headers)
        assert r.status_code == status, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert (await grouped(c, ann), await count(c, ann)) == before
        r = await c.get("/v1/feed", params={"grouped": "maybe"}, headers=bearer(ann))
        assert r.status_code == 422
        await mark(tenant)
        flat = (await c.get("/v1/feed", headers=bearer(ann))).json()["items"]
        assert [n["title"] for n in flat] == ["marker", "n1"], "nothing else was published"


def test_a_request_without_a_group_keeps_its_fingerprint() -> None:
    plain = NewNotification(type="system", title="x")
    before_groups = {k: v for k, v in plain.model_dump(mode="json").items() if k != "group"}
    assert plain.fingerprint() == orjson.dumps(before_groups, option=orjson.OPT_SORT_KEYS)
    grouped = NewNotification(type="system", title="x", group="booking:1")
    assert grouped.fingerprint() != plain.fingerprint()
