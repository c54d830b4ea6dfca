"""The bell's own behaviour on a real page: the badge, relative times, the keyboard."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import BrowserContext, Page

from tests.browser.helpers import badge_text, bell, click, sign_in, wait_unread
from tests.demo.helpers import SEEDED_UNREAD, DemoServer, api_key, publish

pytestmark = pytest.mark.browser


def mark_all_read(page: Page) -> None:
    status = page.evaluate(
        """async () => (await fetch('/v1/feed/read', {method: 'POST',
             headers: {'Content-Type': 'application/json'}, body: '{"all": true}'})).status"""
    )
    assert status == 200
    wait_unread(page, 0)


def test_badge_counts_to_nine_then_shows_nine_plus(
    demo: DemoServer, contexts: Callable[[], BrowserContext]
) -> None:
    page = sign_in(contexts(), demo.url, "lee")
    mark_all_read(page)
    assert badge_text(page) == ""
    key = api_key(demo.url, "jump-joy")
    for n in range(1, 10):
        publish(key, f"Reminder {n}", type="reminder")
    wait_unread(page, 9)
    assert badge_text(page) == "9"
    publish(key, "Reminder 10", type="reminder")
    wait_unread(page, 10)
    assert badge_text(page) == "9+"
    label = bell(page, "b.shadowRoot.querySelector('[part=button]').getAttribute('aria-label')")
    assert "10 unread" in label


def test_relative_times_stay_current(
    demo: DemoServer, contexts: Callable[[], BrowserContext]
) -> None:
    context = contexts()
    context.clock.install()  # a clock the test can move; otherwise it runs normally
    page = sign_in(context, demo.url, "lee")
    key = api_key(demo.url, "jump-joy")
    sent = publish(key, "Castle XL is back in the depot", type="system")
    click(page, "tidings-bell [part=button]")
    time_el = page.locator(f"tidings-bell [part=item][data-id='{sent['id']}'] time")
    time_el.wait_for()
    assert time_el.inner_text() == "now"
    page.clock.fast_forward("03:00")
    page.wait_for_function(
        "id => document.querySelector('tidings-bell').shadowRoot"
        ".querySelector(`[data-id='${id}'] time`).textContent === '3 minutes ago'",
        arg=sent["id"],
        timeout=3000,
    )
    page.clock.fast_forward("02:00:00")
    page.wait_for_function(
        "id => document.querySelector('tidings-bell').shadowRoot"
        ".querySelector(`[data-id='${id}'] time`).textContent === '2 hours ago'",
        arg=sent["id"],
        timeout=3000,
    )


def focused(page: Page) -> str | None:
    result = bell(
        page,
        "(() => { const a = b.shadowRoot.activeElement; "
        "return a ? (a.dataset.id ? 'item:' + a.dataset.id : a.getAttribute('part')) : null; })()",
    )
    return None if result is None else str(result)


def test_keyboard_opens_moves_closes_and_activates(
    demo: DemoServer, contexts: Callable[[], BrowserContext]
) -> None:
    page = sign_in(contexts(), demo.url, "ann")
    page.bring_to_front()
    ids = bell(page, "b.view.latest.map((n) => n.id)")
    assert len(ids) == 5
    panel = page.locator("tidings-bell [part=panel]")

    page.locator("tidings-bell [part=button]").focus()
    page.keyboard.press("Enter")
    panel.wait_for(state="visible")
    assert focused(page) == f"item:{ids[0]}"
    page.keyboard.press("ArrowDown")
    assert focused(page) == f"item:{ids[1]}"
    page.keyboard.press("ArrowDown")
    assert focused(page) == f"item:{ids[2]}"
    page.keyboard.press("ArrowUp")
    assert focused(page) == f"item:{ids[1]}"
    page.keyboard.press("End")
    assert focused(page) == f"item:{ids[-1]}"
    page.keyboard.press("Home")
    assert focused(page) == f"item:{ids[0]}"
    page.keyboard.press("Escape")
    panel.wait_for(state="hidden")
    assert focused(page) == "button"
    assert (
        bell(page, "b.shadowRoot.querySelector('[part=button]').getAttribute('aria-expanded')")
        == "false"
    )

    page.keyboard.press(" ")
    panel.wait_for(state="visible")
    page.keyboard.press("ArrowDown")
    target = bell(page, f"b.view.latest.find((n) => n.id === {ids[1]}).link")
    assert target and target.startswith("/demo/bookings/")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{demo.url}{target}")


def test_toasts_stack_at_most_three_and_can_be_dismissed(
    demo: DemoServer, contexts: Callable[[], BrowserContext]
) -> None:
    page = sign_in(contexts(), demo.url, "lee")
    key = api_key(demo.url, "jump-joy")
    sent = [publish(key, f"Toast {n}", type="reminder")["id"] for n in range(1, 5)]
    wait_unread(page, SEEDED_UNREAD + 4)
    toasts = page.locator("tidings-bell [part=toast]")
    assert toasts.count() == 3  # the oldest made room
    shown = [int(t) for t in toasts.evaluate_all("ts => ts.map((t) => t.dataset.id)")]
    assert shown == sent[1:]
    live = bell(page, "b.shadowRoot.querySelector('[part=toasts]').getAttribute('aria-live')")
    assert live == "polite"
    click(page, f"tidings-bell [part=toast][data-id='{sent[3]}'] [part=toast-close]")
    assert toasts.count() == 2
    assert bell(page, "b.unread") == SEEDED_UNREAD + 4  # dismissing is not reading


def test_the_dropdown_stays_on_a_phone_screen(
    demo: DemoServer, contexts: Callable[[], BrowserContext]
) -> None:
    page = sign_in(contexts(), demo.url, "ann")
    page.set_viewport_size({"width": 390, "height": 844})
    click(page, "tidings-bell [part=button]")
    box = page.locator("tidings-bell [part=panel]").bounding_box()
    assert box is not None
    assert box["x"] >= 0
    assert box["x"] + box["width"] <= 390
