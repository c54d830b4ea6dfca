"""Operator routes of the outbox: status, dead rows listed, retried, discarded; and the
consumer started by the app itself (TIDINGS_OUTBOX_URL)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.outbox.conftest import fetch, insert_sync, note
from tests.services import run_sync
from tests.support import OPERATOR, ServerThread, create_tenant, make_settings

pytestmark = pytest.mark.postgres

OP = {"Authorization": f"Bearer {OPERATOR}"}


@pytest.fixture
def server(tmp_path: Path, outbox_url: str) -> Iterator[ServerThread]:
    settings = make_settings(str(tmp_path), outbox_url=outbox_url, outbox_poll_interval=0.5)
    srv = ServerThread(settings).start()
    try:
        yield srv
    finally:
        srv.stop()


def until(check: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def dead_ids(url: str) -> list[int]:
    rows = run_sync(lambda: fetch(url, "SELECT id FROM tidings_outbox_dead ORDER BY id"))
    return [r["id"] for r in rows]


def feed_titles(srv: ServerThread, tenant: str) -> list[str]:
    t = create_tenant(srv.url, tenant)
    r = httpx.get(
        f"{srv.url}/v1/feed", headers={"Authorization": f"Bearer {t.token('u')}"}, timeout=10
    )
    assert r.status_code == 200, r.text
    return [item["title"] for item in reversed(r.json()["items"])]


def test_dead_rows_listed_retried_and_discarded(server: ServerThread, outbox_url: str) -> None:
    base = f"{server.url}/v1/admin/outbox"
    status = httpx.get(base, headers=OP, timeout=10).json()
    assert status["enabled"] is True
    create_tenant(server.url, "acme")
    late, bad = insert_sync(
        outbox_url, [note("late", "for a tenant made later"), ("acme", '{"type": "system"}')]
    )
    insert_sync(outbox_url, [note("acme", "fine")])
    until(lambda: dead_ids(outbox_url) == [late, bad])
    listed = httpx.get(f"{base}/dead", headers=OP, timeout=10).json()
    assert [d["id"] for d in listed["dead"]] == [late, bad]
    assert listed["dead"][0]["tenant"] == "late"
    assert listed["dead"][0]["payload"]["title"] == "for a tenant made later"
    assert listed["dead"][0]["error"].startswith("tenant_not_found")
    assert listed["next_after"] is None
    one = httpx.get(f"{base}/dead?tenant=acme&limit=1", headers=OP, timeout=10).json()
    assert [d["id"] for d in one["dead"]] == [bad] and one["next_after"] == bad
    assert httpx.get(f"{base}/dead/{bad}", headers=OP, timeout=10).json()["id"] == bad

    create_tenant(server.url, "late")  # the cause is gone: retry
    r = httpx.post(f"{base}/dead/{late}/retry", headers=OP, timeout=10)
    assert r.status_code == 200 and r.json() == {"id": late, "retried": True}
    until(lambda: dead_ids(outbox_url) == [bad])
    assert feed_titles(server, "late") == ["for a tenant made later"]
    assert feed_titles(server, "acme") == ["fine"]

    r = httpx.delete(f"{base}/dead/{bad}", headers=OP, timeout=10)
    assert r.status_code == 200 and r.json() == {"id": bad, "discarded": True}
    assert dead_ids(outbox_url) == []

    for method, path in (
        ("DELETE", f"/dead/{bad}"),
        ("POST", f"/dead/{bad}/retry"),
        ("GET", f"/dead/{bad}"),
        ("GET", "/dead/99999999999999999999999"),
    ):
        r = httpx.request(method, f"{base}{path}", headers=OP, timeout=10)
        assert r.status_code == 404, (method, path, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["code"] == "outbox_row_not_found"
    assert httpx.get(f"{base}/dead/x", headers=OP, timeout=10).status_code == 422
    assert httpx.get(f"{base}/dead?limit=0", headers=OP, timeout=10).status_code == 422
    assert httpx.get(f"{base}/dead", timeout=10).status_code == 401
    metrics = httpx.get(f"{server.url}/metrics", headers=OP, timeout=10).text
    assert "tidings_outbox_dead_total 2.0" in metrics
    assert "tidings_outbox_published_total 2.0" in metrics
    assert "tidings_outbox_lag_seconds" in metrics


def test_without_outbox_url_the_routes_say_so(tmp_path: Path) -> None:
    srv = ServerThread(make_settings(str(tmp_path))).start()
    try:
        base = f"{srv.url}/v1/admin/outbox"
        assert httpx.get(base, headers=OP, timeout=10).json() == {"enabled": False}
        r = httpx.get(f"{base}/dead", headers=OP, timeout=10)
        assert r.status_code == 404 and r.json()["code"] == "outbox_disabled"
    finally:
        srv.stop()
