"""A notification's detail page in the demo shows its delivery log, summed up per channel.

The log entries are made by the real channel code: a change in the demo (made by Lee) publishes;
the planner decides per user (Ann: a device and a daily digest; Sam: a device, inside his quiet
hours; Lee: a device, but Lee made the change — its actor is never pushed, issue 10);
the push worker delivers to a push-service stand-in on loopback (HTTPS, checks VAPID and
decrypts — tests/channels/conftest.py); the digest is queued for an aiosmtpd sink.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.channels.conftest import MailSink, PushService
from tests.demo.helpers import (
    DemoServer,
    api_key,
    csrf,
    demo_settings,
    preferences_form,
    publish,
    sign_in,
)
from tidings.demo.deliveries import describe


@pytest.fixture
def push_service(tmp_path: Path) -> Iterator[PushService]:
    service = PushService(tmp_path).start()
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture
def mail_sink() -> Iterator[MailSink]:
    sink = MailSink()
    sink.controller.start()
    try:
        yield sink
    finally:
        sink.controller.stop()


@pytest.fixture
def demo(tmp_path: Path, push_service: PushService, mail_sink: MailSink) -> Iterator[DemoServer]:
    settings = demo_settings(
        tmp_path,
        push_endpoint_hosts="127.0.0.1",
        push_allow_networks="127.0.0.1/32",
        push_ca_file=str(push_service.ca),
        smtp_host="127.0.0.1",
        smtp_port=mail_sink.port,
        smtp_tls="none",
        digest_interval=0.2,
    )
    server = DemoServer(settings).start()
    try:
        yield server
    finally:
        server.stop()


def zone_before_22() -> str:
    """A zone where it is not yet 22:00, so a digest at 23:00 is not due during the test."""
    for zone in ("UTC", "America/Los_Angeles", "Pacific/Honolulu"):
        if datetime.now(ZoneInfo(zone)).hour < 22:
            return zone
    raise AssertionError("unreachable: those zones are 10 hours apart")


def set_preferences(client: httpx.Client, **fields: str) -> None:
    sent = {**preferences_form(client.get("/demo/preferences").text), **fields}
    r = client.post("/demo/preferences", data=sent)
    assert r.status_code == 303, r.text


def add_device(client: httpx.Client, subscription: dict[str, Any]) -> None:
    token = client.get("/demo/token").json()["token"]
    r = client.post(
        "/v1/push/subscriptions",
        json=subscription,
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 201, r.text


def wait_for(check: Any, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_the_detail_page_shows_what_each_channel_did(
    demo: DemoServer, push_service: PushService, mail_sink: MailSink
) -> None:
    now = datetime.now(UTC)
    zone = zone_before_22()
    # The seeded history went nowhere: wait until the planner has passed it, before anyone has
    # an address or a device (else a slow first pass plans it for what comes next).
    planned = (
        "SELECT 1 FROM channel_cursors c JOIN tenants t ON t.id = c.tenant_id"
        " WHERE t.id = 'jump-joy' AND c.last_seq >= t.last_seq"
    )
    wait_for(lambda: demo.sql(planned))
    with (
        closing(sign_in(demo.url, "ann")) as ann,
        closing(sign_in(demo.url, "sam")) as sam,
        closing(sign_in(demo.url, "lee")) as lee,
    ):
        # Preferences first: the channels learn the e-mail address with them (a digest due
        # meanwhile at the default 18:00 UTC would otherwise make this test depend on the hour).
        set_preferences(ann, **{"digest.cadence": "daily", "digest.hour": "23", "time_zone": zone})
        set_preferences(  # quiet right now, and no e-mail for Sam
            sam,
            **{
                "quiet.enabled": "on",
                "quiet.start": (now - timedelta(hours=1)).strftime("%H:00"),
                "quiet.end": (now + timedelta(hours=2)).strftime("%H:00"),
                "time_zone": "UTC",
                "digest.cadence": "off",
            },
        )
        # Lee (who makes the change) has no digest: from 18:00 UTC on, a default daily digest
        # of the seeded history would otherwise be due for him during the test.
        set_preferences(lee, **{"digest.cadence": "off"})
        add_device(ann, push_service.device("ann-phone").subscription())
        add_device(sam, push_service.device("sam-phone").subscription())
        add_device(lee, push_service.device("lee-phone").subscription())

        r = lee.post(  # a change in the demo: a customer is added, and announced
            "/demo/customers",
            data={"csrf": csrf(lee, "/demo/customers"), "name": "Dee Livery", "email": "dee@x.io"},
        )
        assert r.status_code == 303, r.text
        seq = int(demo.sql("SELECT last_seq FROM tenants WHERE id = 'jump-joy'")[0][0])

        (pushed,) = wait_for(lambda: push_service.for_device("ann-phone"))
        assert pushed["id"] == seq
        assert pushed["title"] == "New customer: Dee Livery"

        def summary() -> str | None:
            page = ann.get(f"/demo/notifications/{seq}")
            assert page.status_code == 200
            return page.text if "pushed to 1 device" in page.text else None

        page = wait_for(summary)
        assert "New customer: Dee Livery" in page
        assert "<li>pushed to 1 device</li>" in page
        assert "<li>push skipped (quiet hours)</li>" in page
        assert f"<li>in digest at 23:00 {zone}</li>" in page
        assert '<tr data-channel="push" data-status="sent">' in page
        assert '<tr data-channel="push" data-status="skipped">' in page
        assert '<tr data-channel="email" data-status="queued">' in page
        assert push_service.for_device("sam-phone") == []
        assert push_service.for_device("lee-phone") == [], "the actor is not pushed"
        assert mail_sink.messages == []

        # Staff see it too; a seeded notification that went nowhere says so.
        assert "<li>pushed to 1 device</li>" in sam.get(f"/demo/notifications/{seq}").text
        quiet = ann.get("/demo/notifications/1").text
        assert "data-summary-empty" in quiet
        assert "Only here in the app" in quiet

        # A notification for Ann only is not found for Sam; another business's never is.
        key = api_key(demo.url, "jump-joy")
        private = publish(key, "For Ann only", audience={"users": ["ann"]})["id"]
        assert ann.get(f"/demo/notifications/{private}").status_code == 200
        assert sam.get(f"/demo/notifications/{private}").status_code == 404
    with closing(sign_in(demo.url, "bob")) as bob:
        assert bob.get(f"/demo/notifications/{seq}").status_code == 404
        assert bob.get("/demo/notifications/999999").status_code == 404
        assert bob.get("/demo/notifications/0").status_code == 422


def entry(
    status: str,
    *,
    channel: str = "push",
    user: str = "ann",
    target: str | None = None,
    reason: str | None = None,
    detail: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "channel": channel,
        "status": status,
        "user": user,
        "target": target,
        "reason": reason,
        "detail": detail,
        "at": "2026-11-25T18:00:00.000000Z",
    }


def test_describe_names_the_latest_state_of_each_delivery() -> None:
    assert describe([]) == []
    log = [
        entry("queued", target="device:1"),
        entry("queued", target="device:2"),
        entry("sent", target="device:1"),
        entry("failed", target="device:2", reason="retrying"),
        entry("sent", target="device:2"),  # retried, then sent: counts as sent only
        entry("queued", user="bob", target="device:3"),
        entry("failed", user="bob", target="device:3", reason="gone"),
        entry("skipped", user="sam", reason="quiet_hours"),
        entry("skipped", user="lee", reason="quiet_hours"),
        entry("skipped", user="kim", reason="preference"),
        entry(
            "queued",
            channel="email",
            user="ann",
            target="email",
            detail={"digest": "daily at 18:00 Europe/Berlin"},
        ),
        entry(
            "queued",
            channel="email",
            user="kim",
            target="email",
            detail={"digest": "daily at 18:00 Europe/Berlin"},
        ),
        entry(
            "queued", channel="email", user="sam", target="email", detail={"digest": "hourly UTC"}
        ),
        entry("sent", channel="email", user="sam", target="email"),
        entry("skipped", channel="email", user="lee", target="email", reason="already_read"),
    ]
    assert describe(log) == [
        "pushed to 2 devices",
        "push failed (device gone)",
        "push skipped (quiet hours: 2, switched off)",
        "e-mailed in 1 digest",
        "in digest at 18:00 Europe/Berlin for 2 people",
        "not e-mailed (already read)",
    ]
    assert describe([entry("queued", target="device:9")]) == ["push queued for 1 device"]
