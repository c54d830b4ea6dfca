"""The bell in the page's language, in headless Chromium against the real demo: `locale="de"`
turns every string German (heading, buttons, tooltips, aria labels, type labels, toasts,
relative times), a host's `setMessages()` override wins, and without the attribute the
browser's language picks the catalogue."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Browser, BrowserContext, Page

from tests.browser.helpers import bell, click, sign_in
from tests.demo.helpers import USERS, DemoServer, api_key, publish

pytestmark = pytest.mark.browser


def text(page: Page, selector: str) -> str:
    return str(bell(page, f"b.shadowRoot.querySelector({selector!r}).textContent"))


def attr(page: Page, selector: str, name: str) -> str:
    return str(bell(page, f"b.shadowRoot.querySelector({selector!r}).getAttribute({name!r})"))


def test_locale_de_shows_german_and_a_host_override_wins(
    demo: DemoServer, contexts: Callable[[], BrowserContext]
) -> None:
    page = sign_in(contexts(), demo.url, "ann")  # the browser speaks en-US
    assert text(page, ".heading") == "Notifications"
    assert text(page, "[part=mark-all]") == "Mark all as read"

    bell(page, "b.setAttribute('locale', 'de')")
    click(page, "tidings-bell [part=button]")
    assert text(page, ".heading") == "Benachrichtigungen"
    assert text(page, "[part=mark-all]") == "Alle als gelesen markieren"
    assert text(page, "[part=view-all]") == "Alle anzeigen"
    assert text(page, "[part=preferences]") == "Einstellungen"
    assert attr(page, "[part=dot]", "title") == "Live"
    assert attr(page, "[part=button]", "aria-label").startswith("Benachrichtigungen")

    tenant = api_key(demo.url, USERS["ann"])
    publish(tenant, "Hüpfburg gebucht", type="booking_created")
    page.wait_for_selector("tidings-bell [part=toast]")
    assert attr(page, "[part=toast] .icon", "title") == "Neue Buchung"
    assert attr(page, "[part=toast-close]", "aria-label") == "Schließen"
    first = "[part=item] .icon"
    assert attr(page, first, "title") == "Neue Buchung"
    assert text(page, "[part=item] time") in ("jetzt", "vor 0 Sekunden")  # Intl in German

    bell(page, "b.setMessages({ markAll: 'Alles erledigt', 'type.booking_created': 'Gebucht!' })")
    assert text(page, "[part=mark-all]") == "Alles erledigt"
    assert attr(page, first, "title") == "Gebucht!"
    assert text(page, "[part=view-all]") == "Alle anzeigen"  # the rest stays German
    assert bell(page, "b.messages.markAll") == "Alles erledigt"


def test_without_the_attribute_the_browser_language_picks(
    demo: DemoServer, browser: Browser
) -> None:
    context = browser.new_context(locale="es-ES", bypass_csp=True)
    try:
        context.set_default_timeout(10_000)
        page = sign_in(context, demo.url, "ann")
        assert bell(page, "navigator.language") == "es-ES"
        assert text(page, ".heading") == "Notificaciones"
        assert text(page, "[part=mark-all]") == "Marcar todo como leído"
    finally:
        context.close()
