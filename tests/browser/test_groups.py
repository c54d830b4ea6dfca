"""Collapse keys in the bell (issue 10 item 3): one card per group with the newest item's text
and "+N earlier" that expands; reading the card reads the whole group, in every tab."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import BrowserContext

from tests.browser.helpers import bell, click, open_tab, sign_in, wait_unread
from tests.demo.helpers import DemoServer, api_key, publish

pytestmark = pytest.mark.browser

CARD = "tidings-bell [part=list] > li[data-group='booking:99']"


def test_one_card_per_group_expands_and_reads_the_group(
    demo: DemoServer, contexts: Callable[[], BrowserContext]
) -> None:
    context = contexts()
    page = sign_in(context, demo.url, "sam")
    other = open_tab(context, demo.url)
    before = int(bell(page, "b.unread"))
    key = api_key(demo.url, "jump-joy")
    ids = [
        publish(key, title, group="booking:99")["id"]
        for title in ("Booking #99 created", "Booking #99 confirmed", "Booking #99 paid")
    ]
    alone = publish(key, "Not grouped")["id"]
    wait_unread(page, before + 4)
    click(page, "tidings-bell >> [part=button]")
    card = page.locator(CARD)
    card.wait_for(timeout=5_000)
    assert page.locator("tidings-bell [part=list] > li[data-group='booking:99']").count() == 1
    head = card.locator("> [part~=item]")
    assert head.get_attribute("data-id") == str(ids[-1])
    assert head.get_attribute("data-unread") == "true"
    assert "Booking #99 paid" in head.inner_text()
    more = card.locator("> [part~=earlier]")
    assert more.inner_text() == "+2 earlier"
    assert more.get_attribute("aria-expanded") == "false"
    more.click()
    earlier = card.locator("[part~=earlier-list] [part~=item]")
    earlier.first.wait_for(timeout=5_000)
    assert [earlier.nth(i).get_attribute("data-id") for i in range(2)] == [
        str(ids[1]),
        str(ids[0]),
    ]
    assert card.locator("> [part~=earlier]").get_attribute("aria-expanded") == "true"

    # Reading the card reads the group: three items off the count, here and in the other tab.
    head.click()
    wait_unread(page, before + 1)
    wait_unread(other, before + 1)
    reads = f"b.view.latest.filter((n) => {ids}.includes(n.id)).map((n) => n.read)"
    assert bell(page, reads) == [True, True, True]
    assert bell(other, reads) == [True, True, True]
    assert bell(page, f"b.view.latest.find((n) => n.id === {alone}).read") is False
