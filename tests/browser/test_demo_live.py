"""The demo is live all over (issue 10 item 6): a change made in one browser refreshes the
dashboard's figures and schedule, a booking's page and the lists, in another — without a reload and
without a banner — and cancelling asks first."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from contextlib import closing
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import BrowserContext, Page

from tests.browser.helpers import click, sign_in, wait_live
from tests.demo.helpers import DemoServer, csrf
from tests.demo.helpers import sign_in as http_sign_in

pytestmark = pytest.mark.browser

AUSTIN = ZoneInfo("America/Chicago")  # Jump Joy's time zone (seeded)


def figure(page: Page, label: str) -> int:
    stat = page.locator("[data-live=figures] .stat", has_text=label)
    return int(stat.locator(".stat-value").inner_text())


def mark_no_reload(page: Page) -> None:
    """A value that only survives while the page is not reloaded."""
    page.evaluate("() => { window.__sameDocument = true; }")


def same_document(page: Page) -> bool:
    return bool(page.evaluate("() => window.__sameDocument === true"))


def todays_confirmed(demo: DemoServer) -> int:
    today = datetime.now(AUSTIN).date().isoformat()
    rows = demo.sql(
        "SELECT id FROM bookings WHERE tenant_id = 'jump-joy' AND status = 'confirmed' "
        "AND event_date = ? ORDER BY start_time DESC",
        today,
    )
    assert rows, "the seed puts confirmed bookings on today's schedule"
    return int(rows[0][0])


def test_a_cancellation_in_one_browser_updates_the_dashboard_in_another(
    demo: DemoServer, contexts: Callable[[], BrowserContext]
) -> None:
    booking = todays_confirmed(demo)
    owner = sign_in(contexts(), demo.url, "ann")
    assert owner.locator(".live-banner").count() == 0
    row = owner.locator(f'[data-live=today] li:has(a[href="/demo/bookings/{booking}"])')
    assert row.locator(".pill-confirmed").count() == 1
    week = figure(owner, "Next 7 days")
    mark_no_reload(owner)

    staff = sign_in(contexts(), demo.url, "sam")
    staff.goto(f"{demo.url}/demo/bookings/{booking}")
    wait_live(staff)
    # "Cancel booking…" only asks; "Keep it" leaves the booking as it was.
    click(staff, "summary[data-move=cancel]")
    staff.locator("[data-confirm=cancel] .confirm-pop").wait_for()
    click(staff, "[data-confirm-no]")
    assert staff.locator("details[data-confirm=cancel]").get_attribute("open") is None
    assert demo.sql("SELECT status FROM bookings WHERE id = ?", booking) == [("confirmed",)]

    click(staff, "summary[data-move=cancel]")
    started = time.monotonic()
    click(staff, "[data-confirm-yes]")
    staff.wait_for_url(f"{demo.url}/demo/bookings/{booking}")
    row.locator(".pill-cancelled").wait_for(timeout=5_000)
    print(f"cancel → owner's schedule updated in {1000 * (time.monotonic() - started):.0f} ms")
    assert figure(owner, "Next 7 days") == week - 1
    assert same_document(owner), "the dashboard was not reloaded"
    assert owner.locator(".live-banner").count() == 0


def test_a_booking_page_follows_a_colleagues_payment_and_keeps_what_is_typed(
    demo: DemoServer, contexts: Callable[[], BrowserContext]
) -> None:
    booking = todays_confirmed(demo)
    owner = sign_in(contexts(), demo.url, "ann")
    owner.goto(f"{demo.url}/demo/bookings/{booking}")
    wait_live(owner)
    owner.fill("#p-note", "half-typed by Ann")
    mark_no_reload(owner)
    rows = owner.locator("[data-live=booking-payments] tbody tr").count()

    staff = sign_in(contexts(), demo.url, "lee")
    staff.goto(f"{demo.url}/demo/bookings/{booking}")
    staff.fill("#p-amount", "50")
    staff.select_option("#p-method", "cash")
    click(staff, "button[name=status][value=received]")
    staff.wait_for_url(f"{demo.url}/demo/bookings/{booking}")

    payments = owner.locator("[data-live=booking-payments] tbody tr")
    payments.nth(rows).wait_for(timeout=5_000)
    assert "$50.00" in payments.first.inner_text()
    assert "Lee Park" in payments.first.inner_text()
    assert re.search(
        r"\$50\.00 received", owner.locator("[data-live=booking-details]").inner_text()
    )
    assert owner.input_value("#p-note") == "half-typed by Ann"  # the form was left alone
    assert same_document(owner)


def test_the_cancel_question_fits_a_phone(
    demo: DemoServer, contexts: Callable[[], BrowserContext]
) -> None:
    context = contexts()
    page = sign_in(context, demo.url, "ann")
    page.set_viewport_size({"width": 390, "height": 844})
    booking = todays_confirmed(demo)
    page.goto(f"{demo.url}/demo/bookings/{booking}")
    click(page, "summary[data-move=cancel]")
    pop = page.locator("[data-confirm=cancel] .confirm-pop")
    pop.wait_for()
    box = pop.bounding_box()
    assert box is not None
    assert box["x"] >= 0
    assert box["x"] + box["width"] <= 390
    assert page.evaluate("document.documentElement.scrollWidth") <= 390


def test_the_customers_list_shows_a_colleagues_new_customer(
    demo: DemoServer, contexts: Callable[[], BrowserContext]
) -> None:
    owner = sign_in(contexts(), demo.url, "ann")
    owner.goto(f"{demo.url}/demo/customers")
    wait_live(owner)
    mark_no_reload(owner)
    with closing(http_sign_in(demo.url, "sam")) as sam:
        r = sam.post(
            "/demo/customers",
            data={
                "csrf": csrf(sam, "/demo/customers"),
                "name": "Nia Newcomer",
                "email": "nia@example.com",
            },
        )
        assert r.status_code == 303
    owner.locator("[data-live=customers-list] tr", has_text="Nia Newcomer").wait_for(timeout=5_000)
    assert same_document(owner)
