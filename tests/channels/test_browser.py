"""The browser side of Web Push in headless Chromium: the service worker registers, the page's
subscribe flow runs up to the Push API, a push shows the right notification, a click opens
its link.

Headless Chromium here cannot reach a real push service (no network; Playwright's default
contexts are incognito, where Chrome has no Push API at all), so ``pushManager.subscribe``
cannot complete: the test uses a persistent (non-incognito) profile and asserts that
``enablePush`` got through support check, permission, service worker registration and the
VAPID key fetch and stopped at the ``subscribe`` stage — or, where the browser can reach its
push service, that the subscription reached tidings. A push is then injected with the DevTools
protocol (``ServiceWorker.deliverPushMessage``, a trusted push event) to exercise ``sw.js``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page, Worker, sync_playwright

from tests.channels.conftest import bearer, channel_settings, start_server, token
from tests.support import ServerThread, create_tenant, require_binary

pytestmark = pytest.mark.browser

ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PAGE = """<!doctype html><html><body>
<tidings-push-button></tidings-push-button>
<script type="module">
  import * as push from '/static/tidings-push.js';
  window.push = push;
  window.ready = true;
</script></body></html>"""

ENABLE = """async (token) => {
  try {
    const done = await window.push.enablePush({ token, timeoutMs: 1500 });
    return { ok: true, id: done.id };
  } catch (error) {
    return { ok: false, stage: error.stage, message: String(error.message) };
  }
}"""

SPY = """() => {
  self.__shown = [];
  self.__opened = [];
  const show = self.registration.showNotification.bind(self.registration);
  self.registration.showNotification = (title, options) => {
    self.__shown.push({ title, options });
    return show(title, options);
  };
  self.clients.openWindow = async (url) => { self.__opened.push(url); return null; };
}"""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerThread]:
    srv = start_server(channel_settings(tmp_path))
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def context(tmp_path: Path) -> Iterator[BrowserContext]:
    path = require_binary("chromium", "/usr/bin/chromium")
    with sync_playwright() as playwright:
        ctx = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=path, headless=True, args=ARGS
        )
        ctx.set_default_timeout(10_000)
        try:
            yield ctx
        finally:
            ctx.close()


def open_page(context: BrowserContext, server: ServerThread) -> Page:
    page = context.pages[0] if context.pages else context.new_page()
    page.route(
        f"{server.url}/push-test.html",
        lambda route: route.fulfill(status=200, content_type="text/html", body=PAGE),
    )
    page.goto(f"{server.url}/push-test.html")
    page.wait_for_function("window.ready === true")
    return page


def wait_for(check: Any, timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_permission_denied_stops_before_the_service_worker(
    context: BrowserContext, server: ServerThread
) -> None:
    page = open_page(context, server)  # no permission granted: headless answers "denied"
    button = page.locator("tidings-push-button [part=button]")
    assert button.get_attribute("data-state") == "off"
    assert button.text_content() == "Enable push"
    button.click()
    page.wait_for_function(
        "document.querySelector('tidings-push-button').shadowRoot"
        ".querySelector('[part=button]').dataset.state === 'denied'"
    )
    assert button.text_content() == "Push blocked"
    assert page.evaluate("navigator.serviceWorker.getRegistrations().then(r => r.length)") == 0


def test_subscribe_flow_and_the_service_worker(
    context: BrowserContext, server: ServerThread
) -> None:
    tenant = create_tenant(server.url, "jump-joy")
    ann = token(tenant, "ann")
    context.grant_permissions(["notifications"], origin=server.url)
    page = open_page(context, server)
    cdp = context.new_cdp_session(page)
    registrations: list[dict[str, Any]] = []
    cdp.on(
        "ServiceWorker.workerRegistrationUpdated",
        lambda event: registrations.extend(event["registrations"]),
    )
    cdp.send("ServiceWorker.enable")
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))

    assert page.evaluate("window.push.pushSupported()") is True
    assert page.evaluate("Notification.permission") == "granted"
    result = page.evaluate(ENABLE, ann)
    listed = httpx.get(f"{server.url}/v1/push/subscriptions", headers=bearer(ann), timeout=10)
    if result["ok"]:  # a browser that reached its push service: tidings has the subscription
        assert [s["id"] for s in listed.json()["subscriptions"]] == [result["id"]]
    else:  # headless without a push service: everything up to the Push API worked
        assert result["stage"] == "subscribe", result
        assert listed.json()["subscriptions"] == []
    assert f"{server.url}/v1/push/key" in requests
    registration = page.evaluate("""async () => {
        const r = await navigator.serviceWorker.getRegistration('/static/');
        return r && { active: r.active && r.active.scriptURL, push: 'pushManager' in r };
    }""")
    assert registration == {"active": f"{server.url}/static/sw.js", "push": True}

    worker: Worker = wait_for(lambda: context.service_workers and context.service_workers[0])
    worker.evaluate(SPY)
    registration_id = wait_for(lambda: registrations and registrations[-1]["registrationId"])
    message = {
        "id": 7,
        "type": "booking_cancelled",
        "title": "Booking #7 cancelled",
        "body": "Castle XL",
        "url": "/bookings/7",
        "tag": "tidings:jump-joy:7",
        "created_at": "2026-11-25T18:00:00.000000Z",
    }
    for data in (message, {**message, "tag": "tidings:jump-joy:8", "url": "javascript:alert(1)"}):
        cdp.send(
            "ServiceWorker.deliverPushMessage",
            {"origin": server.url, "registrationId": registration_id, "data": json.dumps(data)},
        )
    shown = wait_for(lambda: (s := worker.evaluate("() => self.__shown")) and len(s) == 2 and s)
    first, second = shown
    assert first["title"] == "Booking #7 cancelled"
    assert first["options"]["body"] == "Castle XL"
    assert first["options"]["tag"] == "tidings:jump-joy:7"
    assert first["options"]["data"]["url"] == f"{server.url}/bookings/7"
    assert first["options"]["timestamp"] == 1795629600000
    assert second["options"]["data"]["url"] == f"{server.url}/"  # never a javascript: URL

    # A click on the notification opens its link (openWindow recorded by the spy).
    worker.evaluate("""async () => {
        await self.registration.showNotification('Booking #7 cancelled',
            { tag: 'click-test', data: { url: self.location.origin + '/bookings/7' } });
        const [shown] = await self.registration.getNotifications({ tag: 'click-test' });
        try {
            self.dispatchEvent(new NotificationEvent('notificationclick', { notification: shown }));
        } catch (error) { /* a synthetic event may not extend its lifetime: fine here */ }
    }""")
    opened = wait_for(lambda: worker.evaluate("() => self.__opened"))
    assert opened == [f"{server.url}/bookings/7"]
