"""The feed API: pagination, filters, unread counts, read/archive, isolation, bad input."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support import ServerThread, Tenant, publish

pytestmark = pytest.mark.anyio


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_cursor_pagination_and_filters(server: ServerThread, tenant: Tenant) -> None:
    ann = bearer(tenant.token("ann", ["owner"]))
    async with httpx.AsyncClient(timeout=10, base_url=server.url) as client:
        for i in range(25):
            kind = "payment_failed" if i % 5 == 0 else "booking_created"
            await publish(client, tenant, f"n{i + 1}", type=kind)
        await publish(client, tenant, "for bob only", audience={"users": ["bob"]})
        seen: list[int] = []
        cursor = None
        while True:
            params = {"limit": 10, **({"cursor": cursor} if cursor else {})}
            page = (await client.get("/v1/feed", params=params, headers=ann)).json()
            seen += [n["id"] for n in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == list(range(25, 0, -1)), "bob's notification is not ann's"
        failed = (
            await client.get("/v1/feed", params={"type": "payment_failed"}, headers=ann)
        ).json()
        assert [n["id"] for n in failed["items"]] == [21, 16, 11, 6, 1]
        await client.post("/v1/feed/read", json={"ids": [25, 24]}, headers=ann)
        await client.post("/v1/feed/archive", json={"ids": [23]}, headers=ann)
        unread = (
            await client.get("/v1/feed", params={"status": "unread", "limit": 3}, headers=ann)
        ).json()
        assert [n["id"] for n in unread["items"]] == [22, 21, 20]
        assert all(n["read"] is False for n in unread["items"])
        read = (await client.get("/v1/feed", params={"status": "read"}, headers=ann)).json()
        assert [n["id"] for n in read["items"]] == [25, 24]
        archived = (await client.get("/v1/feed", params={"status": "archived"}, headers=ann)).json()
        assert [(n["id"], n["archived"]) for n in archived["items"]] == [(23, True)]
        every = (await client.get("/v1/feed", params={"limit": 3}, headers=ann)).json()
        assert [n["id"] for n in every["items"]] == [25, 24, 22], "archived leaves the inbox"
        count = (await client.get("/v1/feed/unread-count", headers=ann)).json()
        assert count == {"count": 22, "more": False}


async def test_unread_count_is_capped_for_display(server: ServerThread, tenant: Tenant) -> None:
    items = [{"type": "system", "title": f"n{i}"} for i in range(100)]
    async with httpx.AsyncClient(timeout=10, base_url=server.url) as client:
        await client.post(
            "/v1/notifications/batch", json={"notifications": items[:99]}, headers=tenant.auth
        )
        ann = bearer(tenant.token("ann"))
        assert (await client.get("/v1/feed/unread-count", headers=ann)).json() == {
            "count": 99,
            "more": False,
        }
        await publish(client, tenant, "one more")
        assert (await client.get("/v1/feed/unread-count", headers=ann)).json() == {
            "count": 99,
            "more": True,
        }
        r = await client.post("/v1/feed/read", json={"all": True}, headers=ann)
        assert r.json()["unread"] == {"count": 0, "more": False}
        await publish(client, tenant, "after mark-all")
        assert (await client.get("/v1/feed/unread-count", headers=ann)).json() == {
            "count": 1,
            "more": False,
        }


async def test_mark_all_up_to_only_marks_what_was_seen(
    server: ServerThread, tenant: Tenant
) -> None:
    ann = bearer(tenant.token("ann"))
    async with httpx.AsyncClient(timeout=10, base_url=server.url) as client:
        for i in range(5):
            await publish(client, tenant, f"n{i}")
        r = await client.post("/v1/feed/read", json={"all": True, "up_to": 3}, headers=ann)
        assert r.json()["unread"] == {"count": 2, "more": False}
        # The watermark never moves back.
        r = await client.post("/v1/feed/read", json={"all": True, "up_to": 1}, headers=ann)
        assert r.json()["unread"] == {"count": 2, "more": False}


async def test_read_state_is_per_user(server: ServerThread, tenant: Tenant) -> None:
    ann, bob = bearer(tenant.token("ann")), bearer(tenant.token("bob"))
    async with httpx.AsyncClient(timeout=10, base_url=server.url) as client:
        for i in range(3):
            await publish(client, tenant, f"n{i}")
        await client.post("/v1/feed/read", json={"all": True}, headers=ann)
        assert (await client.get("/v1/feed/unread-count", headers=bob)).json()["count"] == 3
        bob_items = (await client.get("/v1/feed", headers=bob)).json()["items"]
        assert not any(n["read"] for n in bob_items)


async def test_bad_feed_input_changes_nothing(
    server: ServerThread, tenant: Tenant, other_tenant: Tenant
) -> None:
    ann = bearer(tenant.token("ann"))
    async with httpx.AsyncClient(timeout=10, base_url=server.url) as client:
        await publish(client, tenant, "mine")
        await publish(client, tenant, "bob's", audience={"users": ["bob"]})
        theirs = await publish(client, other_tenant, "theirs")
        cases: list[tuple[str, str, dict[str, Any], int, str]] = [
            ("get", "/v1/feed", {"params": {"cursor": "not-a-cursor!"}}, 400, "invalid_cursor"),
            ("get", "/v1/feed", {"params": {"status": "weird"}}, 422, "validation_failed"),
            ("get", "/v1/feed", {"params": {"limit": 0}}, 422, "validation_failed"),
            ("get", "/v1/feed", {"params": {"limit": 101}}, 422, "validation_failed"),
            ("post", "/v1/feed/read", {"json": {}}, 422, "validation_failed"),
            (
                "post",
                "/v1/feed/read",
                {"json": {"ids": [1], "all": True}},
                422,
                "validation_failed",
            ),
            ("post", "/v1/feed/read", {"json": {"ids": ["x"]}}, 422, "validation_failed"),
            ("post", "/v1/feed/read", {"json": {"ids": [0]}}, 422, "validation_failed"),
            ("post", "/v1/feed/read", {"json": {"ids": [1, 99]}}, 404, "notification_not_found"),
            ("post", "/v1/feed/read", {"json": {"ids": [2]}}, 404, "notification_not_found"),
            ("post", "/v1/feed/archive", {"json": {"ids": []}}, 422, "validation_failed"),
            ("post", "/v1/feed/archive", {"json": {"ids": [1, 2]}}, 404, "notification_not_found"),
        ]
        for method, path, kwargs, status, code in cases:
            r = await getattr(client, method)(path, headers=ann, **kwargs)
            assert (r.status_code, r.json()["code"]) == (status, code), (path, kwargs, r.text)
        # Another tenant's id 1 is not ours to mark: ours stays unread.
        assert theirs["id"] == 1
        assert (await client.get("/v1/feed/unread-count", headers=ann)).json()["count"] == 1
        for path in ("/v1/feed", "/v1/feed/unread-count"):
            r = await client.get(path)
            assert (r.status_code, r.json()["code"]) == (401, "missing_credentials")
            r = await client.get(path, headers=tenant.auth)
            assert r.status_code == 401, "an API key is not a user token"
