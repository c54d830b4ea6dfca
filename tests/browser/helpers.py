"""Page helpers for the browser tests: sign in, wait for the bell, read its state."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import BrowserContext, Page

from tests.demo.helpers import USERS


def sign_in(context: BrowserContext, url: str, user: str) -> Page:
    """Sign in by picking the demo user, and wait until the bell is live."""
    page = context.new_page()
    page.goto(f"{url}/demo/login")
    page.click(f"button.pick-user[data-user={user}][data-tenant={USERS[user]}]")
    page.wait_for_url(f"{url}/demo")
    wait_live(page)
    return page


def open_tab(context: BrowserContext, url: str, path: str = "/demo") -> Page:
    page = context.new_page()
    page.goto(url + path)
    wait_live(page)
    return page


def wait_live(page: Page, timeout: float = 10_000) -> None:
    page.wait_for_function(
        "document.querySelector('tidings-bell')?.state === 'open'", timeout=timeout
    )


def bell(page: Page, expression: str) -> Any:
    """Evaluate ``expression`` with ``b`` bound to the page's <tidings-bell>."""
    return page.evaluate(
        f"(() => {{ const b = document.querySelector('tidings-bell'); return {expression}; }})()"
    )


def wait_unread(page: Page, count: int, timeout: float = 5_000) -> None:
    page.wait_for_function(
        "n => document.querySelector('tidings-bell')?.unread === n", arg=count, timeout=timeout
    )


def badge_text(page: Page) -> str:
    return str(
        bell(
            page,
            "b.shadowRoot.querySelector('[part=badge]').hidden ? '' : "
            "b.shadowRoot.querySelector('[part=badge]').textContent",
        )
    )


def record_events(page: Page) -> None:
    """Collect the bell's notifications and state changes in ``window.__got``/``__states``."""
    page.evaluate(
        """() => {
          window.__got = []; window.__states = [];
          document.addEventListener('tidings-notification',
            (e) => window.__got.push(e.detail.notification.id));
          document.addEventListener('tidings-state',
            (e) => window.__states.push(e.detail.state));
        }"""
    )


def click(page: Page, selector: str) -> None:
    """Click like a person: the tab comes to the front first (background tabs get no
    animation frames, and Playwright waits for frames before it clicks)."""
    page.bring_to_front()
    page.click(selector)
