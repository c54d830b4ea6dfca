"""One icon per notification type on every page, and the bell's styles built once per page.

The bell and <tidings-inbox> draw a type's icon from the same module (``tidings-dom.js``;
tested in test_inbox.py); every bell on a page adopts one shared constructable stylesheet
(``tidings-bell-styles.js``) instead of carrying its own ``<style>``.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import BrowserContext

from tests.browser.helpers import bell, sign_in
from tests.demo.helpers import DemoServer, api_key, publish

pytestmark = pytest.mark.browser


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
