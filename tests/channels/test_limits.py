"""Limits that cannot be walked around (issue 12, item 7), against a live server:

- reminders are charged to the same publish limit per API key as publishes;
- audience targets are capped per notification and per request (413, nothing stored) and
  charged to the limit (1 + ceil(targets / TIDINGS_PUBLISH_COST_TARGETS));
- pending reminders are capped per tenant (409, nothing stored).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.channels.conftest import channel_settings, start_server
from tests.support import ServerThread, Tenant, create_tenant, publish

pytestmark = pytest.mark.anyio

RATE = 30  # per minute: nothing in a test run leaves the window


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerThread]:
    srv = start_server(
        channel_settings(
            tmp_path,
            publish_rate=f"{RATE}/minute",
            publish_cost_targets=100,
            max_pending_reminders=5,
        )
    )
    try:
        yield srv
    finally:
        srv.stop()


def problem(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text[:300]
    assert r.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = r.json()
    assert body["code"] == code, body
    return body


def reminder(key: str, **fields: Any) -> dict[str, Any]:
    return {"key": key, "due_at": "2030-01-01T10:00:00Z", "title": f"Reminder {key}", **fields}


def users(count: int) -> dict[str, list[str]]:
    return {"users": [f"u{i}" for i in range(count)]}


async def latest_seq(client: httpx.AsyncClient, tenant: Tenant) -> int:
    """The tenant's latest seq, read by publishing a marker (so the check itself is bounded)."""
    marker = await publish(client, tenant, "marker", type="system")
    return int(marker["id"]) - 1


async def test_a_reminder_flood_is_rate_limited_like_a_publish_flood(
    server: ServerThread, tenant: Tenant
) -> None:
    url = f"{server.url}/v1/reminders"
    async with httpx.AsyncClient(timeout=10) as client:
        answers = [
            (await client.post(url, json=reminder(f"r:{i % 5}"), headers=tenant.auth)).status_code
            for i in range(RATE + 10)
        ]
        assert answers == [201] * RATE + [429] * 10
        refused = await client.post(url, json=reminder("r:late"), headers=tenant.auth)
        problem(refused, 429, "rate_limited")
        assert int(refused.headers["retry-after"]) >= 1
        # One budget per key for both routes: the publish route is spent too.
        r = await client.post(
            f"{server.url}/v1/notifications", json={"type": "x", "title": "t"}, headers=tenant.auth
        )
        problem(r, 429, "rate_limited")
        # Another tenant's key has its own budget.
        other = create_tenant(server.url, "bounce-bros")
        assert (await client.post(url, json=reminder("r:0"), headers=other.auth)).status_code == 201


async def test_publishes_and_reminders_share_one_budget(
    server: ServerThread, tenant: Tenant
) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        for i in range(RATE - 1):
            await publish(client, tenant, f"n{i}")
        last = await client.post(
            f"{server.url}/v1/reminders", json=reminder("r:1"), headers=tenant.auth
        )
        assert last.status_code == 201, last.text
        problem(
            await client.post(
                f"{server.url}/v1/reminders", json=reminder("r:2"), headers=tenant.auth
            ),
            429,
            "rate_limited",
        )
        missing = await client.get(f"{server.url}/v1/reminders/r:2", headers=tenant.auth)
        assert missing.status_code == 404, missing.text


async def test_a_big_audience_is_charged_to_the_publisher(
    server: ServerThread, tenant: Tenant
) -> None:
    """1000 users cost 1 + 10: the key has RATE - 11 single publishes left, not RATE - 1."""
    other = create_tenant(server.url, "bounce-bros")
    async with httpx.AsyncClient(timeout=10) as client:
        await publish(client, tenant, "Everyone listed", audience=users(1000))
        accepted = 0
        for i in range(RATE):
            r = await client.post(
                f"{server.url}/v1/notifications",
                json={"type": "x", "title": f"n{i}"},
                headers=tenant.auth,
            )
            if r.status_code == 429:
                problem(r, 429, "rate_limited")
                break
            assert r.status_code == 201, r.text
            accepted += 1
        assert accepted == RATE - 11
        # The other tenant's key is not touched by it.
        for i in range(RATE):
            await publish(client, other, f"o{i}")


async def test_a_batch_is_charged_for_its_targets(server: ServerThread, tenant: Tenant) -> None:
    """5 notifications x 250 users = 1250 targets: 5 + 13 = 18 of the budget."""
    async with httpx.AsyncClient(timeout=10) as client:
        batch = {
            "notifications": [
                {"type": "x", "title": f"b{i}", "audience": users(250)} for i in range(5)
            ]
        }
        r = await client.post(
            f"{server.url}/v1/notifications/batch", json=batch, headers=tenant.auth
        )
        assert r.status_code == 201, r.text
        accepted = 0
        while accepted <= RATE:
            r = await client.post(
                f"{server.url}/v1/notifications",
                json={"type": "x", "title": "t"},
                headers=tenant.auth,
            )
            if r.status_code == 429:
                break
            accepted += 1
        assert accepted == RATE - 18


async def test_audiences_over_the_caps_are_refused_and_change_nothing(
    server: ServerThread, tenant: Tenant
) -> None:
    base = f"{server.url}/v1/notifications"
    async with httpx.AsyncClient(timeout=20) as client:
        before = await latest_seq(client, tenant)
        # 11 x 1000 users: each within the per-notification cap, 11,000 over the per-request cap.
        batch = {
            "notifications": [
                {"type": "x", "title": f"b{i}", "audience": users(1000)} for i in range(11)
            ]
        }
        body = problem(
            await client.post(f"{base}/batch", json=batch, headers=tenant.auth),
            413,
            "too_many_targets",
        )
        assert "10000" in body["detail"]
        # One notification over the per-notification cap (1000 users + 1 role).
        over = {"type": "x", "title": "t", "audience": {**users(1000), "roles": ["staff"]}}
        problem(await client.post(base, json=over, headers=tenant.auth), 413, "too_many_targets")
        problem(
            await client.post(
                f"{server.url}/v1/reminders",
                json=reminder("r:big", audience=over["audience"]),
                headers=tenant.auth,
            ),
            413,
            "too_many_targets",
        )
        assert (
            await client.get(f"{server.url}/v1/reminders/r:big", headers=tenant.auth)
        ).status_code == 404
        # Nothing was stored, and nothing was charged: the whole budget minus the two markers
        # is still there.
        assert await latest_seq(client, tenant) == before + 1
        for i in range(RATE - 2):
            await publish(client, tenant, f"n{i}")


async def test_pending_reminders_are_capped_per_tenant(
    server: ServerThread, tenant: Tenant
) -> None:
    url = f"{server.url}/v1/reminders"
    async with httpx.AsyncClient(timeout=10) as client:
        for i in range(5):
            r = await client.post(url, json=reminder(f"r:{i}"), headers=tenant.auth)
            assert r.status_code == 201, r.text
        # Re-arming a pending key is not a new reminder: still accepted at the cap.
        moved = reminder("r:0", due_at="2030-01-02T10:00:00Z")
        r = await client.post(url, json=moved, headers=tenant.auth)
        assert r.status_code == 201, r.text
        assert r.json()["due_at"].startswith("2030-01-02T10:00:00")
        body = problem(
            await client.post(url, json=reminder("r:5"), headers=tenant.auth),
            409,
            "too_many_reminders",
        )
        assert "5 pending" in body["detail"]
        assert (await client.get(f"{url}/r:5", headers=tenant.auth)).status_code == 404
        # Re-arming a cancelled key counts as a new pending one.
        cancelled = await client.delete(f"{url}/r:4", headers=tenant.auth)
        assert cancelled.json()["cancelled"] is True
        assert (
            await client.post(url, json=reminder("r:5"), headers=tenant.auth)
        ).status_code == 201
        problem(
            await client.post(url, json=reminder("r:4"), headers=tenant.auth),
            409,
            "too_many_reminders",
        )
        assert (await client.get(f"{url}/r:4", headers=tenant.auth)).json()["state"] == "cancelled"
        # The cap is per tenant.
        other = create_tenant(server.url, "bounce-bros")
        assert (await client.post(url, json=reminder("r:0"), headers=other.auth)).status_code == 201


@pytest.mark.parametrize(
    "database", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
async def test_concurrent_reminders_cannot_overshoot_the_cap(
    tmp_path: Path, database: str, request: pytest.FixtureRequest
) -> None:
    """Twelve new keys at once, cap 5: exactly five stored (the count is taken under the
    tenant's row lock on PostgreSQL, under the write lock on SQLite)."""
    overrides: dict[str, Any] = {"max_pending_reminders": 5}
    if database == "postgres":
        overrides["database_url"] = request.getfixturevalue("postgres_url")
    srv = start_server(channel_settings(tmp_path, **overrides))
    try:
        tenant = create_tenant(srv.url, "jump-joy")
        url = f"{srv.url}/v1/reminders"
        async with httpx.AsyncClient(timeout=20) as client:
            answers = await asyncio.gather(
                *(client.post(url, json=reminder(f"c:{i}"), headers=tenant.auth) for i in range(12))
            )
            assert sorted(r.status_code for r in answers) == [201] * 5 + [409] * 7
            stored = [
                (await client.get(f"{url}/c:{i}", headers=tenant.auth)).status_code
                for i in range(12)
            ]
            assert sorted(stored) == [200] * 5 + [404] * 7
    finally:
        srv.stop()
