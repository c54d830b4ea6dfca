"""A templated notification in the bell's language (issue 10 item 5), in headless Chromium
against the real demo: one publish with ``data`` and no title; the toast and the list show the
German text under ``locale="de"``, and the default (English) text for a language the type has
no template for."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page

from tests.browser.helpers import bell, click, sign_in
from tests.demo.helpers import USERS, DemoServer, api_key

pytestmark = pytest.mark.browser

TEMPLATE = {
    "default_locale": "en",
    "locales": {
        "en": {"title": "Castle booked for {{ customer }}", "body": "{{ slot }}"},
        "de": {"title": "Hüpfburg gebucht für {{ customer }}", "body": "am {{ slot }}"},
    },
}


def text(page: Page, selector: str) -> str:
    return str(bell(page, f"b.shadowRoot.querySelector({selector!r}).textContent"))


def test_the_bell_shows_a_templated_notification_in_its_locale(
    demo: DemoServer, contexts: Callable[[], BrowserContext]
) -> None:
    page = sign_in(contexts(), demo.url, "ann")  # the browser speaks en-US
    bell(page, "b.setAttribute('locale', 'de-AT')")
    tenant = api_key(demo.url, USERS["ann"])
    r = httpx.put(
        f"{demo.url}/v1/templates/l10n.check", headers=tenant.auth, json=TEMPLATE, timeout=10
    )
    assert r.status_code == 201, r.text
    r = httpx.post(
        f"{demo.url}/v1/notifications",
        headers=tenant.auth,
        json={"type": "l10n.check", "data": {"customer": "Ann", "slot": "Sa 10:00"}},
        timeout=10,
    )
    assert r.status_code == 201, r.text
    page.wait_for_selector("tidings-bell [part=toast]")
    assert text(page, "[part=toast] .title") == "Hüpfburg gebucht für Ann"
    assert text(page, "[part=toast] .body") == "am Sa 10:00"
    click(page, "tidings-bell [part=button]")
    assert text(page, "[part=item] .title") == "Hüpfburg gebucht für Ann"

    bell(page, "b.setAttribute('locale', 'fr')")  # no French template: the default's text
    page.wait_for_function(
        "document.querySelector('tidings-bell').shadowRoot"
        ".querySelector('[part=item] .title').textContent === 'Castle booked for Ann'"
    )
    assert text(page, "[part=item] .body") == "Sa 10:00"
