"""Events of the channels and of read state reach the receiver: ``push.sent``,
``push.failed`` → ``push.gave_up``, ``reminder.fired``, ``notification.snoozed`` /
``unread`` / ``unarchived``. Each push event is written in the push worker's own transaction."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.channels.conftest import PushService, channel_settings, push_service  # noqa: F401
from tests.support import ServerThread, create_tenant
from tests.webhooks.conftest import FAST, Receiver, add_endpoint, publish


@pytest.fixture
def server(tmp_path: Path, push_service: PushService) -> Iterator[ServerThread]:  # noqa: F811
    settings = channel_settings(
        tmp_path, push_ca_file=str(push_service.ca), push_max_attempts=2, **FAST
    )
    srv = ServerThread(settings).start()
    try:
        yield srv
    finally:
        srv.stop()


def _types(receiver: Receiver) -> list[str]:
    return [d.payload["type"] for d in receiver.ok()]


def test_push_and_reminder_events(
    server: ServerThread,
    receiver: Receiver,
    push_service: PushService,  # noqa: F811
) -> None:
    tenant = create_tenant(server.url, "jump-joy")
    types = ["push.sent", "push.failed", "push.gave_up", "reminder.fired"]
    add_endpoint(tenant, receiver, "/ch", types)
    push_service.vapid_key = httpx.get(f"{server.url}/v1/push/key").json()["public_key"]
    ann = {"Authorization": f"Bearer {tenant.token('ann', ['owner'])}"}
    phone, broken = push_service.device("phone"), push_service.device("broken")
    push_service.script["broken"] = [500] * 10
    for device in (phone, broken):
        r = httpx.post(
            f"{server.url}/v1/push/subscriptions", json=device.subscription(), headers=ann
        )
        assert r.status_code == 201, r.text
    seq = publish(tenant, "Booking #7", audience={"users": ["ann"]})
    receiver.wait(lambda: {"push.sent", "push.gave_up"} <= set(_types(receiver)))
    by_type = {d.payload["type"]: d.payload["data"] for d in receiver.ok()}
    assert by_type["push.sent"]["notification_id"] == seq
    assert by_type["push.sent"]["user"] == "ann" and by_type["push.sent"]["status"] == 201
    assert by_type["push.failed"]["reason"] == "retrying"
    assert by_type["push.gave_up"]["reason"] == "gave_up"

    due = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    r = httpx.post(
        f"{server.url}/v1/reminders",
        json={"key": "r1", "due_at": due, "title": "Castle XL tomorrow"},
        headers=tenant.auth,
    )
    assert r.status_code == 201, r.text
    receiver.wait(lambda: "reminder.fired" in _types(receiver))
    fired = next(d for d in receiver.ok() if d.payload["type"] == "reminder.fired")
    assert fired.payload["data"]["key"] == "r1"
    assert fired.payload["data"]["notification_id"] > seq


def test_read_state_events(server: ServerThread, receiver: Receiver) -> None:
    tenant = create_tenant(server.url, "jump-joy")
    types = ["notification.snoozed", "notification.unread", "notification.unarchived"]
    add_endpoint(tenant, receiver, "/rs", types)
    seq = publish(tenant, "snooze me")
    user = {"Authorization": f"Bearer {tenant.token('bob')}"}
    until = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
    for path, body in (
        ("snooze", {"ids": [seq], "until": until}),
        ("unread", {"ids": [seq]}),
        ("archive", {"ids": [seq]}),
        ("unarchive", {"ids": [seq]}),
    ):
        r = httpx.post(f"{server.url}/v1/feed/{path}", json=body, headers=user)
        assert r.status_code == 200, r.text
    receiver.wait(lambda: len(receiver.ok()) == 3)
    assert _types(receiver) == types  # archived is not subscribed: not sent
    snoozed = receiver.ok()[0].payload["data"]
    assert snoozed["user"] == "bob" and snoozed["ids"] == [seq] and snoozed["until"]
