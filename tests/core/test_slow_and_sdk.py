"""A slow reader hurts only itself; the SDK retries without doubling and resumes streams."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import httpx
import pytest

from tests.sdk.proxy import DroppingProxy
from tests.support import (
    ServerThread,
    Stream,
    create_tenant,
    make_settings,
    publish_blobs,
)
from tidings.client import Publisher, subscribe

pytestmark = pytest.mark.anyio


async def test_stalled_reader_is_cut_off_and_others_are_unharmed(tmp_path: Path) -> None:
    settings = make_settings(
        str(tmp_path), subscriber_buffer=16, send_timeout=1.0, replay_limit=5000
    )
    srv = ServerThread(settings).start()
    try:
        tenant = create_tenant(srv.url, "jump-joy")
        token = tenant.token("ann")
        # The stalled client: sends its request, reads the headers, then never reads again.
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write(
            f"GET /v1/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n".encode()
        )
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert b"200 OK" in head
        async with Stream(srv.url, token) as healthy, httpx.AsyncClient(timeout=30) as client:
            await healthy.next_event("ready")
            assert srv.service.hub.stream_count == 2
            blob = "x" * 6000
            total = 1500
            for start in range(0, total, 100):
                await publish_blobs(client, tenant, start, blob=blob)
            got = await healthy.notifications(total, timeout=60)
            assert [f.id for f in got] == list(range(1, total + 1))
            async with asyncio.timeout(10):
                while srv.service.hub.stream_count != 1:
                    await asyncio.sleep(0.05)
            for state in srv.service.hub._tenants.values():
                for sub in state.subscribers:
                    assert len(sub.buffer) <= 16
            metrics = (await client.get(f"{srv.url}/metrics")).text
            assert (
                'tidings_subscribers_dropped_total{reason="overflow"}' in metrics
                or 'tidings_subscribers_dropped_total{reason="slow"}' in metrics
            )
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
        # On reconnect it gets everything, in order, once.
        async with Stream(srv.url, token, last_event_id=0) as again:
            await again.next_event("ready")
            got = await again.notifications(total, timeout=60)
            assert [f.id for f in got] == list(range(1, total + 1))
    finally:
        srv.stop()


async def test_publisher_retries_never_double(server: ServerThread) -> None:
    tenant = create_tenant(server.url, "jump-joy")
    proxy = DroppingProxy(server.port, drops=2)
    async with proxy, Publisher(f"http://127.0.0.1:{proxy.port}", tenant.key, retries=5) as pub:
        first = await asyncio.wait_for(pub.publish(type="booking_created", title="once"), 30)
    assert first["id"] == 1
    async with httpx.AsyncClient(timeout=10) as client:
        r = await client.get(
            f"{server.url}/v1/feed", headers={"Authorization": f"Bearer {tenant.token('ann')}"}
        )
    assert [n["title"] for n in r.json()["items"]] == ["once"], "the cut answers made no copies"


async def test_subscriber_resumes_after_the_server_goes_away(tmp_path: Path) -> None:
    settings = make_settings(str(tmp_path))
    srv = ServerThread(settings).start()
    tenant = create_tenant(srv.url, "jump-joy")
    token = tenant.token("ann", ttl=600)
    events: list[int] = []
    port = srv.port

    async def consume() -> None:
        async for event in subscribe(srv.url, token=token):
            if event.event == "notification":
                assert event.id is not None
                events.append(event.id)

    task = asyncio.create_task(consume())
    try:
        async with Publisher(srv.url, tenant.key) as pub:
            await asyncio.sleep(0.5)
            for i in range(3):
                await pub.publish(type="system", title=f"a{i}")
        async with asyncio.timeout(10):
            while len(events) < 3:
                await asyncio.sleep(0.05)
        await asyncio.get_running_loop().run_in_executor(None, srv.stop)
        # Published into the store while no server runs.
        srv2 = ServerThread(settings)
        srv2.port, srv2.url = port, srv.url
        import uvicorn

        from tidings.server import Server

        srv2.server = Server(
            uvicorn.Config(srv2.app, host="127.0.0.1", port=port, log_level="warning"), srv2.app
        )
        import threading

        srv2.thread = threading.Thread(target=srv2.server.run, daemon=True)
        srv2.start()
        try:
            async with Publisher(srv.url, tenant.key) as pub:
                for i in range(3):
                    await pub.publish(type="system", title=f"b{i}")
            async with asyncio.timeout(20):
                while len(events) < 6:
                    await asyncio.sleep(0.05)
            assert events == [1, 2, 3, 4, 5, 6]
        finally:
            srv2.stop()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
