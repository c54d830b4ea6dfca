"""``digest.sent`` end to end: a user with an e-mail address whose daily digest falls due gets
one e-mail (to the aiosmtpd sink), and an endpoint subscribed to ``digest.sent`` gets exactly
one signed delivery whose body is the one ``docs/webhooks.md`` documents — with two instances
ticking the digests, and a tick again in the same period changing nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.channels.conftest import (
    MailSink,
    bearer,
    mail_settings,
    mail_sink,  # noqa: F401
    start_server,
    token,
)
from tests.channels.test_digest import at, text_of, tick_together
from tests.support import create_tenant
from tests.webhooks.conftest import FAST, Receiver, add_endpoint, publish
from tidings.channels.clock import ManualClock

pytestmark = pytest.mark.anyio

BERLIN = ZoneInfo("Europe/Berlin")


def _types(receiver: Receiver) -> list[str]:
    return [d.payload["type"] for d in receiver.ok()]


@pytest.mark.parametrize("store", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_digest_sent_is_delivered_once_with_the_documented_body(
    tmp_path: Path,
    mail_sink: MailSink,  # noqa: F811
    receiver: Receiver,
    store: str,
    request: pytest.FixtureRequest,
) -> None:
    day = datetime.now(UTC).astimezone(BERLIN).date()
    clock = ManualClock(at(day, 17, 59, BERLIN))
    database: dict[str, Any] = (
        {"database_url": request.getfixturevalue("postgres_url")} if store == "postgres" else {}
    )
    settings = mail_settings(
        tmp_path, mail_sink, sender="Bounce House <notify@bounce.example>", **database, **FAST
    )
    a, b = start_server(settings, clock), start_server(settings, clock)
    try:
        tenant = create_tenant(a.url, "jump-joy")
        add_endpoint(tenant, receiver, "/digest", ["digest.sent", "notification.read"])
        ann = token(tenant, "ann", roles=["owner"], email_address="ann@example.com")
        r = httpx.put(
            f"{a.url}/v1/preferences",
            headers=bearer(ann),
            json={"time_zone": "Europe/Berlin"},
            timeout=10,
        )
        assert r.status_code == 200, r.text
        n1 = publish(tenant, "New booking #1")
        n2 = publish(tenant, "New booking #2")
        n3 = publish(tenant, "Payment received")
        r = httpx.post(f"{a.url}/v1/feed/read", headers=bearer(ann), json={"ids": [n2]}, timeout=10)
        assert r.status_code == 200, r.text

        assert await tick_together(a, b) == 0  # 17:59 in Berlin: not yet
        clock.set(at(day, 18, 1, BERLIN))
        before = datetime.now(UTC)
        assert await tick_together(a, b) == 1
        after = datetime.now(UTC)
        assert await tick_together(a, b) == 0  # the same period again: nothing more
        [mail] = mail_sink.to("ann@example.com")
        assert "New booking #1" in text_of(mail) and "New booking #2" not in text_of(mail)

        # A marker after it on the same endpoint (one at a time, in order): once it is in,
        # anything the digest ticks queued is in too.
        r = httpx.post(f"{a.url}/v1/feed/read", headers=bearer(ann), json={"ids": [n1]}, timeout=10)
        assert r.status_code == 200, r.text
        receiver.wait(lambda: _types(receiver).count("notification.read") == 2)
        assert _types(receiver) == ["notification.read", "digest.sent", "notification.read"]
        assert all(d.valid for d in receiver.got)  # every delivery verified with the SDK

        sent = receiver.ok()[1]
        assert sent.id.startswith("msg_")
        assert sent.headers["content-type"].startswith("application/json")
        payload = sent.payload
        assert set(payload) == {"type", "timestamp", "data"}
        assert payload["type"] == "digest.sent"
        assert payload["timestamp"].endswith("Z")
        stamp = datetime.fromisoformat(payload["timestamp"])
        assert before - timedelta(seconds=1) <= stamp <= after + timedelta(seconds=1)
        data = payload["data"]
        assert set(data) == {"tenant", "user", "period", "ids"}  # the catalogue's fields
        assert data["tenant"] == "jump-joy" and data["user"] == "ann"
        assert data["period"] == f"daily:{day:%Y-%m-%d}"  # the user's local period
        assert sorted(data["ids"]) == [n1, n3]  # what the e-mail held: unread at send time

        # The event is the one recorded: listed once, with the very body that was signed.
        r = httpx.get(
            f"{a.url}/v1/webhooks/events",
            params={"type": "digest.sent"},
            headers=tenant.auth,
            timeout=10,
        )
        assert r.status_code == 200, r.text
        [event] = r.json()["events"]
        assert event["id"] == sent.id and event["payload"] == payload
    finally:
        b.stop()
        a.stop()
