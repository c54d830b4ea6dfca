"""The demo's preferences pages over real HTTP: what they show (the ten known types, critical
types locked on in-app, the business's defaults), what they store (through the channels' own
code, visible in ``GET /v1/preferences``), bad input that stores nothing, owners only for the
business's defaults, and the service worker served at the site's root for the bell."""

from __future__ import annotations

import re
from contextlib import closing
from typing import Any

import httpx

from tests.demo.helpers import DemoServer, preferences_form, sign_in
from tidings.domain.notifications import KNOWN_TYPES

BUSINESS = "/demo/preferences/business"


def prefs_of(client: httpx.Client) -> dict[str, Any]:
    r = client.get("/v1/preferences")  # the API, with the demo's stream-token cookie
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def row(page: str, type_: str) -> str:
    match = re.search(rf'<tr data-type="{re.escape(type_)}".*?</tr>', page, re.S)
    assert match, f"no row for {type_}"
    return match.group(0)


def checked(page: str, name: str) -> bool:
    match = re.search(rf'<input type="checkbox" name="{re.escape(name)}" value="on" ([^>]*)>', page)
    assert match, f"no checkbox {name}"
    return "checked" in match.group(1)


def channel_rows(demo: DemoServer) -> list[tuple[Any, ...]]:
    return demo.sql(
        "SELECT user_id, time_zone, prefs FROM channel_users WHERE tenant_id = 'jump-joy' "
        "ORDER BY user_id"
    )


def tenant_row(demo: DemoServer) -> list[tuple[Any, ...]]:
    return demo.sql("SELECT prefs FROM channel_tenants WHERE tenant_id = 'jump-joy'")


def test_owner_sets_business_defaults_and_staff_sets_their_own(demo: DemoServer) -> None:
    with closing(sign_in(demo.url, "ann")) as ann, closing(sign_in(demo.url, "sam")) as sam:
        business = ann.get(BUSINESS)
        assert business.status_code == 200
        sent = preferences_form(business.text)
        sent.update(
            {
                "system.critical": "on",
                "payment_failed.critical": "on",
                "time_zone": "America/Chicago",
                "reminder_lead_hours": "6",
            }
        )
        del sent["customer_created.push"]  # push off by default for new customers
        r = ann.post(BUSINESS, data=sent)
        assert r.status_code == 303, r.text
        defaults = prefs_of(ann)["tenant_defaults"]
        assert defaults["critical_types"] == ["payment_failed", "system"]
        assert defaults["time_zone"] == "America/Chicago"
        assert defaults["reminder_lead_hours"] == 6.0
        assert defaults["types"] == {"customer_created": {"push": False}}

        mine = sam.get("/demo/preferences")
        assert mine.status_code == 200
        page = mine.text
        for type_ in KNOWN_TYPES:
            assert f'data-type="{type_}"' in page
        # Critical types: the in-app box is locked on; others are switches.
        assert 'data-critical="true"' in row(page, "system")
        assert re.search(r"checked disabled data-locked", row(page, "system"))
        assert "data-locked" not in row(page, "booking_created")
        assert checked(page, "booking_created.in_app")
        assert not checked(page, "customer_created.push")  # the business's default
        assert "The business's (America/Chicago)" in page

        sent = preferences_form(page)
        del sent["booking_created.in_app"]
        del sent["payment_received.push"]
        sent.update(
            {
                "digest.cadence": "hourly",
                "quiet.enabled": "on",
                "quiet.start": "21:30",
                "quiet.end": "06:00",
                "time_zone": "Europe/Berlin",
            }
        )
        r = sam.post("/demo/preferences", data=sent)
        assert r.status_code == 303, r.text
        view = prefs_of(sam)
        # Only what differs from the business is stored: the rest keeps following it.
        assert view["preferences"] == {
            "channels": {},
            "types": {"booking_created": {"in_app": False}, "payment_received": {"push": False}},
            "digest": {"cadence": "hourly", "hour": 18},
            "quiet_hours": {"enabled": True, "start": "21:30", "end": "06:00"},
        }
        assert view["time_zone"] == "Europe/Berlin"
        assert view["email"] == "sam@jumpjoy.example"  # recorded like the API does
        effective = view["effective"]["types"]
        assert effective["booking_created"]["in_app"] is False
        assert effective["customer_created"]["push"] is False
        assert effective["system"] == {
            "in_app": True,
            "push": True,
            "email": True,
            "critical": True,
        }
        # In-app off applies at once to Sam's feed, not to Ann's.
        assert sam.get("/v1/feed", params={"type": "booking_created"}).json()["items"] == []
        assert ann.get("/v1/feed", params={"type": "booking_created"}).json()["items"]

        again = sam.get("/demo/preferences").text
        assert not checked(again, "booking_created.in_app")
        assert checked(again, "quiet.enabled")
        assert '<option value="Europe/Berlin" selected>' in again


def test_bad_input_is_refused_and_stores_nothing(demo: DemoServer) -> None:
    with closing(sign_in(demo.url, "lee")) as lee, closing(sign_in(demo.url, "ann")) as ann:
        page = lee.get("/demo/preferences").text
        good = preferences_form(page)
        assert lee.post("/demo/preferences", data=good).status_code == 303
        users, tenant = channel_rows(demo), tenant_row(demo)
        for change, message in (
            ({"time_zone": "Mars/Olympus"}, "&#39;Mars/Olympus&#39; is not a time zone we know"),
            ({"digest.hour": "25"}, "The digest hour is a whole hour from 0 to 23"),
            ({"digest.hour": "\u00b2"}, "The digest hour is a whole hour from 0 to 23"),
            ({"digest.cadence": "weekly"}, "Choose how often the digest comes"),
            (
                {"quiet.enabled": "on", "quiet.start": "7 pm", "quiet.end": "07:00"},
                "Quiet hours are times like 22:00",
            ),
            (
                {"quiet.enabled": "on", "quiet.start": "22:00", "quiet.end": "22:00"},
                "Quiet hours need an end different from their start.",
            ),
        ):
            r = lee.post("/demo/preferences", data={**good, **change})
            assert r.status_code == 422, change
            assert "Nothing was saved." in r.text
            assert message in r.text, change
            assert 'aria-invalid="true"' in r.text
        r = lee.post("/demo/preferences", data={**good, "csrf": "forged"})
        assert r.status_code == 403
        assert channel_rows(demo) == users

        # The business's defaults: owners only, and validated the same way.
        assert lee.get(BUSINESS).status_code == 403
        r = lee.post(BUSINESS, data={**good, "time_zone": "UTC", "reminder_lead_hours": "24"})
        assert r.status_code == 403
        assert "Only an owner" in r.text
        business = preferences_form(ann.get(BUSINESS).text)
        for change, message in (
            ({"time_zone": ""}, "Choose the business&#39;s time zone."),
            ({"time_zone": "Europe/Atlantis"}, "is not a time zone we know"),
            ({"reminder_lead_hours": "0"}, "is not a number of hours in that range"),
            ({"reminder_lead_hours": "nan"}, "is not a number of hours in that range"),
            ({"reminder_lead_hours": "1e9"}, "is not a number of hours in that range"),
            ({"digest.hour": "-1"}, "The digest hour is a whole hour from 0 to 23"),
        ):
            r = ann.post(BUSINESS, data={**business, **change})
            assert r.status_code == 422, change
            assert message in r.text, change
        assert tenant_row(demo) == tenant
        assert channel_rows(demo) == users


def test_the_bell_links_preferences_and_the_service_worker_covers_the_dashboard(
    demo: DemoServer,
) -> None:
    with closing(sign_in(demo.url, "ann")) as ann:
        page = ann.get("/demo").text
        bell = re.search(r"<tidings-bell [^>]*>", page)
        assert bell
        assert 'preferences-url="/demo/preferences"' in bell.group(0)
        assert 'sw-url="/sw.js"' in bell.group(0)
        assert 'href="/demo/preferences"' in page  # also in the navigation
    root = httpx.get(f"{demo.url}/sw.js", timeout=10)
    assert root.status_code == 200
    assert root.headers["content-type"].startswith("text/javascript")
    assert root.headers["cache-control"] == "no-cache"
    assert root.content == httpx.get(f"{demo.url}/static/sw.js", timeout=10).content
    assert b"notificationclick" in root.content
