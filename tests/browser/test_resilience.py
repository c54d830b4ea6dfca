"""The bell across a server restart and across token expiry, without a page reload."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext

from tests.browser.helpers import bell, record_events, sign_in, wait_live, wait_unread
from tests.demo.helpers import (
    SEEDED_UNREAD,
    DemoServer,
    api_key,
    demo_settings,
    publish,
    publish_offline,
)

pytestmark = pytest.mark.browser


def test_restart_on_the_same_port_delivers_exactly_what_was_missed(
    tmp_path: Path, contexts: Callable[[], BrowserContext]
) -> None:
    settings = demo_settings(tmp_path)
    first = DemoServer(settings).start()
    second: DemoServer | None = None
    try:
        page = sign_in(contexts(), first.url, "ann")
        record_events(page)
        page.evaluate("window.__loaded = performance.timeOrigin")

        first.stop()
        page.wait_for_selector(
            "tidings-bell [part=dot][data-state=reconnecting]", state="attached", timeout=5000
        )
        assert bell(page, "b.shadowRoot.querySelector('[part=dot]').title") == "Reconnecting…"
        missed = publish_offline(
            settings, "jump-joy", ["While away 1", "While away 2", "While away 3"]
        )

        second = DemoServer(settings, port=first.port).start()
        wait_live(page, timeout=20_000)
        page.wait_for_function("n => window.__got.length >= n", arg=3, timeout=5000)
        page.wait_for_timeout(500)  # anything extra (a duplicate) would arrive by now

        assert page.evaluate("window.__got") == missed
        states = page.evaluate("window.__states")
        assert "reconnecting" in states
        assert states[-1] == "open"
        assert states.index("reconnecting") < len(states) - 1
        items = bell(
            page, "[...b.shadowRoot.querySelectorAll('[part=item]')].map((i) => +i.dataset.id)"
        )
        assert items[:3] == sorted(missed, reverse=True)
        assert len(items) == len(set(items))
        assert bell(page, "b.unread") == SEEDED_UNREAD + 3
        assert page.evaluate("window.__loaded === performance.timeOrigin")  # no reload
    finally:
        if second is not None:
            second.stop()
        first.stop()


def test_an_expired_token_is_renewed_without_a_reload(
    tmp_path: Path, contexts: Callable[[], BrowserContext]
) -> None:
    server = DemoServer(demo_settings(tmp_path, demo_token_ttl=3)).start()
    try:
        context = contexts()
        token_calls: list[float] = []
        context.on(
            "request",
            lambda r: (
                token_calls.append(time.monotonic()) if r.url.endswith("/demo/token") else None
            ),
        )
        page = sign_in(context, server.url, "ann")
        record_events(page)
        page.evaluate("window.__marker = 'same page'")
        first_calls = len(token_calls)
        assert first_calls >= 1

        # The stream ends with `expired` after 3 s; the bell asks /demo/token and resumes.
        page.wait_for_function("window.__states.includes('reconnecting')", timeout=6000)
        wait_live(page, timeout=6000)
        assert len(token_calls) > first_calls

        key = api_key(server.url, "jump-joy")
        sent = publish(key, "Still listening after the token expired")
        wait_unread(page, SEEDED_UNREAD + 1)
        assert page.evaluate("window.__got") == [sent["id"]]
        assert page.evaluate("window.__marker") == "same page"
        # And again: every expiry is followed by a renewal.
        calls = len(token_calls)
        page.wait_for_function(
            "n => window.__states.filter((s) => s === 'reconnecting').length >= n",
            arg=2,
            timeout=6000,
        )
        wait_live(page, timeout=6000)
        assert len(token_calls) > calls
    finally:
        server.stop()
