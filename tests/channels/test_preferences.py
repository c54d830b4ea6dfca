"""Preferences: per type and channel, critical types, tenant defaults, quiet hours."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.channels.conftest import (
    PushService,
    bearer,
    token,
    wait_until,
)
from tests.channels.test_push import deliveries, subscribe
from tests.support import ServerThread, Stream, Tenant, publish

pytestmark = pytest.mark.anyio


@pytest.fixture
def server(push_server: ServerThread) -> ServerThread:
    """The root ``tenant`` fixture builds on this server."""
    return push_server


async def put_prefs(
    client: httpx.AsyncClient, url: str, user_token: str, body: dict[str, Any]
) -> dict[str, Any]:
    r = await client.put(f"{url}/v1/preferences", json=body, headers=bearer(user_token))
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


async def reasons(client: httpx.AsyncClient, tenant: Tenant, seq: int, user: str) -> list[Any]:
    async def logged() -> bool:
        log = await deliveries(client, tenant, seq)
        return any(e["user"] == user for e in log["entries"])

    await wait_until(logged, what=f"a delivery log entry for {user}")
    log = await deliveries(client, tenant, seq)
    return [(e["channel"], e["status"], e["reason"]) for e in log["entries"] if e["user"] == user]


async def test_type_switched_off_for_push_is_not_pushed_but_shown_in_app(
    server: ServerThread, tenant: Tenant, push_service: PushService
) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        ann = token(tenant, "ann")
        await subscribe(client, server, ann, push_service.device("ann").subscription())
        view = await put_prefs(
            client, server.url, ann, {"types": {"booking_created": {"push": False}}}
        )
        assert view["effective"]["types"]["booking_created"] == {
            "in_app": True,
            "push": False,
            "email": True,
            "critical": False,
        }
        quiet = await publish(client, tenant, "New booking", type="booking_created")
        loud = await publish(client, tenant, "Payment received", type="payment_received")
        got = await push_service.wait_for("ann")
        assert [m["id"] for m in got] == [loud["id"]]
        assert await reasons(client, tenant, quiet["id"], "ann") == [
            ("push", "skipped", "preference")
        ]
        feed = (await client.get(f"{server.url}/v1/feed", headers=bearer(ann))).json()
        assert [i["id"] for i in feed["items"]] == [loud["id"], quiet["id"]]
        assert push_service.for_device("ann") == got  # still only one push


async def test_critical_type_ignores_the_in_app_switch(
    server: ServerThread, tenant: Tenant
) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        r = await client.put(
            f"{server.url}/v1/tenant/preferences",
            headers=tenant.auth,
            json={"critical_types": ["system"]},
        )
        assert r.status_code == 200, r.text
        ann = token(tenant, "ann")
        view = await put_prefs(
            client,
            server.url,
            ann,
            {"types": {"system": {"in_app": False}, "booking_created": {"in_app": False}}},
        )
        assert view["effective"]["types"]["system"]["in_app"] is True
        assert view["effective"]["types"]["system"]["critical"] is True
        assert view["effective"]["types"]["booking_created"]["in_app"] is False
        async with Stream(server.url, ann) as stream:
            await stream.next_event("ready")
            hidden = await publish(client, tenant, "New booking", type="booking_created")
            shown = await publish(client, tenant, "Maintenance tonight", type="system")
            [frame] = await stream.notifications(1)
            assert frame.id == shown["id"]  # published after the hidden one: it is the marker
        feed = (await client.get(f"{server.url}/v1/feed", headers=bearer(ann))).json()
        assert [i["id"] for i in feed["items"]] == [shown["id"]]
        count = (await client.get(f"{server.url}/v1/feed/unread-count", headers=bearer(ann))).json()
        assert count == {"count": 1, "more": False}
        async with Stream(server.url, ann, last_event_id=0) as replay:
            ready = await replay.next_event("ready")
            assert [n["id"] for n in ready.data["latest"]] == [shown["id"]]
            [frame] = await replay.notifications(1)
            assert frame.id == shown["id"]  # replay is in seq order: nothing hidden came first
        # Someone who switched nothing off sees both.
        bob = token(tenant, "bob")
        feed = (await client.get(f"{server.url}/v1/feed", headers=bearer(bob))).json()
        assert [i["id"] for i in feed["items"]] == [shown["id"], hidden["id"]]


async def test_tenant_defaults_apply_until_the_user_overrides(
    server: ServerThread, tenant: Tenant, push_service: PushService
) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        r = await client.put(
            f"{server.url}/v1/tenant/preferences",
            headers=tenant.auth,
            json={
                "types": {"payment_failed": {"push": False}},
                "digest": {"cadence": "hourly"},
                "time_zone": "Europe/Berlin",
            },
        )
        assert r.status_code == 200, r.text
        ann = token(tenant, "ann")
        await subscribe(client, server, ann, push_service.device("ann").subscription())
        view = (await client.get(f"{server.url}/v1/preferences", headers=bearer(ann))).json()
        assert view["effective"]["types"]["payment_failed"]["push"] is False
        assert view["effective"]["digest"] == {"cadence": "hourly", "hour": 18}
        assert view["effective"]["time_zone"] == "Europe/Berlin"
        first = await publish(client, tenant, "Card declined", type="payment_failed")
        assert await reasons(client, tenant, first["id"], "ann") == [
            ("push", "skipped", "preference")
        ]

        view = await put_prefs(
            client,
            server.url,
            ann,
            {
                "types": {"payment_failed": {"push": True}},
                "digest": {"cadence": "daily", "hour": 7},
                "time_zone": "America/New_York",
            },
        )
        assert view["effective"]["types"]["payment_failed"]["push"] is True
        assert view["effective"]["digest"] == {"cadence": "daily", "hour": 7}
        assert view["effective"]["time_zone"] == "America/New_York"
        second = await publish(client, tenant, "Card declined again", type="payment_failed")
        got = await push_service.wait_for("ann")
        assert [m["id"] for m in got] == [second["id"]]
        # Dropping the override brings the tenant default back.
        view = await put_prefs(client, server.url, ann, {})
        assert view["effective"]["types"]["payment_failed"]["push"] is False
        assert view["effective"]["time_zone"] == "America/New_York"  # zone kept: not sent


async def test_quiet_hours_hold_back_push_in_the_users_zone(
    server: ServerThread, tenant: Tenant, push_service: PushService
) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        ann = token(tenant, "ann")
        await subscribe(client, server, ann, push_service.device("ann").subscription())
        tokyo = datetime.now(UTC).astimezone(__import__("zoneinfo").ZoneInfo("Asia/Tokyo"))
        start = (tokyo - timedelta(minutes=30)).strftime("%H:%M")
        end = (tokyo + timedelta(minutes=30)).strftime("%H:%M")
        await put_prefs(
            client,
            server.url,
            ann,
            {"quiet_hours": {"start": start, "end": end}, "time_zone": "Asia/Tokyo"},
        )
        held = await publish(client, tenant, "At night")
        assert await reasons(client, tenant, held["id"], "ann") == [
            ("push", "skipped", "quiet_hours")
        ]
        await put_prefs(client, server.url, ann, {"quiet_hours": {"enabled": False}})
        sent = await publish(client, tenant, "Now")
        got = await push_service.wait_for("ann")
        assert [m["id"] for m in got] == [sent["id"]]
