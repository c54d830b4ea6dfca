"""Headless Chromium (Debian's, driven by Playwright) against a real demo server.

``browser`` fails in CI and skips elsewhere when Chromium is missing. One browser per module
(starting one takes about half a second); every test gets fresh contexts and its own server.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, ViewportSize, sync_playwright

from tests.demo.helpers import DemoServer, start_demo
from tests.support import require_binary

ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT: ViewportSize = {"width": 1280, "height": 800}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    path = require_binary("chromium", "/usr/bin/chromium")
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=path, headless=True, args=ARGS)
        try:
            yield instance
        finally:
            instance.close()


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[DemoServer]:
    server = start_demo(tmp_path)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def contexts(browser: Browser) -> Iterator[Callable[[], BrowserContext]]:
    """A factory of fresh browser contexts (each one is a separate browser profile)."""
    made: list[BrowserContext] = []

    def make() -> BrowserContext:
        # bypass_csp: Playwright's wait_for_function evaluates strings, which the demo's CSP
        # forbids; it also means the XSS tests check the bell itself, not the CSP behind it.
        context = browser.new_context(viewport=VIEWPORT, locale="en-US", bypass_csp=True)
        context.set_default_timeout(10_000)
        made.append(context)
        return context

    try:
        yield make
    finally:
        for context in made:
            context.close()
