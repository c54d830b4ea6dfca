"""The bell's part of issue 10 item 4: an Unread toggle, actions per item on hover and focus that
reach the server, an "All caught up" state, and the connection dot's state in words."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page

from tests.browser.helpers import bell, click, open_tab, sign_in, wait_unread
from tests.demo.helpers import SEEDED_UNREAD, DemoServer, api_key, publish

pytestmark = pytest.mark.browser

PANEL = "tidings-bell [part=panel]"


def shown(page: Page) -> list[tuple[int, bool]]:
    """The bell's items as (id, unread), top to bottom."""
    rows = bell(
        page,
        "[...b.shadowRoot.querySelectorAll('[part~=item]')]"
        ".map((e) => [Number(e.dataset.id), e.dataset.unread === 'true'])",
    )
    return [(int(i), bool(u)) for i, u in rows]


def actions_opacity(page: Page, id_: int) -> float:
    return float(
        bell(
            page,
            f"getComputedStyle(b.shadowRoot.querySelector("
            f"'[part~=item][data-id=\"{id_}\"] ~ [part=actions]')).opacity",
        )
    )


def receipt(demo: DemoServer, user: str, seq: int) -> tuple[Any, ...]:
    rows = demo.sql(
        "SELECT read_at IS NOT NULL, archived_at IS NOT NULL, snoozed_until IS NOT NULL "
        "FROM receipts WHERE tenant_id = 'jump-joy' AND user_id = ? AND seq = ?",
        user,
        seq,
    )
    return rows[0] if rows else (0, 0, 0)


def test_unread_toggle_and_all_caught_up(
    demo: DemoServer, contexts: Callable[[], BrowserContext]
) -> None:
    page = sign_in(contexts(), demo.url, "sam")
    click(page, "tidings-bell [part=button]")
    page.locator(PANEL).wait_for(state="visible")
    # The latest five items, one card per booking (the demo's publishes carry its group).
    assert bell(page, "b.view.latest.length") == 5
    assert 1 <= len(shown(page)) <= 5
    assert not all(u for _, u in shown(page))  # the latest five hold read ones too

    click(page, "tidings-bell [part=unread-toggle]")
    assert bell(page, "b.shadowRoot.querySelector('[part=unread-toggle]').ariaPressed") == "true"
    page.wait_for_function(
        "n => document.querySelector('tidings-bell').shadowRoot"
        ".querySelectorAll('[part~=item][data-unread]').length === n",
        arg=SEEDED_UNREAD,
    )
    unread = shown(page)
    assert len(unread) == SEEDED_UNREAD and all(u for _, u in unread)

    # A live one joins the unread list; marking all read empties it: "All caught up".
    sent = publish(api_key(demo.url, "jump-joy"), "Fresh and unread", type="reminder")["id"]
    page.wait_for_function(
        "id => document.querySelector('tidings-bell').shadowRoot"
        ".querySelector(`[part~=item][data-id='${id}'][data-unread]`)",
        arg=sent,
    )
    click(page, "tidings-bell [part=mark-all]")
    page.locator("tidings-bell [part=empty]").wait_for(state="visible")
    assert bell(page, "b.shadowRoot.querySelector('[part=empty]').innerText").startswith(
        "All caught up"
    )
    wait_unread(page, 0)

    click(page, "tidings-bell [part=unread-toggle]")  # off: the latest five again, all read
    page.wait_for_function(
        "id => document.querySelector('tidings-bell').shadowRoot"
        ".querySelector('[part~=item]')?.dataset.id === String(id)",
        arg=sent,
    )
    assert bell(page, "b.view.latest.length") == 5
    assert shown(page)[0] == (sent, False)
    assert not any(u for _, u in shown(page))


def test_item_actions_on_hover_and_focus_reach_the_server_and_other_tabs(
    demo: DemoServer, contexts: Callable[[], BrowserContext]
) -> None:
    context = contexts()
    page = sign_in(context, demo.url, "sam")
    other = open_tab(context, demo.url)
    key = api_key(demo.url, "jump-joy")
    first = publish(key, "Archive me from the bell", type="system")["id"]
    second = publish(key, "Snooze me from the bell", type="reminder")["id"]
    wait_unread(other, SEEDED_UNREAD + 2)
    click(page, "tidings-bell [part=button]")
    page.locator(PANEL).wait_for(state="visible")
    assert shown(page)[:2] == [(second, True), (first, True)]

    assert actions_opacity(page, first) == 0  # hidden until hover or focus
    page.hover(f"tidings-bell [part~=item][data-id='{first}']")
    page.wait_for_function(
        "id => getComputedStyle(document.querySelector('tidings-bell').shadowRoot"
        ".querySelector(`[part~=item][data-id='${id}'] ~ [part=actions]`)).opacity === '1'",
        arg=first,
    )
    page.mouse.move(1, 790)
    bell(page, f"b.shadowRoot.querySelector('[part~=item][data-id=\"{second}\"]').focus()")
    page.keyboard.press("Tab")  # from the item to its first action: focus-within shows them
    assert bell(page, "b.shadowRoot.activeElement.dataset.action") == "read"
    assert actions_opacity(page, second) == 1

    page.keyboard.press("Enter")  # read, from the keyboard
    wait_unread(other, SEEDED_UNREAD + 1)
    assert receipt(demo, "sam", second)[0] == 1
    assert shown(page)[0] == (second, False)
    click(page, f"tidings-bell [part~=action][data-id='{second}'][data-action=unread]")
    wait_unread(other, SEEDED_UNREAD + 2)

    page.hover(f"tidings-bell [part~=item][data-id='{first}']")
    click(page, f"tidings-bell [part~=action][data-id='{first}'][data-action=archive]")
    wait_unread(other, SEEDED_UNREAD + 1)
    page.wait_for_function(
        "id => !document.querySelector('tidings-bell').view.latest.some((n) => n.id === id)",
        arg=first,
    )
    assert receipt(demo, "sam", first)[1] == 1
    assert first not in [i for i, _ in shown(page)]
    page.wait_for_function(  # the emptied slot is filled again from the feed
        "document.querySelector('tidings-bell').view.latest.length === 5"
    )

    page.hover(f"tidings-bell [part~=item][data-id='{second}']")
    click(page, f"tidings-bell [part~=action][data-id='{second}'][data-action=snooze]")
    click(page, f"tidings-bell [part=snooze-option][data-id='{second}'][data-preset=hour]")
    wait_unread(other, SEEDED_UNREAD)
    assert receipt(demo, "sam", second)[2] == 1
    assert second not in [i for i, _ in shown(other)]


def test_the_connection_state_in_words(
    demo: DemoServer, contexts: Callable[[], BrowserContext]
) -> None:
    page = sign_in(contexts(), demo.url, "ann")
    assert "Live" in bell(page, "b.shadowRoot.querySelector('[part=button]').title")
    click(page, "tidings-bell [part=button]")
    status = page.locator("tidings-bell [part=status]")
    status.wait_for(state="visible")
    assert status.inner_text() == "Live"
    assert status.get_attribute("data-state") == "open"
    bell(page, "b.setAttribute('locale', 'es')")
    assert status.inner_text() == "En vivo"
    assert bell(page, "b.shadowRoot.querySelector('[part=dot]').title") == "En vivo"
    assert "En vivo" in bell(page, "b.shadowRoot.querySelector('[part=button]').title")
