"""The demo as an owner meets it (issue 10 item 6), over real HTTP: the live parts a page
re-fetches when a notification arrives (and their refusals), the seeded history spread over
real days, each business in its own time zone, business words instead of type slugs, a
cancellation that asks first, and one collapse group per booking."""

from __future__ import annotations

import html
import re
from collections import Counter
from contextlib import closing
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.demo.helpers import (
    DemoServer,
    booking_with,
    csrf,
    latest_seq,
    sign_in,
    status_of,
)
from tidings.demo.prefsform import DEMO_TYPES
from tidings.demo.seed import TENANTS

ZONES = {"jump-joy": ZoneInfo("America/Chicago"), "bounce-bros": ZoneInfo("America/Denver")}


def seeded_count(tenant: str) -> int:
    """The notifications the seed published for ``tenant``: one per booking, move, payment."""
    (found,) = [t for t in TENANTS if t.id == tenant]
    return sum(1 + len(b[6]) + len(b[7]) for b in found.bookings)


def utc(value: str) -> datetime:
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


def visible_text(page: str) -> str:
    """What a person reads: no scripts, styles, tags or attribute values."""
    page = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S | re.I)
    page = re.sub(r"<tidings-bell\b.*?</tidings-bell>", " ", page, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


def parts(client: httpx.Client, path: str) -> dict[str, str]:
    r = client.get(path)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    assert r.headers["cache-control"] == "no-store"
    found: dict[str, str] = r.json()["parts"]
    return found


def figure(figures: str, label: str) -> str:
    match = re.search(
        rf'<span class="stat-label">{label}</span>\s*<span class="stat-value">([^<]+)</span>',
        figures,
    )
    assert match, figures
    return match.group(1)


# -- live parts ----------------------------------------------------------------------------------


def test_live_parts_are_the_pages_own_and_follow_a_change(demo: DemoServer) -> None:
    with closing(sign_in(demo.url, "ann")) as ann, closing(sign_in(demo.url, "sam")) as sam:
        dash = parts(ann, "/demo/live/dashboard")
        assert set(dash) == {"figures", "today", "upcoming"}
        page = ann.get("/demo").text
        for name, part in dash.items():  # the same template renders the page and its part
            assert part.strip() in page, name
            assert f'data-live="{name}"' in part
        requested = booking_with(demo, "jump-joy", "requested")
        waiting = int(figure(dash["figures"], "Awaiting confirmation"))

        r = sam.post(
            f"/demo/bookings/{requested}/move",
            data={"csrf": csrf(sam, f"/demo/bookings/{requested}"), "move": "confirm"},
        )
        assert r.status_code == 303
        after = parts(ann, "/demo/live/dashboard")
        assert int(figure(after["figures"], "Awaiting confirmation")) == waiting - 1

        mine = parts(ann, f"/demo/live/bookings/{requested}")
        assert set(mine) == {
            "booking-head",
            "booking-details",
            "booking-reschedule",
            "booking-payments",
            "booking-payform",
            "booking-history",
        }
        assert "pill-confirmed" in mine["booking-head"]
        assert "Requested → Confirmed" in mine["booking-history"]
        assert 'data-live-key="confirmed"' in mine["booking-reschedule"]

        r = sam.post(
            f"/demo/bookings/{requested}/payments",
            data={
                "csrf": csrf(sam, f"/demo/bookings/{requested}"),
                "amount": "12.50",
                "status": "received",
                "method": "cash",
            },
        )
        assert r.status_code == 303
        paid = parts(ann, "/demo/live/payments")["payments-list"]
        assert paid.strip() in ann.get("/demo/payments").text
        assert "$12.50" in paid.split("</tr>")[1]  # the newest row, after the header's
        r = sam.post(
            "/demo/customers",
            data={
                "csrf": csrf(sam, "/demo/customers"),
                "name": "Liv Ely",
                "email": "liv@example.com",
            },
        )
        assert r.status_code == 303
        people = parts(ann, "/demo/live/customers?q=liv")["customers-list"]
        assert "Liv Ely" in people
        assert "Maria Lopez" not in people
        assert people.strip() in ann.get("/demo/customers?q=liv").text

        listed = parts(ann, "/demo/live/bookings?when=all&status=confirmed")
        assert f'data-booking="{requested}"' in listed["bookings-list"]
        assert (
            f'data-booking="{requested}"'
            not in parts(ann, "/demo/live/bookings?when=all&status=requested")["bookings-list"]
        )


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/demo/live/bookings/abc", 422),
        ("/demo/live/bookings/0", 422),
        ("/demo/live/bookings/99999999999", 422),
        ("/demo/live/bookings/999999", 404),
        ("/demo/live/bookings?when=someday", 422),
        ("/demo/live/bookings?status=flying", 422),
        ("/demo/live/bookings?q=" + "x" * 101, 422),
        ("/demo/live/nothing", 404),
        ("/demo/live/bookings?q=a%00b", 400),
        ("/demo/live/customers?q=" + "x" * 101, 422),
    ],
)
def test_live_routes_answer_bad_input_with_a_problem_and_change_nothing(
    demo: DemoServer, path: str, status: int
) -> None:
    before = demo.sql("SELECT id, status, updated_at FROM bookings ORDER BY id")
    seqs = latest_seq(demo, "jump-joy"), latest_seq(demo, "bounce-bros")
    with closing(sign_in(demo.url, "lee")) as lee:
        r = lee.get(path)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["status"] == status
    assert demo.sql("SELECT id, status, updated_at FROM bookings ORDER BY id") == before
    assert (latest_seq(demo, "jump-joy"), latest_seq(demo, "bounce-bros")) == seqs


def test_live_routes_need_a_session_and_keep_to_the_tenant(demo: DemoServer) -> None:
    theirs = booking_with(demo, "bounce-bros", "confirmed")
    with httpx.Client(base_url=demo.url, timeout=10) as anon:
        for path in (
            "/demo/live/dashboard",
            "/demo/live/bookings",
            f"/demo/live/bookings/{theirs}",
        ):
            r = anon.get(path)
            assert r.status_code == 401, path
            assert r.headers["content-type"] == "application/problem+json"
    with closing(sign_in(demo.url, "ann")) as ann:
        r = ann.get(f"/demo/live/bookings/{theirs}")
        assert r.status_code == 404
        assert r.json()["code"] == "booking_not_found"
        r = ann.post("/demo/live/dashboard")
        assert r.status_code == 405
        assert r.headers["content-type"] == "application/problem+json"


# -- seeded history and time zones ---------------------------------------------------------------


@pytest.mark.parametrize("tenant", ["jump-joy", "bounce-bros"])
def test_seeded_history_is_spread_over_days_at_real_times(demo: DemoServer, tenant: str) -> None:
    rows = demo.sql(
        "SELECT seq, created_at FROM notifications WHERE tenant_id = ? AND seq <= ? ORDER BY seq",
        tenant,
        seeded_count(tenant),
    )
    seeded = [(int(seq), utc(at)) for seq, at in rows]
    times = [at for _, at in seeded]
    assert len(times) == seeded_count(tenant) >= 9
    assert times == sorted(times), "seq order is time order"
    assert max(times) < datetime.now(UTC)
    assert len(set(times)) >= 0.9 * len(times), Counter(times).most_common(3)
    zone = ZONES[tenant]
    days = {at.astimezone(zone).date() for at in times}
    assert len(days) >= 5, days
    assert min(times) < datetime.now(UTC) - timedelta(days=5)
    # Business hours, local: the booking was taken, confirmed, paid while the office was open
    # (a step that would lie ahead happened earlier today, which may be any hour).
    office = [at for at in times if 7 <= at.astimezone(zone).hour < 23]
    assert len(office) >= 0.7 * len(times)
    # Each booking's history row and payment carry the time of their notification.
    history = demo.sql(
        "SELECT notification_seq, created_at FROM booking_events "
        "WHERE tenant_id = ? AND notification_seq <= ?",
        tenant,
        seeded_count(tenant),
    )
    when = dict(seeded)
    for seq, at in history:
        assert utc(at) == when[int(seq)]


def test_each_business_shows_times_in_its_own_zone(demo: DemoServer) -> None:
    for user, tenant, names in (
        ("ann", "jump-joy", ("CST", "CDT")),
        ("bob", "bounce-bros", ("MST", "MDT")),
    ):
        with closing(sign_in(demo.url, user)) as client:
            booking = booking_with(demo, tenant, "completed")
            page = visible_text(client.get(f"/demo/bookings/{booking}").text)
            assert any(name in page for name in names), page
            assert " UTC" not in page
            seq, at = demo.sql(
                "SELECT notification_seq, created_at FROM booking_events WHERE booking_id = ? "
                "ORDER BY id LIMIT 1",
                booking,
            )[0]
            local = utc(at).astimezone(ZONES[tenant])
            stamp = f"{local.day} {local.strftime('%b %Y, %H:%M')} {local.tzname()}"
            assert stamp in page
            note = visible_text(client.get(f"/demo/notifications/{seq}").text)
            assert stamp in note
            today = datetime.now(ZONES[tenant]).date()
            dash = client.get("/demo").text
            assert f"{today.strftime('%a')} {today.day} {today.strftime('%b %Y')}" in dash
            # "View all": the inbox's day headers follow the business's calendar too.
            inbox = client.get("/demo/notifications").text
            assert f'time-zone="{ZONES[tenant].key}"' in inbox


# -- words ---------------------------------------------------------------------------------------


def test_owner_pages_show_no_type_slugs_and_no_notification_numbers(demo: DemoServer) -> None:
    # The slugs with an underscore ("reminder" and "system" are English words too).
    slugs = re.compile("|".join(re.escape(name) for name in DEMO_TYPES if "_" in name))
    with closing(sign_in(demo.url, "ann")) as ann:
        bookings = [r[0] for r in demo.sql("SELECT id FROM bookings WHERE tenant_id = 'jump-joy'")]
        paths = [
            "/demo",
            "/demo/bookings?when=all",
            "/demo/customers",
            "/demo/payments",
            "/demo/preferences",
            *(f"/demo/bookings/{b}" for b in bookings),
            *(f"/demo/notifications/{s}" for s in range(1, latest_seq(demo, "jump-joy") + 1)),
        ]
        for path in paths:
            r = ann.get(path)
            assert r.status_code == 200, path
            text = visible_text(r.text)
            assert not slugs.search(text), (path, slugs.findall(text))
            assert not re.search(r"[Nn]otification #\d", text), path
            assert "Delivery outside the app" not in text
        note = ann.get("/demo/notifications/1").text
        assert re.search(r'<details class="card disclosure" data-deliveries>\s*<summary', note)
        assert "Where it was sent" in note
        assert "<title>New booking from" in note


# -- cancelling asks first -----------------------------------------------------------------------


def test_cancelling_asks_for_confirmation_and_without_it_changes_nothing(
    demo: DemoServer,
) -> None:
    with closing(sign_in(demo.url, "sam")) as sam:
        booking = booking_with(demo, "jump-joy", "confirmed")
        before = latest_seq(demo, "jump-joy")
        page = sam.get(f"/demo/bookings/{booking}").text
        assert '<details class="confirm" data-confirm="cancel">' in page  # closed until asked
        token = csrf(sam, f"/demo/bookings/{booking}")
        for confirm in (None, "", "no", "YES"):
            data: dict[str, Any] = {"csrf": token, "move": "cancel"}
            if confirm is not None:
                data["confirm"] = confirm
            r = sam.post(f"/demo/bookings/{booking}/move", data=data)
            assert r.status_code == 422
            assert '<details class="confirm" data-confirm="cancel" open>' in r.text
            assert f"Cancel booking #{booking}?" in r.text
            assert status_of(demo, booking) == "confirmed"
            assert latest_seq(demo, "jump-joy") == before
        r = sam.post(
            f"/demo/bookings/{booking}/move",
            data={"csrf": token, "move": "cancel", "confirm": "yes"},
        )
        assert r.status_code == 303
        assert status_of(demo, booking) == "cancelled"
        assert latest_seq(demo, "jump-joy") == before + 1


# -- collapse groups -----------------------------------------------------------------------------


def test_everything_about_a_booking_shares_its_group_and_names_the_actor(
    demo: DemoServer,
) -> None:
    rows = demo.sql(
        "SELECT type, group_key, data FROM notifications WHERE tenant_id = 'jump-joy' ORDER BY seq"
    )
    about_bookings = 0
    for type_, group, data in rows:
        about = re.search(r'"booking_id":\s*(\d+)', data)
        if about is None:  # a new customer is no booking's news
            assert type_ == "customer_created" and group is None, type_
            continue
        about_bookings += 1
        assert group == f"booking:{about.group(1)}", type_
    assert about_bookings >= seeded_count("jump-joy")
    with closing(sign_in(demo.url, "lee")) as lee:
        booking = booking_with(demo, "jump-joy", "confirmed")
        r = lee.post(
            f"/demo/bookings/{booking}/payments",
            data={
                "csrf": csrf(lee, f"/demo/bookings/{booking}"),
                "amount": "50",
                "status": "received",
                "method": "cash",
            },
        )
        assert r.status_code == 303
    group, actor = demo.sql(
        "SELECT group_key, actor_id FROM notifications WHERE tenant_id = 'jump-joy' "
        "ORDER BY seq DESC LIMIT 1"
    )[0]
    assert (group, actor) == (f"booking:{booking}", "lee")
