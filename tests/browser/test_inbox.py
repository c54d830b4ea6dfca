"""<tidings-inbox> on the demo's "View all" page (issue 10 items 4 and 7): filters, day headers,
load more, actions that reach the server and the user's other tabs, the empty state, live
additions, German, and the one icon map (with its default for unknown types)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page

from tests.browser.helpers import bell, click, open_tab, sign_in, wait_unread
from tests.demo.helpers import SEEDED_UNREAD, DemoServer, api_key, publish

pytestmark = pytest.mark.browser

INBOX = "tidings-inbox"


def inbox(page: Page, expression: str) -> Any:
    """Evaluate ``expression`` with ``i`` bound to the page's <tidings-inbox>."""
    return page.evaluate(
        f"(() => {{ const i = document.querySelector('tidings-inbox'); return {expression}; }})()"
    )


def settle(page: Page) -> None:
    page.wait_for_function(
        "(() => { const i = document.querySelector('tidings-inbox');"
        " return i && i.client && !i.loading; })()"
    )


def ids(page: Page) -> list[int]:
    """The ids of the items shown (card heads and expanded earlier items), top to bottom."""
    return [
        int(x)
        for x in inbox(
            page, "[...i.shadowRoot.querySelectorAll('[part~=item]')].map((e) => e.dataset.id)"
        )
    ]


def open_inbox(page: Page, url: str) -> None:
    page.goto(f"{url}/demo/notifications")
    settle(page)


def gone(page: Page, id_: int) -> None:
    page.wait_for_function(
        "id => !document.querySelector('tidings-inbox').shadowRoot"
        ".querySelector(`[part~=item][data-id='${id}']`)",
        arg=id_,
    )


def shown(page: Page, id_: int, unread: bool | None = None) -> None:
    state = "" if unread is None else ("[data-unread]" if unread else ":not([data-unread])")
    page.wait_for_function(
        "sel => document.querySelector('tidings-inbox').shadowRoot.querySelector(sel)",
        arg=f"[part~=item][data-id='{id_}']{state}",
    )


def test_filters_day_headers_and_load_more(
    demo: DemoServer, contexts: Callable[[], BrowserContext]
) -> None:
    total = demo.sql("SELECT last_seq FROM tenants WHERE id = 'jump-joy'")[0][0]
    assert total > 20
    # The latest four from today, four from yesterday, the rest from five days ago (the store
    # keeps UTC; the seeded history has real times over the previous days, set aside here).
    demo.sql(
        "UPDATE notifications SET created_at = datetime('now') "
        "WHERE tenant_id = 'jump-joy' AND seq > ?",
        total - 4,
    )
    demo.sql(
        "UPDATE notifications SET created_at = datetime('now', '-1 day') "
        "WHERE tenant_id = 'jump-joy' AND seq BETWEEN ? AND ?",
        total - 7,
        total - 4,
    )
    demo.sql(
        "UPDATE notifications SET created_at = datetime('now', '-5 days') "
        "WHERE tenant_id = 'jump-joy' AND seq <= ?",
        total - 8,
    )
    page = sign_in(contexts(), demo.url, "sam")
    open_inbox(page, demo.url)
    inbox(page, "i.setAttribute('time-zone', 'UTC')")
    first = ids(page)
    assert len(first) <= 20 and first == sorted(first, reverse=True)
    assert first[0] == total
    now = datetime.now(UTC)
    older = now - timedelta(days=5)
    date = f"{older:%A}, {older:%B} {older.day}" + (
        f", {older.year}" if older.year != now.year else ""
    )
    days = inbox(page, "[...i.shadowRoot.querySelectorAll('[part=day]')].map((d) => d.textContent)")
    assert days == ["Today", "Yesterday", date]

    click(page, f"{INBOX} [part=more]")
    page.wait_for_function("n => document.querySelector('tidings-inbox').items.length > n", arg=20)
    settle(page)
    assert len(inbox(page, "i.items")) == total
    assert inbox(page, "i.shadowRoot.querySelector('[part=more]').hidden") is True

    click(page, f"{INBOX} [part=filter][data-status=unread]")
    settle(page)
    assert inbox(page, "i.shadowRoot.querySelector('[data-status=unread]').ariaPressed") == "true"
    unread = inbox(page, "i.items.map((n) => n.id)")
    assert len(unread) == SEEDED_UNREAD
    assert inbox(page, "i.items.every((n) => !n.read)") is True

    click(page, f"{INBOX} [part=filter][data-status=all]")
    settle(page)
    page.select_option(f"{INBOX} [part=type-filter]", "payment_failed")
    settle(page)
    types = inbox(page, "i.items.map((n) => n.type)")
    assert types and set(types) == {"payment_failed"}
    assert inbox(page, "i.status") == "all"

    # "All caught up": everything read, in the Unread view.
    page.select_option(f"{INBOX} [part=type-filter]", "")
    click(page, f"{INBOX} [part=filter][data-status=unread]")
    settle(page)
    click(page, f"{INBOX} [part=mark-all]")
    page.locator(f"{INBOX} [part=empty]").wait_for()
    assert inbox(page, "i.shadowRoot.querySelector('[part=empty] .empty-title').textContent") == (
        "All caught up"
    )
    wait_unread(page, 0)

    click(page, f"{INBOX} [part=filter][data-status=snoozed]")
    settle(page)
    assert inbox(page, "i.shadowRoot.querySelector('[part=empty] .empty-title').textContent") == (
        "Nothing snoozed"
    )


def test_actions_reach_the_server_and_the_other_tabs(
    demo: DemoServer, contexts: Callable[[], BrowserContext]
) -> None:
    context = contexts()
    page = sign_in(context, demo.url, "sam")
    open_inbox(page, demo.url)
    other = open_tab(context, demo.url, "/demo/notifications")
    settle(other)
    key = api_key(demo.url, "jump-joy")
    sent = publish(key, "Inbox action target", type="reminder")["id"]
    shown(page, sent, unread=True)
    shown(other, sent, unread=True)
    unread_before = bell(page, "b.unread")

    def receipt() -> tuple[Any, ...]:
        rows = demo.sql(
            "SELECT read_at IS NOT NULL, archived_at IS NOT NULL, snoozed_until IS NOT NULL "
            "FROM receipts WHERE tenant_id = 'jump-joy' AND user_id = 'sam' AND seq = ?",
            sent,
        )
        return rows[0] if rows else (0, 0, 0)

    action = f"{INBOX} [part~=action][data-id='{sent}']"
    click(page, f"{action}[data-action=read]")
    shown(other, sent, unread=False)  # the other tab heard it through the stream
    wait_unread(other, unread_before - 1)
    assert receipt()[0] == 1

    click(page, f"{action}[data-action=unread]")
    shown(other, sent, unread=True)
    wait_unread(page, unread_before)

    click(page, f"{action}[data-action=archive]")
    gone(page, sent)
    gone(other, sent)
    assert receipt()[1] == 1
    click(other, f"{INBOX} [part=filter][data-status=archived]")
    settle(other)
    shown(other, sent)
    click(other, f"{action}[data-action=unarchive]")
    gone(other, sent)  # back in the inbox, so no longer in "Archived"
    shown(page, sent)  # ...and in the other tab's "All" again
    assert receipt()[1] == 0

    # (a comma: an expression that ends in a function would be called by Playwright)
    inbox(page, "(i.client.on('snoozed', (e) => { window.__snoozed = e.ids; }), true)")
    click(page, f"{action}[data-action=snooze]")
    click(page, f"{INBOX} [part=snooze-option][data-id='{sent}'][data-preset=tomorrow]")
    gone(page, sent)  # at once; the stream's `snoozed` says the server has it
    page.wait_for_function("id => (window.__snoozed || []).includes(id)", arg=sent)
    until = demo.sql(
        "SELECT snoozed_until FROM receipts WHERE tenant_id = 'jump-joy' AND user_id = 'sam' "
        "AND seq = ?",
        sent,
    )[0][0]
    assert until is not None
    click(other, f"{INBOX} [part=filter][data-status=snoozed]")
    settle(other)
    shown(other, sent)
    click(other, f"{action}[data-action=unsnooze]")
    shown(page, sent, unread=True)  # woken: back, unread, in the first tab too
    assert receipt()[2] == 0


def test_live_items_and_german(demo: DemoServer, contexts: Callable[[], BrowserContext]) -> None:
    page = sign_in(contexts(), demo.url, "ann")
    open_inbox(page, demo.url)
    key = api_key(demo.url, "jump-joy")
    sent = publish(key, "Arrives while the inbox is open", type="payment_received")["id"]
    shown(page, sent, unread=True)
    assert ids(page)[0] == sent

    inbox(page, "i.setAttribute('locale', 'de')")
    labels = inbox(
        page, "[...i.shadowRoot.querySelectorAll('[part=filter]')].map((b) => b.textContent)"
    )
    assert labels == ["Alle", "Ungelesen", "Archiviert", "Zurückgestellt"]
    assert inbox(page, "i.shadowRoot.querySelector('[part=day]').textContent") == "Heute"
    assert inbox(page, "i.shadowRoot.querySelector('[part=mark-all]').textContent") == (
        "Alle als gelesen markieren"
    )
    read = inbox(
        page, f"i.shadowRoot.querySelector('[data-id=\"{sent}\"][data-action=read]').title"
    )
    assert read == "Als gelesen markieren"
    assert inbox(page, f"i.shadowRoot.querySelector('[data-id=\"{sent}\"] .icon').title") == (
        "Zahlung erhalten"
    )
    assert inbox(page, "i.shadowRoot.querySelector('[part=type-filter] option').textContent") == (
        "Alle Arten"
    )
    inbox(page, "i.setMessages({ 'filter.unread': 'Neu', 'type.payment_received': 'Geld da' })")
    assert inbox(page, "i.shadowRoot.querySelector('[data-status=unread]').textContent") == "Neu"
    assert inbox(page, f"i.shadowRoot.querySelector('[data-id=\"{sent}\"] .icon').title") == (
        "Geld da"
    )
    click(page, f"{INBOX} [part=filter][data-status=archived]")
    settle(page)
    assert inbox(page, "i.shadowRoot.querySelector('[part=empty] .empty-title').textContent") == (
        "Nichts archiviert"
    )


def test_one_icon_map_with_a_default_and_host_overrides(
    demo: DemoServer, contexts: Callable[[], BrowserContext]
) -> None:
    page = sign_in(contexts(), demo.url, "sam")
    open_inbox(page, demo.url)
    key = api_key(demo.url, "jump-joy")
    known = publish(key, "Known type", type="booking_cancelled")["id"]
    unknown = publish(key, "Unknown type", type="invoice.overdue")["id"]
    shown(page, unknown)
    page.wait_for_function(
        "id => document.querySelector('tidings-bell').view.latest.some((n) => n.id === id)",
        arg=unknown,
    )

    def icons(id_: int) -> list[Any]:
        sel = f"[part~=item][data-id='{id_}'] .icon"
        return [
            bell(
                page, f"(x => [x.dataset.icon, x.innerHTML])(b.shadowRoot.querySelector({sel!r}))"
            ),
            inbox(
                page, f"(x => [x.dataset.icon, x.innerHTML])(i.shadowRoot.querySelector({sel!r}))"
            ),
        ]

    in_bell, in_inbox = icons(known)
    assert in_bell == in_inbox and in_bell[0] == "calendar-x"
    in_bell, in_inbox = icons(unknown)
    assert in_bell == in_inbox and in_bell[0] == "bell"  # the default for an unknown type
    assert inbox(page, f"i.shadowRoot.querySelector('[data-id=\"{unknown}\"] .icon').title") == (
        "Invoice overdue"
    )

    # The host maps its own type once; both elements re-render with it.
    page.evaluate(
        "import('/static/tidings-inbox.js')"
        ".then((m) => m.setTypeIcons({ 'invoice.overdue': 'credit-card' }))"
    )
    page.wait_for_function(
        "id => document.querySelector('tidings-inbox').shadowRoot"
        ".querySelector(`[data-id='${id}'] .icon`).dataset.icon === 'credit-card'",
        arg=unknown,
    )
    in_bell, in_inbox = icons(unknown)
    assert in_bell == in_inbox and in_bell[0] == "credit-card"


def test_group_cards_as_the_bell_shows_them(
    demo: DemoServer, contexts: Callable[[], BrowserContext]
) -> None:
    context = contexts()
    page = sign_in(context, demo.url, "sam")
    open_inbox(page, demo.url)
    other = open_tab(context, demo.url)
    key = api_key(demo.url, "jump-joy")
    sent = [
        publish(key, title, type="booking_created", group="booking:77")["id"]
        for title in ("Booking #77 created", "Booking #77 confirmed", "Booking #77 paid")
    ]
    shown(page, sent[-1], unread=True)
    card = f"{INBOX} li[data-group='booking:77']"
    assert page.locator(card).count() == 1
    assert page.locator(f"{card} > [part~=item]").get_attribute("data-id") == str(sent[-1])
    assert page.locator(f"{card} > [part~=earlier]").inner_text() == "+2 earlier"
    click(page, f"{card} > [part~=earlier]")
    page.locator(f"{card} [part=earlier-list] [part~=item]").nth(1).wait_for()
    assert ids(page)[:3] == sent[::-1]
    before = int(bell(other, "b.unread"))
    # Reading the card's head reads the whole group, here and in the other tab.
    click(page, f"{card} > [part=actions] > [data-action=read]")
    wait_unread(other, before - 3)
    for id_ in sent:
        shown(page, id_, unread=False)
