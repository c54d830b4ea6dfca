"""Issue 10 item 7: the bell, the inbox and the preferences page at a phone's 390 px and a
desktop's 1280 px: no horizontal overflow, no text column under 120 px, and the dropdown shows
its five items whole."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import BrowserContext, Page

from tests.browser.helpers import click, sign_in, wait_live
from tests.browser.layout import assert_fits
from tests.demo.helpers import DemoServer, api_key, publish

pytestmark = pytest.mark.browser

SIZES = [(390, 844), (1280, 800)]


def wait_inbox(page: Page) -> None:
    page.wait_for_function(
        "(() => { const i = document.querySelector('tidings-inbox');"
        " return i && !i.loading && i.items.length > 0; })()"
    )


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_bell_inbox_and_preferences_fit(
    demo: DemoServer, contexts: Callable[[], BrowserContext], width: int, height: int
) -> None:
    # The seeded history folds into one card per booking; five news of their own (no group)
    # make the latest five five cards, so the dropdown has five to show whole.
    key = api_key(demo.url, "jump-joy")
    for n in range(5):
        publish(key, f"Weather warning {n}: wind above 20 mph, take the castles down")
    page = sign_in(contexts(), demo.url, "ann")
    page.set_viewport_size({"width": width, "height": height})

    click(page, "tidings-bell [part=button]")
    page.locator("tidings-bell [part=panel]").wait_for(state="visible")
    assert_fits(page, f"bell at {width}")
    # The latest five, each whole inside the list (no cut-off by its max height).
    boxes = page.evaluate(
        """() => { const r = document.querySelector('tidings-bell').shadowRoot;
             const list = r.querySelector('[part=list]').getBoundingClientRect();
             return { list: [list.top, list.bottom],
                      items: [...r.querySelectorAll('[part~=item]')].map((i) => {
                        const b = i.getBoundingClientRect(); return [b.top, b.bottom]; }) }; }"""
    )
    assert len(boxes["items"]) == 5
    top, bottom = boxes["list"]
    for item_top, item_bottom in boxes["items"]:
        assert top - 0.5 <= item_top and item_bottom <= bottom + 0.5, boxes
    assert bottom <= height
    page.keyboard.press("Escape")

    page.goto(f"{demo.url}/demo/notifications")
    wait_live(page)
    wait_inbox(page)
    assert_fits(page, f"inbox at {width}")

    for path in ("/demo/preferences", "/demo/preferences/business"):
        page.goto(demo.url + path)
        wait_live(page)
        assert_fits(page, f"{path} at {width}")


def test_inbox_fits_from_320px(demo: DemoServer, contexts: Callable[[], BrowserContext]) -> None:
    page = sign_in(contexts(), demo.url, "sam")
    page.set_viewport_size({"width": 320, "height": 640})
    page.goto(f"{demo.url}/demo/notifications")
    wait_inbox(page)
    assert_fits(page, "inbox at 320")
    snooze = "tidings-inbox [part~=action][data-action=snooze] >> nth=0"
    click(page, snooze)
    page.locator("tidings-inbox [part=snooze-menu]").wait_for()
    assert_fits(page, "inbox at 320 with the snooze menu open")
