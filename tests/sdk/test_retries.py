"""Retries over real sockets: lost answers never double a publish, ``Retry-After`` is honoured
(or handed back when it is too long), and calls that are not safe to repeat are not repeated."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import httpx
import pytest

from tests.sdk.both import Clients
from tests.sdk.proxy import ProxyThread
from tests.support import OPERATOR, ServerThread, Tenant, create_tenant, make_settings
from tidings.client import ApiError
from tidings.client._retry import parse_retry_after


def test_lost_answers_are_retried_without_doubling(
    live: ServerThread, fresh: Tenant, make: Clients
) -> None:
    with ProxyThread(live.port, drops=2) as proxy:
        client = make(proxy.url, api_key=fresh.key, retries=5)
        once = client.publish("booking_created", "once")
        assert proxy.drops == 0, "two answers were lost on the way"
    with ProxyThread(live.port, drops=1) as proxy:
        client = make(proxy.url, api_key=fresh.key, retries=5)
        batch = client.publish_batch([{"type": "system", "title": "b1"}])
        assert proxy.drops == 0
    assert (once["id"], [n["id"] for n in batch]) == (1, [2])
    direct = make(live.url, api_key=fresh.key)
    assert [n["title"] for n in direct.feed("ann")["items"]] == ["b1", "once"]


def test_a_call_that_is_not_safe_to_repeat_is_not_retried_after_a_lost_answer(
    live: ServerThread, make: Clients
) -> None:
    name = f"lost-{time.monotonic_ns()}"
    with ProxyThread(live.port, drops=1) as proxy:
        client = make(proxy.url, operator_key=OPERATOR, retries=5)
        with pytest.raises(httpx.TransportError):
            client.create_tenant(name)
    listed = make(live.url, operator_key=OPERATOR).list_tenants()
    assert name in [t["id"] for t in listed], "it was created once; a retry would be a 409"


def test_retries_end_with_the_transport_error(make: Clients) -> None:
    with ProxyThread(1, drops=0) as proxy:  # forwards to a closed port: every answer is lost
        client = make(proxy.url, api_key="tdg_x_y", retries=1)
        with pytest.raises(httpx.TransportError):
            client.publish("system", "x")


@pytest.fixture
def limited(tmp_path: Path) -> tuple[ServerThread, Tenant]:
    srv = ServerThread(make_settings(str(tmp_path), publish_rate="1/second")).start()
    return srv, create_tenant(srv.url, "jump-joy")


def test_retry_after_is_honoured(limited: tuple[ServerThread, Tenant], make: Clients) -> None:
    srv, tenant = limited
    try:
        client = make(srv.url, api_key=tenant.key, retries=1)
        client.publish("system", "first")
        started = time.monotonic()
        second = client.publish("system", "second")  # 429 Retry-After: 1, then accepted
        assert time.monotonic() - started >= 0.9, "it waited as the server asked, once"
        assert second["id"] == 2
        hasty = make(srv.url, api_key=tenant.key, max_wait=0.5)
        with pytest.raises(ApiError) as refused:
            hasty.publish("system", "third")
        error = refused.value
        assert (error.status, error.code, error.retry_after) == (429, "rate_limited", 1.0)
        assert [n["id"] for n in client.feed("ann")["items"]] == [2, 1], "the 429 stored nothing"
    finally:
        srv.stop()


def test_retry_after_as_seconds_or_an_http_date() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("7", now) == 7.0
    assert parse_retry_after(format_datetime(now + timedelta(seconds=30), usegmt=True), now) == 30
    assert parse_retry_after(format_datetime(now - timedelta(seconds=30), usegmt=True), now) == 0
    for junk in (None, "", "soon", "-1", "1.5"):
        assert parse_retry_after(junk, now) is None
