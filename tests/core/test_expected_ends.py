"""Expected events are not errors (issue 12, item 9): a stalled stream cut off as too slow, a
stalled stream at shutdown and a client that goes away leave no ERROR line in the server log."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import (
    ServerThread,
    Stream,
    Tenant,
    create_tenant,
    make_settings,
    publish_blobs,
)

pytestmark = pytest.mark.anyio
LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "tidings")


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def errors(self) -> list[str]:
        return [f"{r.name}: {r.getMessage()}" for r in self.records if r.levelno >= logging.ERROR]

    def closed(self, reason: str) -> bool:
        return any(f"reason={reason}" in r.getMessage() for r in self.records)


@contextlib.contextmanager
def server_log() -> Iterator[Records]:
    handler = Records()
    for name in LOGGERS:
        logging.getLogger(name).addHandler(handler)
    tidings = logging.getLogger("tidings")
    level = tidings.level
    tidings.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        tidings.setLevel(level)
        for name in LOGGERS:
            logging.getLogger(name).removeHandler(handler)


async def stalled_stream(
    port: int, token: str
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A client that sends its request, reads the headers, then never reads again."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # fills after a few frames
    sock.connect(("127.0.0.1", port))
    sock.setblocking(False)
    reader, writer = await asyncio.open_connection(sock=sock)
    request = f"GET /v1/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n"
    writer.write(request.encode())
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert b"200 OK" in head
    return reader, writer


def subscribers(srv: ServerThread) -> list[Any]:
    return [sub for state in srv.service.hub._tenants.values() for sub in state.subscribers]


async def flood_until_cut(srv: ServerThread, tenant: Tenant) -> None:
    blob = "x" * 6000
    async with httpx.AsyncClient(timeout=30) as client:
        async with asyncio.timeout(60):
            n = 0
            while srv.service.hub.stream_count:
                items = [
                    {"type": "system", "title": f"n{n + i}", "data": {"blob": blob}}
                    for i in range(50)
                ]
                n += 50
                r = await client.post(
                    f"{srv.url}/v1/notifications/batch",
                    json={"notifications": items},
                    headers=tenant.auth,
                )
                assert r.status_code == 201


async def until_closed_by_server(reader: asyncio.StreamReader) -> None:
    """Read what the server had sent until it closes the connection (uvicorn closes it right
    after it would have logged its ERROR: the marker that the log is complete)."""
    async with asyncio.timeout(30):
        with contextlib.suppress(ConnectionError):
            while await reader.read(1 << 20):
                pass


async def test_a_stalled_stream_cut_off_logs_no_error(tmp_path: Path) -> None:
    settings = make_settings(str(tmp_path), subscriber_buffer=4, send_timeout=0.5)
    srv = ServerThread(settings)  # configures uvicorn's loggers: listen after that
    with server_log() as log:
        srv.start()
        try:
            tenant = create_tenant(srv.url, "jump-joy")
            reader, writer = await stalled_stream(srv.port, tenant.token("ann"))
            await flood_until_cut(srv, tenant)
            await until_closed_by_server(reader)
            writer.close()
            assert log.closed("slow") or log.closed("overflow")
            assert log.errors() == []
        finally:
            srv.stop()
        assert log.errors() == []


async def test_shutdown_with_a_stalled_and_a_healthy_stream_logs_no_error(tmp_path: Path) -> None:
    settings = make_settings(str(tmp_path), subscriber_buffer=100_000, send_timeout=30)
    srv = ServerThread(settings)  # configures uvicorn's loggers: listen after that
    with server_log() as log:
        srv.start()
        stopped = False
        try:
            tenant = create_tenant(srv.url, "jump-joy")
            _, writer = await stalled_stream(srv.port, tenant.token("ann"))
            async with Stream(srv.url, tenant.token("sam")) as healthy:
                await healthy.next_event("ready")
                # Fill the stalled client's socket so its stream is stuck in a write.
                blob = "x" * 6000
                async with httpx.AsyncClient(timeout=30) as client:
                    for start in range(0, 600, 100):
                        await publish_blobs(client, tenant, start, blob=blob)
                await healthy.notifications(600, timeout=60)
                async with asyncio.timeout(10):  # the stalled stream is stuck in a write
                    while not any(s.sending for s in subscribers(srv)):
                        await asyncio.sleep(0.02)
                await asyncio.to_thread(srv.stop)
                stopped = True
                await healthy.next_event("bye")
            writer.close()
            assert log.closed("shutdown")
            assert log.errors() == []
        finally:
            if not stopped:
                srv.stop()


async def test_clients_that_go_away_log_no_error(tmp_path: Path) -> None:
    srv = ServerThread(make_settings(str(tmp_path)))
    with server_log() as log:
        srv.start()
        try:
            tenant = create_tenant(srv.url, "jump-joy")
            for _ in range(3):
                async with Stream(srv.url, tenant.token("ann")) as s:
                    await s.next_event("ready")
            _, writer = await stalled_stream(srv.port, tenant.token("ann"))
            writer.transport.abort()  # a reset, not a clean close
            async with asyncio.timeout(10):
                while srv.service.hub.stream_count:
                    await asyncio.sleep(0.02)
            async with httpx.AsyncClient(timeout=10) as client:  # the marker
                assert (await client.get(f"{srv.url}/healthz")).status_code == 200
            assert log.errors() == []
        finally:
            srv.stop()
        assert log.errors() == []
