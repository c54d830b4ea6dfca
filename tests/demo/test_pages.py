"""The demo over real HTTP: sign-in, the state machine's refusals, CSRF, the public widget, and
tenant isolation of every page."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

import httpx
import pytest

from tests.demo.helpers import (
    DemoServer,
    booking_with,
    csrf,
    form_token,
    latest_seq,
    sign_in,
    start_demo,
    status_of,
)
from tests.support import ServerThread, make_settings


def widget_form(client: httpx.Client, tenant: str, **fields: str) -> dict[str, str]:
    page = client.get(f"/book/{tenant}")
    assert page.status_code == 200
    return {
        "form_token": form_token(page.text),
        "item": "pirate-ship",
        "date": (date.today() + timedelta(days=10)).isoformat(),
        "start": "11:00",
        "hours": "5",
        "address": "7 Bounce Road",
        "name": "Tom Tester",
        "email": "tom@example.com",
        **fields,
    }


# -- sign-in and tokens --------------------------------------------------------------------------


def test_the_demo_is_off_unless_switched_on(tmp_path: Any) -> None:
    server = ServerThread(make_settings(str(tmp_path))).start()
    try:
        for path in ("/demo", "/demo/login", "/demo/token", "/book/jump-joy", "/"):
            assert httpx.get(server.url + path, timeout=10).status_code == 404, path
    finally:
        server.stop()


def test_pages_need_a_session_and_the_token_endpoint_says_401(demo: DemoServer) -> None:
    with httpx.Client(base_url=demo.url, timeout=10) as anon:
        r = anon.get("/demo/bookings?when=all")
        assert r.status_code == 303
        assert r.headers["location"] == "/demo/login?next=/demo/bookings%3Fwhen%3Dall"
        r = anon.get("/demo/token")
        assert r.status_code == 401
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["code"] == "sign_in_required"
        assert anon.get("/v1/feed").status_code == 401


def test_password_sign_in_and_the_token_it_leads_to(demo: DemoServer) -> None:
    with httpx.Client(base_url=demo.url, timeout=10) as client:
        token = form_token(client.get("/demo/login").text)
        wrong = client.post(
            "/demo/login",
            data={"form_token": token, "email": "ann@jumpjoy.example", "password": "nope"},
        )
        assert wrong.status_code == 401
        assert "do not match" in wrong.text
        assert "demo_session" not in client.cookies
        ok = client.post(
            "/demo/login",
            data={
                "form_token": token,
                "email": "ANN@jumpjoy.example",
                "password": "bounce-demo",
                "next": "https://evil.example/steal",
            },
        )
        assert ok.status_code == 303
        assert ok.headers["location"] == "/demo"  # no open redirect
        answer = client.get("/demo/token")
        assert answer.status_code == 200
        assert answer.headers["cache-control"] == "no-store"
        body = answer.json()
        assert body["tenant"] == "jump-joy"
        feed = httpx.get(
            f"{demo.url}/v1/feed/unread-count",
            headers={"Authorization": f"Bearer {body['token']}"},
            timeout=10,
        )
        assert feed.status_code == 200
        # The session cookie is not a stream token, and the stream token is not a session.
        session = client.cookies["demo_session"]
        r = httpx.get(
            f"{demo.url}/v1/feed", headers={"Authorization": f"Bearer {session}"}, timeout=10
        )
        assert r.status_code == 401
        r = httpx.get(f"{demo.url}/demo", cookies={"demo_session": body["token"]}, timeout=10)
        assert r.status_code == 303


def test_pages_forbid_inline_script_and_framing(demo: DemoServer) -> None:
    ann = sign_in(demo.url, "ann")
    policy = ann.get("/demo").headers["content-security-policy"]
    assert "script-src 'self';" in policy
    assert "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
    widget = httpx.get(f"{demo.url}/book/jump-joy", timeout=10)
    assert "frame-ancestors 'self'" in widget.headers["content-security-policy"]
    assert widget.headers["x-content-type-options"] == "nosniff"


def test_sign_in_forms_need_their_token(demo: DemoServer) -> None:
    with httpx.Client(base_url=demo.url, timeout=10) as client:
        r = client.post("/demo/login", data={"user": "1"})
        assert r.status_code == 403
        assert "CSRF" in r.text
        assert "demo_session" not in client.cookies


# -- the state machine ---------------------------------------------------------------------------


def test_impossible_moves_are_refused_with_a_clear_message(demo: DemoServer) -> None:
    client = sign_in(demo.url, "ann")
    done = booking_with(demo, "jump-joy", "completed")
    before = latest_seq(demo, "jump-joy")
    token = csrf(client, f"/demo/bookings/{done}")
    r = client.post(f"/demo/bookings/{done}/move", data={"csrf": token, "move": "confirm"})
    assert r.status_code == 409
    assert f"Booking #{done} is completed, which is final: it cannot be confirmed." in r.text
    assert status_of(demo, done) == "completed"
    assert latest_seq(demo, "jump-joy") == before  # nothing published

    requested = booking_with(demo, "jump-joy", "requested")
    r = client.post(f"/demo/bookings/{requested}/move", data={"csrf": token, "move": "no-show"})
    assert r.status_code == 409
    assert "only confirmed bookings can be marked as a no-show. Confirm it first." in r.text
    r = client.post(f"/demo/bookings/{requested}/move", data={"csrf": token, "move": "fly"})
    assert r.status_code == 422
    assert status_of(demo, requested) == "requested"
    assert latest_seq(demo, "jump-joy") == before


def test_a_move_changes_the_booking_and_publishes_in_one_go(demo: DemoServer) -> None:
    client = sign_in(demo.url, "sam")
    requested = booking_with(demo, "jump-joy", "requested")
    before = latest_seq(demo, "jump-joy")
    token = csrf(client, f"/demo/bookings/{requested}")
    r = client.post(f"/demo/bookings/{requested}/move", data={"csrf": token, "move": "confirm"})
    assert r.status_code == 303
    assert r.headers["location"] == f"/demo/bookings/{requested}"
    assert status_of(demo, requested) == "confirmed"
    seq = before + 1
    assert latest_seq(demo, "jump-joy") == seq
    note = demo.sql(
        "SELECT type, link, title FROM notifications WHERE tenant_id = 'jump-joy' AND seq = ?", seq
    )[0]
    assert note == (
        "booking_confirmed",
        f"/demo/bookings/{requested}",
        f"Booking #{requested} confirmed",
    )
    history = demo.sql(
        "SELECT from_status, to_status, actor, notification_seq FROM booking_events "
        "WHERE booking_id = ? ORDER BY id DESC LIMIT 1",
        requested,
    )[0]
    assert history == ("requested", "confirmed", "Sam Shaw", seq)
    page = client.get(f"/demo/bookings/{requested}")
    assert f"Booking #{requested} confirmed." in page.text  # the flash message
    assert f'<a class="muted small" href="/demo/notifications/{seq}">' in page.text


# -- CSRF ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("token", [None, "", "forged-token-0123456789", "other-user"])
def test_posts_without_the_sessions_csrf_token_change_nothing(
    demo: DemoServer, token: str | None
) -> None:
    client = sign_in(demo.url, "lee")
    if token == "other-user":
        token = csrf(sign_in(demo.url, "ann"))
    requested = booking_with(demo, "jump-joy", "requested")
    customers = demo.sql("SELECT count(*) FROM customers")[0][0]
    before = latest_seq(demo, "jump-joy")
    data: dict[str, Any] = {} if token is None else {"csrf": token}
    posts = [
        (f"/demo/bookings/{requested}/move", {**data, "move": "cancel"}),
        ("/demo/customers", {**data, "name": "Eve", "email": "eve@example.com"}),
        (
            f"/demo/bookings/{requested}/payments",
            {**data, "amount": "10", "status": "received", "method": "cash"},
        ),
        ("/demo/logout", data),
    ]
    for path, form in posts:
        r = client.post(path, data=form)
        assert r.status_code == 403, path
        assert "CSRF check failed" in r.text
    assert status_of(demo, requested) == "requested"
    assert demo.sql("SELECT count(*) FROM customers")[0][0] == customers
    assert latest_seq(demo, "jump-joy") == before
    assert client.get("/demo").status_code == 200  # still signed in


# -- tenant isolation ----------------------------------------------------------------------------


def test_another_tenants_rows_are_not_found_and_not_listed(demo: DemoServer) -> None:
    ann = sign_in(demo.url, "ann")
    theirs = booking_with(demo, "bounce-bros", "confirmed")
    status = status_of(demo, theirs)
    payments = demo.sql("SELECT count(*) FROM payments")[0][0]
    token = csrf(ann)
    assert ann.get(f"/demo/bookings/{theirs}").status_code == 404
    r = ann.post(f"/demo/bookings/{theirs}/move", data={"csrf": token, "move": "cancel"})
    assert r.status_code == 404
    assert f"There is no booking #{theirs}." in r.text
    for path, form in (
        (
            f"/demo/bookings/{theirs}/payments",
            {"csrf": token, "amount": "5", "status": "received", "method": "cash"},
        ),
        (
            "/demo/payments",
            {
                "csrf": token,
                "booking": str(theirs),
                "amount": "5",
                "status": "received",
                "method": "cash",
            },
        ),
    ):
        assert ann.post(path, data=form).status_code == 404
    assert status_of(demo, theirs) == status
    assert demo.sql("SELECT count(*) FROM payments")[0][0] == payments

    bros_names = [
        r[0] for r in demo.sql("SELECT name FROM customers WHERE tenant_id = 'bounce-bros'")
    ]
    pages = [
        ann.get(p).text
        for p in (
            "/demo",
            "/demo/bookings?when=all",
            "/demo/customers",
            "/demo/payments",
            "/demo/bookings?when=all&q=hannah",
        )
    ]
    for name in bros_names:
        assert all(name not in page for page in pages), name
    assert "Bounce Bros" not in "".join(pages)


# -- the public widget ---------------------------------------------------------------------------


def test_widget_creates_a_booking_and_its_notification(demo: DemoServer) -> None:
    with httpx.Client(base_url=demo.url, timeout=10) as customer:
        before = latest_seq(demo, "bounce-bros")
        form = widget_form(
            customer, "bounce-bros", name="Nina <b>Bold</b>", email="nina@example.com"
        )
        r = customer.post("/book/bounce-bros", data=form)
        assert r.status_code == 303
        assert r.headers["location"] == "/book/bounce-bros/thanks"
        thanks = customer.get("/book/bounce-bros/thanks")
        assert "Thanks, Nina &lt;b&gt;Bold&lt;/b&gt;! Request #" in thanks.text
    row = demo.sql(
        "SELECT b.id, b.status, b.source, c.name FROM bookings b "
        "JOIN customers c ON c.id = b.customer_id "
        "WHERE b.tenant_id = 'bounce-bros' ORDER BY b.id DESC LIMIT 1"
    )[0]
    assert row[1:] == ("requested", "widget", "Nina <b>Bold</b>")
    assert latest_seq(demo, "bounce-bros") == before + 1
    note = demo.sql(
        "SELECT type, title, link FROM notifications WHERE tenant_id = 'bounce-bros' AND seq = ?",
        before + 1,
    )[0]
    assert note == (
        "booking_created",
        "New booking from Nina <b>Bold</b>",
        f"/demo/bookings/{row[0]}",
    )
    # Staff see the customer's text as text.
    bob = sign_in(demo.url, "bob")
    page = bob.get(f"/demo/bookings/{row[0]}").text
    assert "Nina &lt;b&gt;Bold&lt;/b&gt;" in page
    assert "<b>Bold</b>" not in page


def test_widget_validation_names_the_fields_and_stores_nothing(demo: DemoServer) -> None:
    with httpx.Client(base_url=demo.url, timeout=10) as customer:
        before = latest_seq(demo, "jump-joy")
        bookings = demo.sql("SELECT count(*) FROM bookings")[0][0]
        form = widget_form(
            customer,
            "jump-joy",
            item="rocket",
            date=(date.today() - timedelta(days=2)).isoformat(),  # past in every zone
            email="nope",
            hours="30",
        )
        r = customer.post("/book/jump-joy", data=form)
        assert r.status_code == 422
        for message in (
            "Choose one of our inflatables.",
            "The date is in the past.",
            "E-mail does not look like an address",
            "Rental length is 2 to 12 hours.",
        ):
            assert message in r.text
        assert 'value="7 Bounce Road"' in r.text  # what was typed is kept
        assert customer.get("/book/no-such-business").status_code == 404
        assert customer.get("/book/Not_A_Slug").status_code == 422
        r = customer.post("/book/jump-joy", data={**form, "form_token": "stale"})
        assert r.status_code == 403
        good = widget_form(customer, "jump-joy", website="http://spam.example")
        assert customer.post("/book/jump-joy", data=good).status_code == 303  # honeypot
        r = customer.post("/book/no-such-business", data=good)
        assert r.status_code == 404
    assert demo.sql("SELECT count(*) FROM bookings")[0][0] == bookings
    assert latest_seq(demo, "jump-joy") == before


def test_widget_is_rate_limited_per_client(tmp_path: Any) -> None:
    server = start_demo(tmp_path)
    try:
        with httpx.Client(base_url=server.url, timeout=10) as customer:
            form = widget_form(customer, "jump-joy")
            codes = [
                customer.post(
                    "/book/jump-joy", data={**form, "email": f"p{i}@example.com"}
                ).status_code
                for i in range(21)
            ]
            assert codes[:20] == [303] * 20
            assert codes[20] == 429
            r = customer.post("/book/jump-joy", data=form)
            assert r.status_code == 429
            assert "wait a minute" in r.text
            assert int(r.headers["retry-after"]) >= 1
        assert (
            server.sql(
                "SELECT count(*) FROM bookings "
                "WHERE source = 'widget' AND address = '7 Bounce Road'"
            )[0][0]
            == 20
        )
    finally:
        server.stop()


# -- customers and payments ----------------------------------------------------------------------


def test_customers_and_payments_publish_their_notifications(demo: DemoServer) -> None:
    ann = sign_in(demo.url, "ann")
    token = csrf(ann, "/demo/customers")
    before = latest_seq(demo, "jump-joy")
    r = ann.post(
        "/demo/customers", data={"csrf": token, "name": "Gus Green", "email": "gus@example.com"}
    )
    assert r.status_code == 303
    again = ann.post(
        "/demo/customers", data={"csrf": token, "name": "Gus", "email": "GUS@example.com"}
    )
    assert again.status_code == 422
    assert "exists already" in again.text
    bad = ann.post("/demo/customers", data={"csrf": token, "name": "", "email": "x"})
    assert bad.status_code == 422
    assert "Name is required." in bad.text

    confirmed = booking_with(demo, "jump-joy", "confirmed")
    r = ann.post(
        f"/demo/bookings/{confirmed}/payments",
        data={
            "csrf": token,
            "amount": "$1,000.50",
            "status": "failed",
            "method": "card",
            "note": "declined",
        },
    )
    assert r.status_code == 303
    r = ann.post(
        "/demo/payments",
        data={
            "csrf": token,
            "booking": str(confirmed),
            "amount": "99",
            "status": "received",
            "method": "cash",
        },
    )
    assert r.status_code == 303
    bad = ann.post(
        "/demo/payments",
        data={
            "csrf": token,
            "booking": str(confirmed),
            "amount": "-3",
            "status": "received",
            "method": "cash",
        },
    )
    assert bad.status_code == 422
    assert "positive number" in bad.text
    cancelled = booking_with(demo, "jump-joy", "cancelled")
    refused = ann.post(
        f"/demo/bookings/{cancelled}/payments",
        data={"csrf": token, "amount": "10", "status": "received", "method": "cash"},
    )
    assert refused.status_code == 409
    assert "is cancelled: payments cannot be recorded" in refused.text

    notes = demo.sql(
        "SELECT type, title FROM notifications "
        "WHERE tenant_id = 'jump-joy' AND seq > ? ORDER BY seq",
        before,
    )
    assert notes == [
        ("customer_created", "New customer: Gus Green"),
        ("payment_failed", "Payment failed: $1,000.50"),
        ("payment_received", "Payment received: $99.00"),
    ]
    seqs = [
        r[0]
        for r in demo.sql(
            "SELECT notification_seq FROM payments WHERE booking_id = ? ORDER BY id", confirmed
        )
    ]
    assert seqs[-2:] == [before + 2, before + 3]
    assert re.search(r"\$1,000\.50", ann.get("/demo/payments").text)


def counts(server: DemoServer) -> list[int]:
    tables = ("demo_users", "customers", "bookings", "payments", "notifications")
    return [int(server.sql(f"SELECT count(*) FROM {t}")[0][0]) for t in tables]


def test_seeding_is_idempotent(tmp_path: Any) -> None:
    first = start_demo(tmp_path)
    try:
        seeded = counts(first)
    finally:
        first.stop()
    assert seeded[0] == 5 and seeded[2] == 13
    second = start_demo(tmp_path)
    try:
        assert counts(second) == seeded
    finally:
        second.stop()


def test_digits_that_are_not_ascii_get_a_clear_error_not_a_500(demo: DemoServer) -> None:
    # "²".isdigit() is true, but int("²") fails: each form refuses it as bad input.
    with httpx.Client(base_url=demo.url, timeout=10) as anon:
        page = anon.get("/demo/login")
        r = anon.post("/demo/login", data={"form_token": form_token(page.text), "user": "\u00b2"})
        assert r.status_code == 422
        assert "Pick one of the demo users." in r.text
    ann = sign_in(demo.url, "ann")
    token = csrf(ann, "/demo/bookings/new")
    r = ann.post(
        "/demo/bookings",
        data={
            "csrf": token,
            "item": "castle-xl",
            "date": (date.today() + timedelta(days=3)).isoformat(),
            "start": "10:00",
            "hours": "\u00b2",
            "address": "1 Unicode Lane",
            "name": "Dee Git",
            "email": "dee@example.com",
        },
    )
    assert r.status_code == 422
    assert "Rental length is 2 to 12 hours." in r.text
    r = ann.post("/demo/payments", data={"csrf": token, "booking": "\u00b2", "amount": "10"})
    assert r.status_code == 422
    assert "Choose a booking." in r.text
