"""The "View all" page: history through the Feed API with filters, mark read, archive, load
more, and live additions from the bell's stream."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import BrowserContext, Page

from tests.browser.helpers import bell, click, sign_in, wait_unread
from tests.demo.helpers import SEEDED_UNREAD, DemoServer, api_key, publish

pytestmark = pytest.mark.browser


def rows(page: Page) -> list[int]:
    return [
        int(x) for x in page.eval_on_selector_all(".feed-item", "els => els.map(e => e.dataset.id)")
    ]


def settle(page: Page) -> None:
    page.wait_for_selector("[data-list][aria-busy=false]")


def test_view_all_filters_marks_archives_and_pages(
    demo: DemoServer, contexts: Callable[[], BrowserContext]
) -> None:
    page = sign_in(contexts(), demo.url, "sam")
    total = demo.sql("SELECT last_seq FROM tenants WHERE id = 'jump-joy'")[0][0]
    assert total > 20
    page.goto(f"{demo.url}/demo/notifications")
    settle(page)
    first = rows(page)
    assert first == list(range(total, total - 20, -1))  # newest first, one page of 20
    click(page, "[data-action=more]")
    page.wait_for_function("n => document.querySelectorAll('.feed-item').length > n", arg=20)
    settle(page)
    assert rows(page) == list(range(total, 0, -1))
    assert page.locator("[data-action=more]").is_hidden()

    click(page, "[data-status=unread]")
    settle(page)
    unread = rows(page)
    assert len(unread) == SEEDED_UNREAD
    click(page, f".feed-item[data-id='{unread[0]}'] [data-action=read]")
    page.wait_for_function(
        "id => !document.querySelector(`.feed-item[data-id='${id}']`)", arg=unread[0]
    )
    wait_unread(page, SEEDED_UNREAD - 1)  # the bell heard about it through its stream

    click(page, "[data-status=all]")
    settle(page)
    click(page, f".feed-item[data-id='{unread[1]}'] [data-action=archive]")
    page.wait_for_function(
        "id => !document.querySelector(`.feed-item[data-id='${id}']`)", arg=unread[1]
    )
    click(page, "[data-status=archived]")
    settle(page)
    assert rows(page) == [unread[1]]

    click(page, "[data-status=all]")
    settle(page)
    page.select_option("[data-type-filter]", "payment_failed")
    settle(page)
    types = page.eval_on_selector_all(".feed-item", "els => els.map(e => e.dataset.type)")
    assert types and set(types) == {"payment_failed"}

    page.select_option("[data-type-filter]", "")
    settle(page)
    key = api_key(demo.url, "jump-joy")
    sent = publish(key, "Live on the history page", type="reminder")
    page.wait_for_selector(f".feed-item[data-id='{sent['id']}'][data-unread=true]")
    assert rows(page)[0] == sent["id"]
    click(page, "[data-action=mark-all]")
    page.wait_for_function("!document.querySelector('.feed-item[data-unread]')")
    wait_unread(page, 0)
    assert bell(page, "b.unread") == 0
