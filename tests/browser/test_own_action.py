"""The user's own action in the bell (issue 10): a notification whose actor is the signed-in
user arrives read in every tab of theirs — no toast, no badge — while the rest of the team is
told as usual."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import BrowserContext, Page

from tests.browser.helpers import bell, sign_in, wait_unread
from tests.demo.helpers import DemoServer, api_key, publish

pytestmark = pytest.mark.browser


def toasted(page: Page) -> list[int]:
    toasts = page.locator("tidings-bell [part=toast]")
    return [int(t) for t in toasts.evaluate_all("ts => ts.map((t) => t.dataset.id)")]


def wait_toast(page: Page, id_: int) -> None:
    page.locator(f"tidings-bell [part=toast][data-id='{id_}']").wait_for(timeout=5_000)


def test_no_toast_or_badge_in_the_actors_tab_while_a_teammate_gets_both(
    demo: DemoServer, contexts: Callable[[], BrowserContext]
) -> None:
    sam, lee = sign_in(contexts(), demo.url, "sam"), sign_in(contexts(), demo.url, "lee")
    before = {page: int(bell(page, "b.unread")) for page in (sam, lee)}
    key = api_key(demo.url, "jump-joy")
    own = publish(key, "Booking confirmed", actor={"id": "sam", "name": "Sam Shaw"})["id"]
    marker = publish(key, "After the action")["id"]  # reaches both after `own`
    wait_toast(lee, marker)
    wait_toast(sam, marker)
    assert toasted(lee) == [own, marker]
    assert toasted(sam) == [marker]
    wait_unread(lee, before[lee] + 2)
    wait_unread(sam, before[sam] + 1)  # the marker only
    item = bell(sam, f"b.shadowRoot.querySelector(\"[part=item][data-id='{own}']\") !== null")
    assert item is True  # in Sam's list, read
    assert bell(sam, f"b.view.latest.find((n) => n.id === {own}).read") is True
