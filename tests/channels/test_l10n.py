"""Languages beyond the bell (issue 10 item 5): the digest in the user's locale (set by the
token's ``locale`` claim) with the tenant's own strings over the catalogue's and templated
notifications in that language; push in the profile locale; bad overrides change nothing."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import orjson
import pytest

from tests.channels.conftest import (
    MailSink,
    PushService,
    bearer,
    mail_settings,
    on_server,
    start_server,
)
from tests.channels.test_digest import html_of, text_of
from tests.support import ServerThread, create_tenant
from tidings.channels.catalogue import Messages, check_overrides
from tidings.channels.pushqueue import payload
from tidings.domain.notifications import Notification

BERLIN = ZoneInfo("Europe/Berlin")
TEMPLATE = {
    "default_locale": "en",
    "locales": {
        "en": {"title": "Booking #{{ id }} by {{ customer }}"},
        "de": {"title": "Buchung #{{ id }} von {{ customer }}", "body": "{{ slot }}"},
    },
}


def problem(r: httpx.Response, status: int = 422) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json"), r.headers


def test_overrides_are_checked_and_lie_over_the_catalogue() -> None:
    words = Messages("de-AT", {"de": {"open": "Zum Posteingang", "type.reminder": "Termin"}})
    assert words("open") == "Zum Posteingang" and words("more").startswith("…und weitere")
    assert words.type_label("reminder") == "Termin" and words.locale == "de"
    french = Messages("fr", {"fr": {"subject.other": "{count} non lues — {tenant}"}})
    assert french.counted("subject", False, "3", tenant="T") == "3 non lues — T"
    assert french("open") == "Open your notifications" and french.locale == "fr"
    for bad in (
        {"nope": "x"},
        {"subject.other": "{count} {secret}"},
        {"subject.other": "{count:>999999999}"},
        {"subject.other": "{tenant.__class__}"},
        {"subject.other": "{count!r}"},
        {"open": "unbalanced {"},
        {"open": "   "},
        {"open": "x" * 501},
        {"type.Bad Type": "x"},
        {"type.reminder": "{count}"},
    ):
        with pytest.raises(ValueError, match=r"^'"):  # names the key at fault
            check_overrides(bad)


def test_push_is_in_the_profile_locale() -> None:
    item = Notification(
        tenant="t",
        seq=1,
        type="booking_created",
        title="Booking #1",
        body="",
        data={},
        link=None,
        audience=None,
        created_at=datetime.now(UTC),
        l10n={"de": {"title": "Buchung #1", "body": "morgen"}},
    )
    de = orjson.loads(payload(item, "https://x.test", "de-CH"))
    assert (de["title"], de["body"]) == ("Buchung #1", "morgen")
    assert orjson.loads(payload(item, "https://x.test", "fr"))["title"] == "Booking #1"
    assert orjson.loads(payload(item, "https://x.test"))["title"] == "Booking #1"


@pytest.mark.anyio
async def test_the_digest_speaks_the_users_language_with_the_tenants_words(
    tmp_path: Path, mail_sink: MailSink
) -> None:
    from tidings.channels.clock import ManualClock

    day = datetime.now(UTC).astimezone(BERLIN).date()
    clock = ManualClock(datetime.combine(day, time(18, 1), BERLIN).astimezone(UTC))
    settings = mail_settings(tmp_path, mail_sink)
    server = start_server(settings, clock)
    try:
        tenant = create_tenant(server.url, "huepfburg")
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as c:
            r = await c.put(
                "/v1/tenant/preferences", headers=tenant.auth, json={"time_zone": "Europe/Berlin"}
            )
            assert r.status_code == 200, r.text
            words = {"intro.other": "{count} Neuigkeiten bei {tenant}!", "type.system": "Intern"}
            r = await c.put("/v1/tenant/messages/DE", headers=tenant.auth, json={"messages": words})
            assert r.status_code == 200 and r.json()["locale"] == "de", r.text

            # Bad overrides: 4xx problems, nothing changed.
            before = (await c.get("/v1/tenant/messages", headers=tenant.auth)).json()
            assert before["overrides"] == {"de": words} and "en" in before["catalogue"]
            bad: tuple[tuple[str, Any], ...] = (
                ("/v1/tenant/messages/de", {"messages": {"nope": "x"}}),
                ("/v1/tenant/messages/de", {"messages": {"open": "{count:>99999999}"}}),
                ("/v1/tenant/messages/de", {"messages": {"open": 7}}),
                ("/v1/tenant/messages/de", {"words": {}}),
                ("/v1/tenant/messages/d%20e", {"messages": {"open": "x"}}),
                ("/v1/tenant/messages/de-", {"messages": {"open": "x"}}),
            )
            for path, wrong in bad:
                problem(await c.put(path, headers=tenant.auth, json=wrong))
            publisher = create_tenant(server.url, "huepfburg", scopes=["publish"])
            r = await c.put("/v1/tenant/messages/de", headers=publisher.auth, json={"messages": {}})
            problem(r, 403)
            problem(await c.get("/v1/tenant/messages", headers=publisher.auth), 403)
            assert (await c.get("/v1/tenant/messages", headers=tenant.auth)).json() == before

            r = await c.put("/v1/templates/booking_created", headers=tenant.auth, json=TEMPLATE)
            assert r.status_code == 201, r.text
            users = {"greta": "de", "ella": None}
            for user, locale in users.items():
                claims: dict[str, Any] = {"user": user, "email": f"{user}@example.com"}
                if locale:
                    claims["locale"] = locale
                r = await c.post("/v1/tokens", headers=tenant.auth, json=claims)
                assert r.status_code == 201, r.text
                r = await c.get("/v1/preferences", headers=bearer(r.json()["token"]))
                assert r.status_code == 200 and r.json()["locale"] == locale, r.text

            data = {"id": 7, "customer": "Ann", "slot": "Sa 10:00"}
            published: tuple[dict[str, Any], ...] = (
                {"type": "booking_created", "data": data},
                {"type": "system", "title": "Wartung heute Nacht"},
            )
            for one in published:
                r = await c.post("/v1/notifications", headers=tenant.auth, json=one)
                assert r.status_code == 201, r.text

            sent = await asyncio.wait_for(on_server(server, lambda ch: ch.digests.tick()), 30)
            assert sent == 2
        [greta] = mail_sink.to("greta@example.com")
        assert greta["Subject"] == "2 ungelesene Benachrichtigungen — huepfburg"
        text, html = text_of(greta), html_of(greta)
        assert "2 Neuigkeiten bei huepfburg!" in text  # the tenant's words
        assert "Neue Buchung (1)" in text and "Intern (1)" in text
        assert "Buchung #7 von Ann: Sa 10:00" in text  # the template, in German
        assert '<html lang="de">' in html and "Buchung #7 von Ann" in html
        [ella] = mail_sink.to("ella@example.com")
        assert ella["Subject"] == "2 unread notifications — huepfburg"
        assert "You have 2 unread notifications at huepfburg." in text_of(ella)
        assert "Booking #7 by Ann" in text_of(ella) and "System (1)" in text_of(ella)
    finally:
        server.stop()


@pytest.mark.anyio
async def test_a_push_arrives_in_the_users_language(
    push_server: ServerThread, push_service: PushService
) -> None:
    tenant = create_tenant(push_server.url, "jump-joy")
    async with httpx.AsyncClient(base_url=push_server.url, timeout=10) as c:
        push_service.vapid_key = (await c.get("/v1/push/key")).json()["public_key"]
        r = await c.put("/v1/templates/booking_created", headers=tenant.auth, json=TEMPLATE)
        assert r.status_code == 201, r.text
        for user, locale in (("greta", "de-DE"), ("ella", None)):
            claims: dict[str, Any] = {"user": user, **({"locale": locale} if locale else {})}
            r = await c.post("/v1/tokens", headers=tenant.auth, json=claims)
            assert r.status_code == 201, r.text
            device = push_service.device(f"{user}-phone").subscription()
            r = await c.post(
                "/v1/push/subscriptions", json=device, headers=bearer(r.json()["token"])
            )
            assert r.status_code == 201, r.text
        data = {"id": 7, "customer": "Ann", "slot": "Sa 10:00"}
        r = await c.post(
            "/v1/notifications",
            headers=tenant.auth,
            json={"type": "booking_created", "data": data},
        )
        assert r.status_code == 201, r.text
    [greta] = await push_service.wait_for("greta-phone")
    [ella] = await push_service.wait_for("ella-phone")
    assert (greta["title"], greta["body"]) == ("Buchung #7 von Ann", "Sa 10:00")
    assert (ella["title"], ella["body"]) == ("Booking #7 by Ann", "")
