"""The README's screenshots, taken from the real demo: the dashboard, the open dropdown, a
toast, and the "View all" page (<tidings-inbox>) on a desktop and on a phone. The test run
writes them to a temporary directory (the tree stays clean); ``make screenshots`` sets
``SCREENSHOTS_DIR=docs/img`` to regenerate the README's pictures."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext

from tests.browser.helpers import click, sign_in, wait_live
from tests.browser.test_live import request_booking
from tests.demo.helpers import DemoServer

pytestmark = pytest.mark.browser

PNG = b"\x89PNG\r\n\x1a\n"


def test_readme_screenshots(
    demo: DemoServer, contexts: Callable[[], BrowserContext], tmp_path: Path
) -> None:
    img = Path(os.environ.get("SCREENSHOTS_DIR") or tmp_path)
    img.mkdir(parents=True, exist_ok=True)
    page = sign_in(contexts(), demo.url, "ann")
    page.goto(f"{demo.url}/demo")  # once more, without the "signed in" message
    wait_live(page)
    page.wait_for_timeout(400)  # the dot's colour transition
    shots = {"dashboard": page.screenshot(path=img / "dashboard.png")}

    click(page, "tidings-bell [part=button]")
    page.locator("tidings-bell [part=panel]").wait_for(state="visible")
    # The demo's publishes carry group "booking:<id>": the latest five fold into one card per
    # booking, so the dropdown holds up to five cards.
    assert 3 <= page.locator("tidings-bell [part=item]").count() <= 5
    # The picture shows the list at rest: no item's hover/focus actions over its title.
    page.mouse.move(5, 795)
    page.evaluate("document.querySelector('tidings-bell').shadowRoot.activeElement?.blur()")
    page.wait_for_timeout(200)
    shots["dropdown"] = page.screenshot(path=img / "dropdown.png")
    page.keyboard.press("Escape")
    page.evaluate("document.activeElement?.blur()")
    page.mouse.move(5, 795)

    customer = contexts().new_page()
    request_booking(customer, demo.url, "jump-joy", "Rosa Diaz")
    click(customer, "button[type=submit]")
    page.bring_to_front()
    page.locator("tidings-bell [part=toast]").wait_for()
    page.wait_for_timeout(400)  # the toast's slide-in
    shots["toast"] = page.screenshot(path=img / "toast.png")

    page.goto(f"{demo.url}/demo/notifications")
    wait_live(page)
    page.wait_for_function(
        "(() => { const i = document.querySelector('tidings-inbox');"
        " return i && !i.loading && i.items.length > 0; })()"
    )
    page.mouse.move(5, 795)
    shots["inbox"] = page.screenshot(path=img / "inbox.png")
    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_timeout(200)  # the layout settles
    shots["inbox-phone"] = page.screenshot(path=img / "inbox-phone.png")

    for name, data in shots.items():
        assert data.startswith(PNG), name
        assert (img / f"{name}.png").stat().st_size > 20_000, name
