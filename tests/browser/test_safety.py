"""Tenants never meet in the browser, and notification text never becomes markup or script."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Dialog

from tests.browser.helpers import bell, click, record_events, sign_in, wait_live, wait_unread
from tests.browser.test_live import request_booking
from tests.demo.helpers import SEEDED_UNREAD, DemoServer, api_key, publish

pytestmark = pytest.mark.browser

FETCH = """async ([method, path, body]) => {
  const r = await fetch(path, {method, headers: body ? {'Content-Type': 'application/json'} : {},
                               body: body ? JSON.stringify(body) : undefined});
  const text = await r.text();
  let json = null; try { json = JSON.parse(text); } catch {}
  return {status: r.status, json, text: json ? null : text.slice(0, 2000)};
}"""


def test_a_user_of_one_tenant_never_sees_another_tenants_notifications(
    demo: DemoServer, contexts: Callable[[], BrowserContext]
) -> None:
    ann = sign_in(contexts(), demo.url, "ann")  # Jump Joy Rentals
    bob = sign_in(contexts(), demo.url, "bob")  # Bounce Bros
    record_events(ann)
    bros_key = api_key(demo.url, "bounce-bros")
    secret = publish(bros_key, "Bounce Bros secret: margin report", type="system")

    # Bob's bell shows it at once; Ann's never does.
    wait_unread(bob, SEEDED_UNREAD + 1)
    customer = contexts().new_page()
    request_booking(customer, demo.url, "bounce-bros", "Wendy Bros")
    click(customer, "button[type=submit]")
    wait_unread(bob, SEEDED_UNREAD + 2)
    ann.wait_for_timeout(700)
    assert ann.evaluate("window.__got") == []
    assert bell(ann, "b.unread") == SEEDED_UNREAD
    titles = bell(ann, "b.view.latest.map((n) => n.title)")
    assert not any("Bounce Bros" in t or "Wendy" in t for t in titles)

    def call(method: str, path: str, body: Any = None) -> Any:
        return ann.evaluate(FETCH, [method, path, body])

    # Whatever the page asks for, it gets Jump Joy's data or a 4xx.
    for path in (
        "/v1/feed?limit=100",
        "/v1/feed?limit=100&tenant=bounce-bros",
        "/v1/feed?limit=100&status=all&type=system",
    ):
        answer = call("GET", path)
        assert answer["status"] == 200
        assert all("Bounce Bros" not in i["title"] for i in answer["json"]["items"])
        assert all("Wendy" not in i["title"] for i in answer["json"]["items"])
    token = call("GET", "/demo/token")["json"]
    assert token["tenant"] == "jump-joy"
    assert call("POST", "/v1/tokens", {"user": "bob"})["status"] == 401
    # Marking Bob's notification ids read touches Ann's own notifications with those numbers
    # (ids are per tenant), never Bob's.
    assert call("POST", "/v1/feed/read", {"ids": [secret["id"]]})["status"] in (200, 404)
    bob.wait_for_timeout(300)
    assert bell(bob, "b.unread") == SEEDED_UNREAD + 2
    # The bell's channel is only a tab-sharing key: pointing it at Bounce Bros changes nothing.
    ann.evaluate(
        "document.querySelector('tidings-bell').setAttribute('channel', 'bounce-bros:bob')"
    )
    wait_live(ann)
    assert bell(ann, "b.view.latest.every((n) => !n.title.includes('Bounce Bros'))")
    # Demo pages: another tenant's booking is "not found", and it stays as it was.
    bros_booking = demo.sql(
        "SELECT id, status FROM bookings WHERE tenant_id = 'bounce-bros' ORDER BY id LIMIT 1"
    )[0]
    page = call("GET", f"/demo/bookings/{bros_booking[0]}")
    assert page["status"] == 404
    assert (
        demo.sql("SELECT status FROM bookings WHERE id = ?", bros_booking[0])[0][0]
        == bros_booking[1]
    )
    sse = ann.evaluate(
        """() => new Promise((resolve) => {
             const got = [];
             const es = new EventSource('/v1/stream?last_event_id=0&tenant=bounce-bros');
             es.addEventListener('notification', (e) => got.push(JSON.parse(e.data).title));
             setTimeout(() => { es.close(); resolve(got); }, 1500);
           })"""
    )
    assert sse, "the replay from 0 should bring Jump Joy's history"
    assert not any("Bounce Bros" in t or "Wendy" in t for t in sse)


XSS_TITLE = '<img src=x onerror="window.__xss=1">'
XSS_BODY = "<script>window.__xss=2</script><b>bold?</b>"
XSS_LINK = '/demo/"><svg/onload=window.__xss=3>'


def test_payloads_render_as_text_and_javascript_links_are_not_followed(
    demo: DemoServer, contexts: Callable[[], BrowserContext]
) -> None:
    dialogs: list[str] = []
    context = contexts()

    def on_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    context.on("dialog", on_dialog)
    page = sign_in(context, demo.url, "ann")
    key = api_key(demo.url, "jump-joy")

    sent = publish(key, XSS_TITLE, body=XSS_BODY, link=XSS_LINK, type="booking_created")
    toast = page.locator("tidings-bell [part=toast]").first
    toast.wait_for()
    assert XSS_TITLE in toast.inner_text()
    assert XSS_BODY in toast.inner_text()
    page.wait_for_timeout(300)
    assert page.evaluate("window.__xss") is None
    assert bell(page, "b.shadowRoot.querySelectorAll('img, script, b, svg[onload]').length") == 0

    # A javascript: link can only come from the store itself (the API refuses it): put one
    # there, as a compromised or legacy writer might, and load the page again.
    evil = publish(key, "Click me", body="javascript link", type="system")
    demo.sql(
        "UPDATE notifications SET link = 'javascript:window.__xss=4' "
        "WHERE tenant_id = 'jump-joy' AND seq = ?",
        evil["id"],
    )
    page.reload()
    wait_live(page)
    click(page, "tidings-bell [part=button]")
    item = page.locator(f"tidings-bell [part=item][data-id='{sent['id']}']")
    assert XSS_TITLE in item.inner_text() and XSS_BODY in item.inner_text()
    before = page.url
    click(page, f"tidings-bell [part=item][data-id='{evil['id']}']")
    page.wait_for_timeout(500)
    assert page.url == before
    assert page.evaluate("window.__xss") is None
    assert bell(page, "b.shadowRoot.querySelectorAll('img, script, b, svg[onload]').length") == 0

    # The "View all" page (<tidings-inbox>) shows the same payloads as text, and does not
    # follow a javascript: link.
    page.goto(f"{demo.url}/demo/notifications")
    row = page.locator(f"tidings-inbox [part~=item][data-id='{sent['id']}']")
    row.wait_for()
    assert row.locator(".title").inner_text() == XSS_TITLE
    assert row.locator(".body").inner_text() == XSS_BODY
    before = page.url
    click(page, f"tidings-inbox [part~=item][data-id='{evil['id']}']")
    page.wait_for_timeout(500)
    assert page.url == before
    shadow = "document.querySelector('tidings-inbox').shadowRoot"
    assert page.evaluate(f"{shadow}.querySelectorAll('img, script, b, svg[onload]').length") == 0

    page.wait_for_timeout(300)
    assert page.evaluate("window.__xss") is None
    assert page.evaluate("document.querySelectorAll('img[src=x], svg[onload]').length") == 0
    assert dialogs == []
