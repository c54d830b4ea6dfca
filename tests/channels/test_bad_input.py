"""Bad input to the channels API: a clear 4xx problem, and nothing stored."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.channels.conftest import Device, bearer, channel_settings, start_server, token
from tests.support import ServerThread, Tenant, create_tenant, publish

pytestmark = pytest.mark.anyio


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerThread]:
    srv = start_server(channel_settings(tmp_path))
    try:
        yield srv
    finally:
        srv.stop()


def problem(r: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = r.json()
    assert body["status"] == status and body["detail"]
    if code is not None:
        assert body["code"] == code, body
    return body


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def test_invalid_push_subscriptions_are_refused(server: ServerThread, tenant: Tenant) -> None:
    good = Device("x", "https://127.0.0.1:9/push/x").subscription()
    keys = good["keys"]
    cases: list[tuple[dict[str, Any], int, str | None]] = [
        ({**good, "endpoint": "http://127.0.0.1:9/push/x"}, 422, "invalid_subscription"),
        ({**good, "endpoint": "https://metadata.internal/latest"}, 422, "invalid_subscription"),
        ({**good, "endpoint": "https://user:pw@127.0.0.1/x"}, 422, "invalid_subscription"),
        ({**good, "endpoint": "not a url"}, 422, "invalid_subscription"),
        (
            {**good, "keys": {**keys, "p256dh": b64(b"\x04" + os.urandom(64))}},
            422,
            "invalid_subscription",
        ),  # not a point on P-256
        ({**good, "keys": {**keys, "p256dh": "!!!"}}, 422, "invalid_subscription"),
        ({**good, "keys": {**keys, "auth": b64(os.urandom(8))}}, 422, "invalid_subscription"),
        ({"endpoint": good["endpoint"]}, 422, "validation_failed"),
        ({**good, "extra": 1}, 422, "validation_failed"),
        ({**good, "endpoint": "https://127.0.0.1/" + "a" * 3000}, 422, "validation_failed"),
    ]
    ann = token(tenant, "ann")
    async with httpx.AsyncClient(timeout=10) as client:
        url = f"{server.url}/v1/push/subscriptions"
        for body, status, code in cases:
            problem(await client.post(url, json=body, headers=bearer(ann)), status, code)
        problem(
            await client.post(
                url, content=b"{nope", headers={**bearer(ann), "content-type": "application/json"}
            ),
            400,
            "invalid_json",
        )
        problem(await client.post(url, json=good), 401, "missing_credentials")
        problem(await client.post(url, json=good, headers=tenant.auth), 401)
        listed = await client.get(url, headers=bearer(ann))
        assert listed.json() == {"subscriptions": []}
        # A valid one is accepted; another user (or tenant) cannot remove it.
        assert (await client.post(url, json=good, headers=bearer(ann))).status_code == 201
        other = create_tenant(server.url, "bounce-bros")
        for intruder in (token(tenant, "bob"), token(other, "ann")):
            r = await client.request(
                "DELETE", url, json={"endpoint": good["endpoint"]}, headers=bearer(intruder)
            )
            problem(r, 404, "subscription_not_found")
        assert len((await client.get(url, headers=bearer(ann))).json()["subscriptions"]) == 1


async def test_bad_preferences_change_nothing(server: ServerThread, tenant: Tenant) -> None:
    ann = token(tenant, "ann")
    url = f"{server.url}/v1/preferences"
    async with httpx.AsyncClient(timeout=10) as client:
        saved = {"types": {"booking_created": {"push": False}}, "time_zone": "Europe/Berlin"}
        assert (await client.put(url, json=saved, headers=bearer(ann))).status_code == 200
        before = (await client.get(url, headers=bearer(ann))).json()
        bad: list[dict[str, Any]] = [
            {"types": {"booking_created": {"sms": True}}},  # unknown channel
            {"types": {"Booking Created!": {"push": True}}},  # not a type name
            {"types": {"a" * 65: {"push": True}}},
            {"channels": {"in_app": False}},  # in-app has no master switch
            {"channels": {"push": "yes"}},
            {"time_zone": "Mars/Olympus_Mons"},
            {"time_zone": "../../etc/passwd"},
            {"quiet_hours": {"start": "25:00", "end": "07:00"}},
            {"quiet_hours": {"start": "07:00", "end": "07:00"}},
            {"digest": {"cadence": "weekly"}},
            {"digest": {"cadence": "daily", "hour": 24}},
            {"types": {f"t{i}": {"push": True} for i in range(201)}},
            {"unknown": 1},
        ]
        for body in bad:
            problem(await client.put(url, json=body, headers=bearer(ann)), 422, "validation_failed")
        assert (await client.get(url, headers=bearer(ann))).json() == before

        admin = f"{server.url}/v1/tenant/preferences"
        defaults = (await client.get(admin, headers=tenant.auth)).json()
        for body in (
            {"time_zone": "Nowhere/Land"},
            {"critical_types": ["Not A Type"]},
            {"reminder_lead_hours": 0},
            {"types": {"x": {"fax": True}}},
        ):
            problem(await client.put(admin, json=body, headers=tenant.auth), 422)
        problem(await client.put(admin, json={}, headers=bearer(ann)), 401)
        assert (await client.get(admin, headers=tenant.auth)).json() == defaults
        limited = create_tenant(server.url, "jump-joy", scopes=["publish"])
        problem(await client.put(admin, json={}, headers=limited.auth), 403, "insufficient_scope")


async def test_bad_user_and_reminder_input(server: ServerThread, tenant: Tenant) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        users = f"{server.url}/v1/users"
        body: dict[str, Any]
        for body in (
            {"time_zone": "Atlantis/Capital"},
            {"email": "not-an-address"},
            {"roles": ["a b"]},
            {"nickname": "x"},
        ):
            problem(await client.put(f"{users}/bob", json=body, headers=tenant.auth), 422)
        problem(await client.put(f"{users}/bad%20user", json={}, headers=tenant.auth), 422)
        problem(await client.get(f"{users}/bob", headers=tenant.auth), 404, "user_not_found")

        reminders = f"{server.url}/v1/reminders"
        good = {"key": "booking:1", "due_at": "2030-01-01T10:00:00Z", "title": "Tomorrow"}
        for body in (
            {**good, "due_at": "2030-01-01T10:00:00"},  # no zone: ambiguous
            {**good, "key": "booking 1"},
            {**good, "link": "javascript:alert(1)"},
            {**good, "audience": {}},
            {**good, "title": " "},
            {**good, "data": {"x": "y" * 9000}},
        ):
            r = await client.post(reminders, json=body, headers=tenant.auth)
            assert r.status_code in (413, 422), r.text
            problem(r, r.status_code)
        problem(await client.get(f"{reminders}/booking:1", headers=tenant.auth), 404)
        problem(await client.delete(f"{reminders}/booking:1", headers=tenant.auth), 404)

        n = await publish(client, tenant, "Mine")
        other = create_tenant(server.url, "bounce-bros")
        deliveries = f"{server.url}/v1/notifications/{n['id']}/deliveries"
        problem(await client.get(deliveries, headers=other.auth), 404, "notification_not_found")
        problem(
            await client.get(f"{server.url}/v1/notifications/0/deliveries", headers=tenant.auth),
            422,
        )
        assert (await client.get(deliveries, headers=tenant.auth)).status_code == 200
        problem(
            await client.get(f"{server.url}/v1/unsubscribe", params={"token": "x.y.z"}),
            400,
            "invalid_unsubscribe_token",
        )


async def test_unknown_tenant_and_too_many_devices(server: ServerThread, tenant: Tenant) -> None:
    from tests.support import SECRET
    from tidings import auth

    ghost, _ = auth.mint(SECRET, tenant="no-such-tenant", user="ann", ttl=60, email="a@b.c")
    ann = token(tenant, "ann")
    url = f"{server.url}/v1/push/subscriptions"
    async with httpx.AsyncClient(timeout=10) as client:
        problem(
            await client.get(f"{server.url}/v1/preferences", headers=bearer(ghost)),
            404,
            "tenant_not_found",
        )
        for i in range(20):
            sub = Device(f"d{i}", f"https://127.0.0.1:9/push/d{i}").subscription()
            assert (await client.post(url, json=sub, headers=bearer(ann))).status_code == 201
        extra = Device("d20", "https://127.0.0.1:9/push/d20").subscription()
        problem(
            await client.post(url, json=extra, headers=bearer(ann)), 409, "too_many_subscriptions"
        )
        again = Device("d0", "https://127.0.0.1:9/push/d0").subscription()  # known endpoint
        assert (await client.post(url, json=again, headers=bearer(ann))).status_code == 200
        assert len((await client.get(url, headers=bearer(ann))).json()["subscriptions"]) == 20
