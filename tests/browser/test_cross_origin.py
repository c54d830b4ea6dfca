"""docs/embedding.md's quick start, as written, in Chromium: the bell on another origin.

tidings runs with ``TIDINGS_CORS_ORIGINS`` (read from the environment, as ``tidings serve``
reads it) set to the host's origin, on the edge protocol as ``tidings serve`` runs; the host
app is the docs' ``host.py`` on a second loopback port, with ``token-url`` on its own origin.
The bell goes live, counts a publish, marks all read, and resumes after tidings restarts (what
was published while it was down arrives once). (``tidings serve`` refusing a bad value is
tested in tests/core/test_cors.py; here tidings runs in-process to keep the test fast.)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page

from tests.browser.helpers import (
    badge_text,
    bell,
    click,
    record_events,
    wait_live,
    wait_unread,
)
from tests.browser.hostapp import HostServer, PortServer, docs_host_app
from tests.demo.helpers import publish_offline
from tests.support import create_tenant, free_port, make_settings

pytestmark = pytest.mark.browser


class Setup:
    def __init__(self, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.workdir = workdir
        self.host_port = free_port()
        # Step 1 of the quick start: tidings allowing the host's origin, a tenant, a key.
        monkeypatch.setenv("TIDINGS_CORS_ORIGINS", f"http://127.0.0.1:{self.host_port}")
        self.settings = make_settings(str(workdir))
        self.tidings = PortServer(self.settings, free_port()).start()
        self.key = create_tenant(self.tidings.url, "jump-joy").key
        # Step 2: the docs' host.py on the host's origin.
        app = docs_host_app(workdir, self.tidings.url, self.key).app
        self.host = HostServer(app, self.host_port).start()

    def restart(self) -> list[int]:
        """Stop tidings, publish while it is down, start it again on the same port."""
        self.tidings.stop()
        missed = publish_offline(self.settings, "jump-joy", ["While away"])
        self.tidings = PortServer(self.settings, self.tidings.port).start()
        return missed

    def stop(self) -> None:
        self.host.stop()
        self.tidings.stop()

    def publish(self, title: str) -> int:
        r = httpx.post(
            f"{self.tidings.url}/v1/notifications",
            json={"type": "booking_created", "title": title, "body": "Castle XL"},
            headers={"Authorization": f"Bearer {self.key}"},
            timeout=10,
        )
        assert r.status_code == 201, r.text
        seq: int = r.json()["id"]
        return seq


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Setup]:
    made = Setup(tmp_path, monkeypatch)
    try:
        yield made
    finally:
        made.stop()


def server_unread(setup: Setup, page: Page) -> int:
    token = page.evaluate("fetch('/api/tidings-token').then((r) => r.json()).then((j) => j.token)")
    r = httpx.get(
        f"{setup.tidings.url}/v1/feed/unread-count",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    count: int = r.json()["count"]
    return count


@pytest.mark.timeout(60)
def test_the_quick_start_from_another_origin(
    setup: Setup, contexts: Callable[[], BrowserContext]
) -> None:
    page = contexts().new_page()
    failed: list[str] = []
    page.on("requestfailed", lambda request: failed.append(request.url))
    page.goto(setup.host.url + "/")  # step 3
    wait_live(page, timeout=20_000)
    assert page.evaluate("Boolean(customElements.get('tidings-bell'))")
    assert page.evaluate("location.origin") != setup.tidings.url
    assert bell(page, "b.unread") == 0
    record_events(page)

    first = setup.publish("New booking")
    wait_unread(page, 1)
    assert badge_text(page) == "1"
    assert page.evaluate("window.__got") == [first]

    click(page, "tidings-bell [part=button]")
    # a preflighted POST /v1/feed/read; the bell shows 0 at once (optimistic), so the server is
    # asked only after its answer came
    with page.expect_response(
        lambda r: r.url.endswith("/v1/feed/read") and r.request.method == "POST", timeout=10_000
    ) as answered:
        click(page, "tidings-bell [part=mark-all]")
    assert answered.value.status == 200
    wait_unread(page, 0)
    assert bell(page, "b.shadowRoot.querySelector('[part=badge]').hidden") is True
    assert server_unread(setup, page) == 0

    missed = setup.restart()
    page.wait_for_function("window.__states.includes('reconnecting')", timeout=10_000)
    wait_live(page, timeout=30_000)
    wait_unread(page, 1, timeout=10_000)
    later = setup.publish("After the restart")
    wait_unread(page, 2)
    assert badge_text(page) == "2"
    assert page.evaluate("window.__got") == [first, *missed, later]
    assert not [url for url in failed if "/v1/feed" in url or "/static/" in url]
