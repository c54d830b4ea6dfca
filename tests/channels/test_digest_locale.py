"""The digest e-mail in the user's language: a ``de`` user gets German, an ``es`` user (by the
tenant's default) Spanish, everyone else English; the catalogue is complete in every locale."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time
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
from tests.channels.test_digest import html_of, text_of
from tests.support import create_tenant, publish
from tidings.channels.catalogue import CATALOGUES, DEFAULT, Messages, placeholders, resolve
from tidings.channels.clock import ManualClock

BERLIN = ZoneInfo("Europe/Berlin")


def test_every_locale_has_every_key_with_the_same_placeholders() -> None:
    english = CATALOGUES[DEFAULT]
    assert {"de", "es"} <= set(CATALOGUES)
    for locale, catalogue in CATALOGUES.items():
        assert set(catalogue) == set(english), locale
        for key, text in catalogue.items():
            assert placeholders(text) == placeholders(english[key]), (locale, key)


def test_locales_resolve_by_language_and_fall_back_to_english() -> None:
    assert [resolve(t) for t in ("de", "de-AT", "ES_mx", "fr", None, "")] == [
        "de",
        "de",
        "es",
        "en",
        "en",
        "en",
    ]
    assert Messages("de").type_label("payment_failed") == "Zahlung fehlgeschlagen"
    assert Messages("de").type_label("invoice.overdue") == "Invoice overdue"


@pytest.mark.anyio
async def test_a_german_user_gets_a_german_digest(tmp_path: Path, mail_sink: MailSink) -> None:
    day = datetime.now(UTC).astimezone(BERLIN).date()
    clock = ManualClock(datetime.combine(day, time(18, 1), BERLIN).astimezone(UTC))
    settings = mail_settings(tmp_path, mail_sink)
    server = start_server(settings, clock)
    try:
        tenant = create_tenant(server.url, "huepfburg")
        async with httpx.AsyncClient(timeout=10) as client:
            r = await client.put(
                f"{server.url}/v1/tenant/preferences",
                headers=tenant.auth,
                json={"time_zone": "Europe/Berlin", "locale": "es"},
            )
            assert r.status_code == 200, r.text
            users: dict[str, Any] = {
                "greta": {"locale": "de-DE"},
                "sofia": {},  # the tenant's default: Spanish
                "ella": {"locale": "en"},
            }
            for user, prefs in users.items():
                value = token(tenant, user, email_address=f"{user}@example.com")
                r = await client.put(
                    f"{server.url}/v1/preferences", headers=bearer(value), json=prefs
                )
                assert r.status_code == 200, r.text
                wanted = {"greta": "de", "sofia": "es", "ella": "en"}[user]
                assert r.json()["effective"]["locale"] == wanted

            bad = await client.put(
                f"{server.url}/v1/preferences", headers=bearer(value), json={"locale": "<b>"}
            )
            assert bad.status_code == 422, bad.text
            assert bad.headers["content-type"].startswith("application/problem+json")
            kept = await client.get(f"{server.url}/v1/preferences", headers=bearer(value))
            assert kept.json()["preferences"]["locale"] == "en"  # nothing changed

            # An admin sets it too (PUT /v1/users/{user}), keeping the user's other preferences.
            r = await client.put(
                f"{server.url}/v1/users/bruno",
                headers=tenant.auth,
                json={"email": "bruno@example.com", "locale": "de"},
            )
            assert r.status_code == 200 and r.json()["locale"] == "de", r.text
            r = await client.put(
                f"{server.url}/v1/users/bruno", headers=tenant.auth, json={"locale": "x y"}
            )
            assert r.status_code == 422, r.text
            r = await client.get(f"{server.url}/v1/users/bruno", headers=tenant.auth)
            assert r.json()["locale"] == r.json()["preferences"]["locale"] == "de"

            await publish(client, tenant, "Neue Buchung #1", type="booking_created")
            await publish(client, tenant, "Karte abgelehnt", type="payment_failed")

            sent = await asyncio.wait_for(on_server(server, lambda ch: ch.digests.tick()), 30)
            assert sent == 4
        [greta] = mail_sink.to("greta@example.com")
        assert greta["Subject"] == "2 ungelesene Benachrichtigungen — huepfburg"
        text, html = text_of(greta), html_of(greta)
        assert "Sie haben 2 ungelesene Benachrichtigungen bei huepfburg." in text
        assert "Neue Buchung (1)" in text and "Zahlung fehlgeschlagen (1)" in text
        assert "Abmelden: https://app.example.test/" in text
        assert '<html lang="de">' in html and "Benachrichtigungen öffnen" in html
        [bruno] = mail_sink.to("bruno@example.com")
        assert bruno["Subject"] == "2 ungelesene Benachrichtigungen — huepfburg"
        [sofia] = mail_sink.to("sofia@example.com")
        assert sofia["Subject"] == "2 notificaciones sin leer — huepfburg"
        [ella] = mail_sink.to("ella@example.com")
        assert ella["Subject"] == "2 unread notifications — huepfburg"
    finally:
        server.stop()
