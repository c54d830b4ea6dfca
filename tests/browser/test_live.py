"""Live delivery in the browser: toasts and badges across tabs, one shared stream per browser,
read state in sync across tabs and browsers."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import date, timedelta

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page

from tests.browser.helpers import bell, click, open_tab, sign_in, wait_unread
from tests.demo.helpers import SEEDED_UNREAD, DemoServer, api_key, publish

pytestmark = pytest.mark.browser


def request_booking(page: Page, url: str, tenant: str, name: str) -> None:
    """Fill in and send the public booking widget, as a customer would."""
    page.goto(f"{url}/book/{tenant}")
    page.check("input[name=item][value=castle-xl]")
    page.fill("input[name=date]", (date.today() + timedelta(days=9)).isoformat())
    page.fill("input[name=start]", "10:00")
    page.fill("input[name=hours]", "4")
    page.fill("input[name=address]", "1 Party Lane, Austin")
    page.fill("input[name=name]", name)
    page.fill("input[name=email]", f"{name.split()[0].lower()}@example.com")


def streams_open(url: str) -> int:
    text = httpx.get(f"{url}/metrics", timeout=5).text
    match = re.search(r"^tidings_streams_open (\S+)$", text, re.M)
    assert match, text
    return int(float(match.group(1)))


def test_widget_booking_reaches_both_tabs_within_a_second(
    demo: DemoServer, contexts: Callable[[], BrowserContext]
) -> None:
    staff = contexts()
    tab1 = sign_in(staff, demo.url, "ann")
    tab2 = open_tab(staff, demo.url, "/demo/bookings")
    for tab in (tab1, tab2):
        assert bell(tab, "b.unread") == SEEDED_UNREAD

    for tab in (tab1, tab2):  # when the bell has counted it up and is about to toast it
        tab.evaluate(
            """() => document.addEventListener('tidings-notification', () => {
                 window.__arrived = Date.now();
                 window.__unread = document.querySelector('tidings-bell').unread;
               }, {once: true})"""
        )
    customer = contexts().new_page()
    request_booking(customer, demo.url, "jump-joy", "Rosa Diaz")
    submitted = time.time() * 1000
    click(customer, "button[type=submit]")
    for tab in (tab1, tab2):
        tab.wait_for_selector("tidings-bell [part=toast]", timeout=5000)
        wait_unread(tab, SEEDED_UNREAD + 1)
    # Measured in the pages (Playwright's own polling is slow in background tabs).
    delays = [tab.evaluate("window.__arrived") - submitted for tab in (tab1, tab2)]
    print("widget → toast and badge in both tabs (ms):", [round(d) for d in delays])
    assert all(0 < d < 1000 for d in delays), delays
    assert [tab.evaluate("window.__unread") for tab in (tab1, tab2)] == [SEEDED_UNREAD + 1] * 2

    customer.wait_for_url(f"{demo.url}/book/jump-joy/thanks")
    for tab in (tab1, tab2):
        toast = tab.locator("tidings-bell [part=toast]")
        assert "New booking from Rosa Diaz" in toast.inner_text()
        assert bell(tab, "b.shadowRoot.querySelector('[part=badge]').textContent") == "4"
    # The page that lists bookings shows the request without a reload (static/demo.js).
    tab2.locator("[data-live=bookings-list] a.row-link", has_text="Rosa Diaz").wait_for()


def test_seven_tabs_share_one_stream_and_all_get_the_notification(
    demo: DemoServer, contexts: Callable[[], BrowserContext]
) -> None:
    context = contexts()
    tabs = [sign_in(context, demo.url, "sam")]
    tabs += [open_tab(context, demo.url) for _ in range(6)]
    assert streams_open(demo.url) == 1
    assert demo.service.hub.stream_count == 1
    assert sum(bool(bell(t, "b.client.isLeader")) for t in tabs) == 1

    key = api_key(demo.url, "jump-joy")
    sent = publish(key, "Seven tabs, one stream", type="reminder")
    for tab in tabs:
        wait_unread(tab, SEEDED_UNREAD + 1, timeout=3000)
        ids = bell(tab, "b.view.latest.map((n) => n.id)")
        assert ids[0] == sent["id"]
    assert streams_open(demo.url) == 1


def test_leader_tab_closes_and_another_takes_over(
    demo: DemoServer, contexts: Callable[[], BrowserContext]
) -> None:
    context = contexts()
    tabs = [sign_in(context, demo.url, "sam"), open_tab(context, demo.url)]
    leader = next(t for t in tabs if bell(t, "b.client.isLeader"))
    follower = next(t for t in tabs if t is not leader)
    leader.close()
    follower.wait_for_function(
        "document.querySelector('tidings-bell').client.isLeader", timeout=3000
    )
    key = api_key(demo.url, "jump-joy")
    publish(key, "After the leader left")
    wait_unread(follower, SEEDED_UNREAD + 1, timeout=5000)
    deadline = time.monotonic() + 3
    while streams_open(demo.url) != 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert streams_open(demo.url) == 1


def test_mark_all_read_clears_other_tabs_and_browsers_of_the_same_user_only(
    demo: DemoServer, contexts: Callable[[], BrowserContext]
) -> None:
    laptop = contexts()
    tab1 = sign_in(laptop, demo.url, "ann")
    tab2 = open_tab(laptop, demo.url)
    phone = sign_in(contexts(), demo.url, "ann")
    colleague = sign_in(contexts(), demo.url, "sam")

    key = api_key(demo.url, "jump-joy")
    publish(key, "Payment received: $120.00", type="payment_received")
    publish(key, "Booking #12 confirmed", type="booking_confirmed")
    for page in (tab1, tab2, phone, colleague):
        wait_unread(page, SEEDED_UNREAD + 2)

    click(tab1, "tidings-bell [part=button]")
    click(tab1, "tidings-bell [part=mark-all]")
    for page in (tab1, tab2, phone):
        wait_unread(page, 0, timeout=3000)
        assert bell(page, "b.shadowRoot.querySelector('[part=badge]').hidden") is True
        assert bell(page, "b.view.latest.every((n) => n.read)") is True
    colleague.wait_for_timeout(500)
    assert bell(colleague, "b.unread") == SEEDED_UNREAD + 2
    assert bell(colleague, "b.shadowRoot.querySelector('[part=badge]').textContent") == "5"
