"""One icon per notification type on every page, and the bell's styles built once per page.

The bell's list and the demo's "View all" page draw a type's icon from the same module
(``tidings-dom.js``); every bell on a page adopts one shared constructable stylesheet
(``tidings-bell-styles.js``) instead of carrying its own ``<style>``.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import BrowserContext

from tests.browser.helpers import bell, sign_in
from tests.demo.helpers import DemoServer, api_key, publish

pytestmark = pytest.mark.browser

TYPES = {
    "booking_cancelled": "calendar-x",
    "payment_received": "credit-card",
    "customer_created": "user-plus",
    "reminder": "clock",
    "system": "info",
}


def test_the_history_page_shows_the_bells_icon_for_each_type(
    demo: DemoServer, contexts: Callable[[], BrowserContext]
) -> None:
    page = sign_in(contexts(), demo.url, "sam")
    page.goto(f"{demo.url}/demo/notifications")
    page.wait_for_selector("[data-list][aria-busy=false]")
    key = api_key(demo.url, "jump-joy")
    sent = {publish(key, f"Icon of {t}", type=t)["id"]: t for t in TYPES}
    last = max(sent)
    page.wait_for_function(
        "id => document.querySelector('tidings-bell').view.latest.some((n) => n.id === id)",
        arg=last,
    )
    page.wait_for_selector(f".feed-item[data-id='{last}']")
    for id_, type_ in sent.items():
        in_bell = bell(
            page,
            f"(i => i && [i.dataset.icon, i.innerHTML])("
            f"b.shadowRoot.querySelector('[part=item][data-id=\"{id_}\"] .icon'))",
        )
        on_page = page.evaluate(
            "id => (i => i && [i.dataset.icon, i.innerHTML])("
            "document.querySelector(`.feed-item[data-id='${id}'] .feed-icon`))",
            id_,
        )
        assert in_bell == on_page, type_
        assert on_page[0] == TYPES[type_]


def test_every_bell_adopts_one_stylesheet(
    demo: DemoServer, contexts: Callable[[], BrowserContext]
) -> None:
    page = sign_in(contexts(), demo.url, "sam")
    shared = bell(
        page,
        """(() => { const other = document.createElement('tidings-bell');
            const [mine, theirs] = [b, other].map((x) => x.shadowRoot.adoptedStyleSheets);
            return mine.length === 1 && theirs.length === 1 && mine[0] === theirs[0]; })()""",
    )
    assert shared is True
    assert bell(page, "b.shadowRoot.querySelectorAll('style').length") == 0
    # ...and it applies: the panel is positioned, the badge takes the host's colour.
    assert bell(page, "getComputedStyle(b.shadowRoot.querySelector('[part=panel]')).position") == (
        "absolute"
    )
    assert bell(
        page, "getComputedStyle(b.shadowRoot.querySelector('[part=button]')).borderRadius"
    ) == ("999px")


def test_the_bell_shows_its_clients_view(
    demo: DemoServer, contexts: Callable[[], BrowserContext]
) -> None:
    """One owner: the bell renders connect()'s view object, it keeps no copy of its own."""
    page = sign_in(contexts(), demo.url, "sam")
    assert bell(page, "b.view === b.client.view") is True
    sent = publish(api_key(demo.url, "jump-joy"), "One view", type="reminder")
    page.wait_for_function(
        "id => document.querySelector('tidings-bell').client.view.latest[0].id === id",
        arg=sent["id"],
    )
    assert bell(page, "b.view === b.client.view && b.unread === b.client.unread.count") is True
    bell(page, "b.shadowRoot.querySelector('[part=mark-all]').click()")
    assert bell(page, "[b.view === b.client.view, b.unread]") == [True, 0]  # at once
