"""The original booking dashboard's handler, unchanged, on ``/sse/notifications`` in Chromium.

The page runs the handler exactly as docs/embedding.md shows it (``eventSource.onmessage``,
``JSON.parse``, ``connected``/``ping`` as control messages, everything else unshifted and
toasted), from another origin than tidings. The booking backend's broadcast shape arrives as
it was posted; read-state events never reach the handler; after a tidings restart the
browser's own reconnect (``Last-Event-ID``) delivers what was missed, once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.responses import HTMLResponse
from playwright.sync_api import BrowserContext, Page

from tests.browser.hostapp import EMBEDDING, HostServer, PortServer, docs_host_app
from tests.demo.helpers import publish_offline
from tests.support import Tenant, create_tenant, free_port, make_settings

pytestmark = pytest.mark.browser

_HANDLER = re.compile(r"```js\n(// the booking dashboard's composable.*?)```", re.DOTALL)


def handler_source() -> str:
    match = _HANDLER.search(EMBEDDING.read_text())
    assert match, "docs/embedding.md has no dashboard handler block"
    return match.group(1)


def dashboard_page(tidings_url: str) -> str:
    return f"""<!doctype html>
<title>Bookings</title>
<script type="module">
const TIDINGS_URL = {tidings_url!r};
const token = (await (await fetch('/api/tidings-token')).json()).token;
const notifications = {{ value: [] }};
const toasts = [];
const toast = (title, message) => toasts.push({{ title, message }});
Object.assign(window, {{ notifications, toasts, messages: [] }});
{handler_source()}
window.eventSource = eventSource;
eventSource.addEventListener('message', (e) => window.messages.push(JSON.parse(e.data)));
</script>
"""


class Setup:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.host_port = free_port()
        self.settings = make_settings(
            str(tmp), cors_origins=f"http://127.0.0.1:{self.host_port}", keepalive=1.0
        )
        self.tidings = PortServer(self.settings, free_port()).start()
        self.tenant: Tenant = create_tenant(self.tidings.url, "jump-joy")
        app = docs_host_app(tmp, self.tidings.url, self.tenant.key).app
        page = dashboard_page(self.tidings.url)
        app.add_api_route("/dashboard", lambda: HTMLResponse(page), methods=["GET"])
        self.host = HostServer(app, self.host_port).start()

    def restart(self, down: Callable[[], Any]) -> None:
        self.tidings.stop()
        down()
        self.tidings = PortServer(self.settings, self.tidings.port).start()

    def stop(self) -> None:
        self.host.stop()
        self.tidings.stop()

    def broadcast(self, **notification: Any) -> int:
        """What the booking backend's afterChange hooks post."""
        r = httpx.post(
            f"{self.tidings.url}/api/sse/broadcast",
            json={"tenantId": self.tenant.id, "notification": notification},
            headers=self.tenant.auth,
            timeout=10,
        )
        assert r.status_code == 200, r.text
        seq: int = r.json()["id"]
        return seq


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    made = Setup(tmp_path)
    try:
        yield made
    finally:
        made.stop()


def wait_count(page: Page, count: int, timeout: float = 10_000) -> None:
    page.wait_for_function(
        "n => window.notifications?.value.length >= n", arg=count, timeout=timeout
    )


def titles(page: Page) -> list[str]:
    got: list[str] = page.evaluate("window.notifications.value.map((n) => n.title)")
    return got


@pytest.mark.timeout(90)
def test_the_dashboards_handler_works_unchanged(
    setup: Setup, contexts: Callable[[], BrowserContext]
) -> None:
    page = contexts().new_page()
    page.goto(f"{setup.host.url}/dashboard")
    page.wait_for_function("window.messages?.[0]?.type === 'connected'", timeout=15_000)

    first = setup.broadcast(
        type="booking_created",
        title="New booking",
        message="Castle XL, Saturday 10:00",
        link="/bookings/7",
        userId="ann",
        bookingId=7,
    )
    wait_count(page, 1)
    got = page.evaluate("window.notifications.value[0]")
    assert got["id"] == first
    assert (got["type"], got["title"], got["message"]) == (
        "booking_created",
        "New booking",
        "Castle XL, Saturday 10:00",
    )
    assert got["link"] == "/bookings/7"
    assert got["bookingId"] == 7
    assert page.evaluate("window.toasts") == [
        {"title": "New booking", "message": "Castle XL, Saturday 10:00"}
    ]
    page.wait_for_function(
        "window.messages.some((m) => m.type === 'ping')", timeout=5_000
    )  # the keep-alive, ignored by the handler

    # A mark-read elsewhere makes a `read` event on /v1/stream; the dashboard never sees one.
    token = setup.tenant.token("ann")
    r = httpx.post(
        f"{setup.tidings.url}/v1/feed/read",
        json={"all": True},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert r.status_code == 200
    setup.broadcast(type="system", title="marker")
    wait_count(page, 2)
    assert titles(page) == ["marker", "New booking"]

    # tidings restarts; the browser's own reconnect sends Last-Event-ID and gets the missed one.
    setup.restart(lambda: publish_offline(setup.settings, "jump-joy", ["While away"]))
    wait_count(page, 3, timeout=20_000)
    setup.broadcast(type="payment_received", title="Paid", message="$120.00")
    wait_count(page, 4)
    assert titles(page) == ["Paid", "While away", "marker", "New booking"]
    ids = page.evaluate("window.notifications.value.map((n) => n.id)")
    assert ids == sorted(ids, reverse=True)
    connected = page.evaluate("window.messages.filter((m) => m.type === 'connected').length")
    assert connected == 2
