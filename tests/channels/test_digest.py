"""E-mail digests: one e-mail per user and period with what was unread at send time, to an
aiosmtpd server on loopback, with two instances running; a working one-click unsubscribe."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.channels.conftest import (
    MailSink,
    bearer,
    mail_settings,
    on_server,
    start_server,
    token,
)
from tests.support import ServerThread, create_tenant, publish
from tidings.channels.clock import ManualClock

pytestmark = pytest.mark.anyio

BERLIN, NEW_YORK = ZoneInfo("Europe/Berlin"), ZoneInfo("America/New_York")


def at(day: Any, hour: int, minute: int, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(hour, minute), zone).astimezone(UTC)


async def tick_together(*servers: ServerThread) -> int:
    sent = await asyncio.gather(
        *(on_server(s, lambda ch: ch.digests.tick()) for s in servers for _ in range(2))
    )
    return sum(sent)


def text_of(message: Any) -> str:
    return str(message.get_body(("plain",)).get_content())


def html_of(message: Any) -> str:
    return str(message.get_body(("html",)).get_content())


@pytest.mark.parametrize("store", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_one_digest_per_user_and_period_with_only_unread(
    tmp_path: Path, mail_sink: MailSink, store: str, request: pytest.FixtureRequest
) -> None:
    day = datetime.now(UTC).astimezone(BERLIN).date()
    clock = ManualClock(at(day, 17, 59, BERLIN))
    database: dict[str, Any] = (
        {"database_url": request.getfixturevalue("postgres_url")} if store == "postgres" else {}
    )
    settings = mail_settings(
        tmp_path, mail_sink, sender="Bounce House <notify@bounce.example>", **database
    )
    a, b = start_server(settings, clock), start_server(settings, clock)
    servers = [a, b]
    try:
        tenant = create_tenant(a.url, "jump-joy")
        async with httpx.AsyncClient(timeout=10) as client:
            ann = token(tenant, "ann", roles=["owner"], email_address="ann@example.com")
            dora = token(tenant, "dora", email_address="dora@example.com")
            carl = token(tenant, "carl")  # no address: never e-mailed
            for user_token in (ann, dora, carl):
                r = await client.put(
                    f"{a.url}/v1/preferences",
                    headers=bearer(user_token),
                    json={"time_zone": "Europe/Berlin"},
                )
                assert r.status_code == 200, r.text
            r = await client.put(
                f"{b.url}/v1/users/bob",
                headers=tenant.auth,
                json={
                    "email": "bob@example.com",
                    "time_zone": "America/New_York",
                    "roles": ["staff"],
                },
            )
            assert r.status_code == 200, r.text

            n1 = await publish(
                client, tenant, "New booking #1", type="booking_created", link="/bookings/1"
            )
            n2 = await publish(client, tenant, "New booking #2", type="booking_created")
            await publish(client, tenant, "Payment <$120> received", type="payment_received")
            await publish(
                client,
                tenant,
                "Card declined",
                type="payment_failed",
                audience={"roles": ["owner"]},
            )
            await publish(client, tenant, "For Bob only", audience={"users": ["bob"]})
            r = await client.post(
                f"{a.url}/v1/feed/read", headers=bearer(ann), json={"ids": [n2["id"]]}
            )
            assert r.status_code == 200
            r = await client.post(f"{a.url}/v1/feed/read", headers=bearer(dora), json={"all": True})
            assert r.status_code == 200

            assert await tick_together(a, b) == 0  # 17:59 in Berlin: not yet
            assert mail_sink.messages == []

            clock.set(at(day, 18, 1, BERLIN))
            assert await tick_together(a, b) == 1
            b.stop()  # a restart in the same period changes nothing
            b = start_server(settings, clock)
            servers = [a, b]
            assert await tick_together(a, b) == 0
            [mail] = mail_sink.to("ann@example.com")
            assert len(mail_sink.messages) == 1  # dora read everything: no e-mail
            assert mail["Subject"] == "3 unread notifications — jump-joy"
            assert mail["From"] == "Bounce House <notify@bounce.example>"
            assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
            text, html = text_of(mail), html_of(mail)
            for wanted in ("New booking #1", "Payment <$120> received", "Card declined"):
                assert wanted in text
            assert "New booking #2" not in text and "For Bob only" not in text
            assert "Booking created (1)" in text and "Payment failed (1)" in text
            assert "https://app.example.test/bookings/1" in text
            assert "Payment &lt;$120&gt; received" in html and "<$120>" not in html
            assert 'href="https://app.example.test/bookings/1"' in html

            r = await client.get(
                f"{a.url}/v1/notifications/{n2['id']}/deliveries", headers=tenant.auth
            )
            ann_n2 = [
                (e["status"], e["reason"])
                for e in r.json()["entries"]
                if e["user"] == "ann" and e["channel"] == "email"
            ]
            assert ann_n2 == [("queued", None), ("skipped", "already_read")]
            r = await client.get(
                f"{a.url}/v1/notifications/{n1['id']}/deliveries", headers=tenant.auth
            )
            assert r.json()["summary"]["email"]["sent"] == 1  # ann; bob's is still queued

            # 18:01 in New York: Bob's turn, with what *he* may see and has not read.
            clock.set(at(day, 18, 1, NEW_YORK))
            assert await tick_together(a, b) == 1
            [bob_mail] = mail_sink.to("bob@example.com")
            bob_text = text_of(bob_mail)
            for wanted in ("New booking #1", "New booking #2", "For Bob only"):
                assert wanted in bob_text
            assert "Card declined" not in bob_text  # owners only

            # The unsubscribe link works: GET asks, POST (RFC 8058 one-click) does it.
            link = re.search(r"Unsubscribe: (\S+)", text)
            assert link is not None
            assert mail["List-Unsubscribe"] == f"<{link.group(1)}>"
            local = link.group(1).replace("https://app.example.test", b.url)
            page = await client.get(local)
            assert page.status_code == 200 and "Unsubscribe" in page.text
            done = await client.post(local, data={"List-Unsubscribe": "One-Click"})
            assert done.status_code == 200 and "no more digest" in done.text
            prefs = (await client.get(f"{a.url}/v1/preferences", headers=bearer(ann))).json()
            assert prefs["effective"]["channels"]["email"] is False
            forged = await client.post(local[:-3] + "abc")
            assert (
                forged.status_code == 400 and forged.json()["code"] == "invalid_unsubscribe_token"
            )

            await publish(client, tenant, "Next day booking", type="booking_created")
            clock.set(at(day + timedelta(days=1), 18, 1, BERLIN))
            assert await tick_together(a, b) == 1
            assert len(mail_sink.to("ann@example.com")) == 1  # unsubscribed
            [dora_mail] = mail_sink.to("dora@example.com")
            dora_text = text_of(dora_mail)
            assert "Next day booking" in dora_text and "New booking #1" not in dora_text
            assert mail_sink.to("carl") == []
    finally:
        for server in servers:
            server.stop()
