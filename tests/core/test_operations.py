"""Health, readiness, metrics, log redaction and retention."""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from tests.support import ServerThread, Stream, Tenant, publish
from tidings.domain.notifications import utcnow
from tidings.logs import RedactCredentials
from tidings.store import Store
from tidings.store import notifications as nq

pytestmark = pytest.mark.anyio


async def test_health_ready_metrics(server: ServerThread, tenant: Tenant) -> None:
    async with httpx.AsyncClient(timeout=10, base_url=server.url) as client:
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        async with Stream(server.url, tenant.token("ann")) as s:
            await s.next_event("ready")
            ready = (await client.get("/readyz")).json()
            assert ready["status"] == "ready" and ready["streams"] == 1
            await publish(client, tenant, "one")
            await s.notifications(1)
            text = (await client.get("/metrics")).text
        assert "tidings_streams_open 1.0" in text
        assert "tidings_published_total 1.0" in text
        assert "tidings_delivered_total 1.0" in text
        assert "tidings_publish_seconds_count 1.0" in text


def test_access_log_redacts_query_tokens() -> None:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        "",
        0,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1", "GET", "/v1/stream?access_token=eyJ.abc.def&x=1", "1.1", 200),
        None,
    )
    RedactCredentials().filter(record)
    assert "eyJ" not in record.getMessage()
    assert "access_token=[redacted]&x=1" in record.getMessage()


async def test_resume_into_pruned_history_gets_reset(server: ServerThread, tenant: Tenant) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        for i in range(5):
            await publish(client, tenant, f"old {i}")
    store = Store(server.settings.database_url)
    try:
        async with store.write() as conn:
            removed = await nq.prune(conn, utcnow() + timedelta(seconds=5))
        assert removed == 5
    finally:
        await store.close()
    async with httpx.AsyncClient(timeout=10) as client:
        await publish(client, tenant, "new")
    token = tenant.token("ann")
    async with Stream(server.url, token, last_event_id=2) as s:
        first = await s.next()
        assert first.event == "reset" and first.id == 6
        assert [n["title"] for n in first.data["latest"]] == ["new"]
    async with Stream(server.url, token, last_event_id=5) as s:
        assert (await s.next()).event == "ready"
        assert [f.data["title"] for f in await s.notifications(1)] == ["new"]


def test_the_main_loop_wakes_once_a_second_and_exits_at_once(tmp_path: Path) -> None:
    """The server's main loop ticks once a second (uvicorn's ten times; each wake of an idle
    process costs it CPU), and ``should_exit`` set from another thread ends it at once."""
    from tests.support import make_settings

    server = ServerThread(make_settings(str(tmp_path)))
    ticks: list[float] = []
    real = server.server.on_tick

    async def on_tick(counter: int) -> bool:
        ticks.append(time.monotonic())
        return await real(counter)

    server.server.on_tick = on_tick  # type: ignore[method-assign]
    server.start()
    try:
        time.sleep(2.6)
        assert 2 <= len(ticks) <= 4, ticks  # 0 s, ~1 s, ~2 s
    finally:
        asked = time.monotonic()
        server.server.should_exit = True
        server.thread.join(timeout=5)
    assert not server.thread.is_alive()
    assert time.monotonic() - asked < 0.9  # not at the next tick
