"""The bell's "Enable push" control and its preferences link, in headless Chromium against the
real demo.

Headless Chromium here reaches no push service, and Playwright's contexts are incognito, where
``pushManager.subscribe`` is refused: with notifications allowed, enabling push therefore gets
through the permission, registers the demo's service worker at ``/sw.js`` with the scope ``/``
(so it controls the dashboard) and fetches the VAPID key, then stops at the ``subscribe`` stage
— or, in a browser that can subscribe, stores the subscription in tidings. The "Push on" state
needs a real subscription and is not reached here (tests/channels/test_push.py proves delivery).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page

from tests.browser.helpers import bell, click, sign_in, wait_live
from tests.demo.helpers import DemoServer, api_key, publish

pytestmark = pytest.mark.browser

PUSH = "tidings-bell [part=enable-push]"


def record_push(page: Page) -> None:
    page.evaluate(
        """() => { window.__push = [];
          document.addEventListener('tidings-push', (e) => window.__push.push({
            state: e.detail.state, stage: e.detail.error ? e.detail.error.stage : null })); }"""
    )


def push_events(page: Page) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = page.evaluate("window.__push")
    return events


def test_the_bell_offers_push_and_registers_the_worker_for_the_dashboard(
    demo: DemoServer, contexts: Callable[[], BrowserContext]
) -> None:
    # Notifications not allowed (headless answers the prompt with "denied"): "Push blocked".
    page = sign_in(contexts(), demo.url, "ann")
    click(page, "tidings-bell [part=button]")
    button = page.locator(PUSH)
    button.wait_for()
    assert button.inner_text() == "Enable push"
    assert button.get_attribute("data-state") == "off"
    assert page.locator("tidings-bell [part=preferences]").get_attribute("href") == (
        "/demo/preferences"
    )
    button.click()
    page.wait_for_selector(f"{PUSH}[data-state=denied]")
    assert button.inner_text() == "Push blocked"
    assert button.is_disabled()
    assert page.evaluate("navigator.serviceWorker.getRegistrations().then(r => r.length)") == 0

    # Allowed: the worker is registered from /sw.js with the scope "/", and controls the page.
    context = contexts()
    context.grant_permissions(["notifications"], origin=demo.url)
    page = sign_in(context, demo.url, "sam")
    record_push(page)
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    click(page, "tidings-bell [part=button]")
    page.locator(PUSH).click()
    page.wait_for_function("window.__push.some((e) => e.state === 'on' || e.state === 'error')")
    (result,) = [e for e in push_events(page) if e["state"] in ("on", "error")]
    token = page.evaluate("fetch('/demo/token').then((r) => r.json()).then((b) => b.token)")
    stored = httpx.get(
        f"{demo.url}/v1/push/subscriptions",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    ).json()["subscriptions"]
    if result["state"] == "on":  # a browser that reached its push service
        assert len(stored) == 1
        assert page.locator(PUSH).inner_text() == "Push on"
    else:  # headless, incognito: everything up to the Push API worked
        assert result["stage"] == "subscribe", result
        assert stored == []
        assert page.locator(PUSH).inner_text() == "Push failed — retry"
        assert page.locator(PUSH).is_enabled()  # one can try again
    assert f"{demo.url}/v1/push/key" in requests
    registration = page.evaluate(
        """async () => { const r = await navigator.serviceWorker.getRegistration('/demo');
             return r && { scope: r.scope, script: r.active && r.active.scriptURL }; }"""
    )
    assert registration == {"scope": f"{demo.url}/", "script": f"{demo.url}/sw.js"}
    page.wait_for_function("navigator.serviceWorker.controller !== null")


def latest_titles(page: Page) -> list[str]:
    titles: list[str] = bell(page, "b.view.latest.map((n) => n.title)")
    return titles


def test_preferences_from_the_bell_mute_a_type_but_never_a_critical_one(
    demo: DemoServer, contexts: Callable[[], BrowserContext]
) -> None:
    page = sign_in(contexts(), demo.url, "ann")
    click(page, "tidings-bell [part=button]")
    click(page, "tidings-bell [part=preferences]")
    page.wait_for_url(f"{demo.url}/demo/preferences")

    # Ann switches "New customer" and "System message" off in the app...
    page.uncheck("tr[data-type=customer_created] input[name='customer_created.in_app']")
    page.uncheck("tr[data-type=system] input[name='system.in_app']")
    page.click("form[data-prefs=mine] button[type=submit]")
    page.wait_for_selector("text=Your notification preferences are saved.")
    # ...then, as the owner, marks system messages critical for the business.
    page.click("nav >> text=Business defaults")
    page.wait_for_url(f"{demo.url}/demo/preferences/business")
    page.check("input[name='system.critical']")
    page.click("form[data-prefs=business] button[type=submit]")
    page.wait_for_selector("text=The business's notification defaults are saved.")
    page.goto(f"{demo.url}/demo/preferences")
    assert page.locator("tr[data-type=system] input[data-locked]").is_checked()
    assert not page.locator("input[name='customer_created.in_app']").is_checked()

    wait_live(page)
    unread = bell(page, "b.unread")
    key = api_key(demo.url, "jump-joy")
    muted = publish(key, "Muted: Dee Livery signed up", type="customer_created")
    critical = publish(key, "Critical: card terminal offline", type="system")
    page.wait_for_function(
        "id => document.querySelector('tidings-bell').view.latest.some((n) => n.id === id)",
        arg=critical["id"],
    )
    titles = latest_titles(page)
    assert "Critical: card terminal offline" in titles
    assert "Muted: Dee Livery signed up" not in titles
    assert bell(page, "b.unread") == unread + 1
    toasts = bell(
        page, "[...b.shadowRoot.querySelectorAll('[part=toast]')].map((t) => +t.dataset.id)"
    )
    assert critical["id"] in toasts and muted["id"] not in toasts

    page.reload()  # the snapshot on a fresh stream agrees
    wait_live(page)
    titles = latest_titles(page)
    assert "Critical: card terminal offline" in titles
    assert "Muted: Dee Livery signed up" not in titles

    # "View all" → a notification's delivery details.
    page.goto(f"{demo.url}/demo/notifications")
    click(page, f"tidings-inbox [part~=action][data-id='{critical['id']}'][data-action=details]")
    page.wait_for_url(f"{demo.url}/demo/notifications/{critical['id']}")
    assert page.locator("h1").inner_text() == "Critical: card terminal offline"
    click(page, "[data-deliveries] > summary")  # "Where it was sent" opens on demand
    assert page.locator("[data-summary-empty]").is_visible()  # no device, no digest
