"""A reconnect storm against one process: 2,000 streams dropped at once and reopened at once
with ``Last-Event-ID`` while notifications keep coming; each gets every one exactly once, in
order (invariant 3), and the reopening finds the hub's memory (issue 8 item 5)."""

from __future__ import annotations

import asyncio
import contextlib
import resource
from pathlib import Path

import httpx
import pytest

from tests.support import ServerThread, create_tenant, make_settings

pytestmark = pytest.mark.anyio

STREAMS = 2000
USERS = 200  # ten streams each: a user's view serves the rest of their streams
IN_FLIGHT = 200  # connection attempts at once


class Raw:
    """One logical stream over one connection at a time; the ids it was sent, in order."""

    def __init__(self, port: int, token: str) -> None:
        self.port = port
        self.token = token
        self.ids: list[int] = []
        self.events: list[str] = []
        self.writer: asyncio.StreamWriter | None = None
        self.task: asyncio.Task[None] | None = None

    async def open(self, gate: asyncio.Semaphore) -> None:
        async with gate:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            resume = f"Last-Event-ID: {self.ids[-1]}\r\n" if self.ids else ""
            head = f"GET /v1/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {self.token}\r\n"
            writer.write(f"{head}{resume}\r\n".encode())
            status = await reader.readuntil(b"\r\n\r\n")
            assert b" 200 " in status.split(b"\r\n", 1)[0], status
            opened = asyncio.get_running_loop().create_future()
            self.writer = writer
            self.task = asyncio.create_task(self._read(reader, opened))
            await opened

    async def _read(self, reader: asyncio.StreamReader, opened: asyncio.Future[None]) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while True:
                size = int((await reader.readuntil(b"\r\n")).strip(), 16)
                chunk = (await reader.readexactly(size + 2))[:-2]
                for frame in chunk.split(b"\n\n"):  # a write holds whole frames
                    fields = dict(line.split(b": ", 1) for line in frame.split(b"\n") if line)
                    event = fields.get(b"event")
                    if event == b"notification":
                        self.ids.append(int(fields[b"id"]))
                    elif event is not None:
                        self.events.append(event.decode())
                        if not opened.done():
                            opened.set_result(None)
                if not size:
                    return

    async def drop(self) -> None:
        if self.writer is not None:
            self.writer.transport.abort()
        if self.task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self.task


@pytest.mark.timeout(240)
async def test_a_reconnect_storm_of_2000_streams_loses_and_doubles_nothing(
    tmp_path: Path,
) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 3 * STREAMS + 1000)), hard))
    settings = make_settings(
        str(tmp_path), max_streams_per_tenant=STREAMS + 10, max_streams_per_user=STREAMS
    )
    srv = ServerThread(settings).start()
    streams: list[Raw] = []
    try:
        tenant = create_tenant(srv.url, "jump-joy")
        tokens = [srv.service.mint_token("jump-joy", f"u{i}")[0] for i in range(USERS)]
        streams = [Raw(srv.port, tokens[i % USERS]) for i in range(STREAMS)]
        gate = asyncio.Semaphore(IN_FLIGHT)
        async with asyncio.timeout(120):
            await asyncio.gather(*(s.open(gate) for s in streams))
        published = 0
        async with httpx.AsyncClient(timeout=30) as client:

            async def publish(n: int) -> None:
                nonlocal published
                items = [{"type": "system", "title": f"n{published + i}"} for i in range(n)]
                r = await client.post(
                    f"{srv.url}/v1/notifications/batch",
                    json={"notifications": items},
                    headers=tenant.auth,
                )
                assert r.status_code == 201, r.text
                published += n

            stop = asyncio.Event()

            async def keep_publishing() -> None:
                while not stop.is_set():  # each publish is counted once answered
                    await publish(5)
                    await asyncio.sleep(0.1)

            await publish(10)
            async with asyncio.TaskGroup() as tg:
                tg.create_task(keep_publishing())
                await asyncio.sleep(0.5)
                await asyncio.gather(*(s.drop() for s in streams))  # every stream at once
                async with asyncio.timeout(120):
                    await asyncio.gather(*(s.open(gate) for s in streams))
                await asyncio.sleep(0.3)
                stop.set()
            await publish(5)
        expected = list(range(1, published + 1))
        async with asyncio.timeout(60):
            while any(len(s.ids) < published for s in streams):
                await asyncio.sleep(0.1)
        for s in streams:
            assert s.ids == expected  # every one, once, in order, across both connections
            assert s.events == ["ready", "ready"], s.events  # resumed, never reset
    finally:
        for s in streams:
            await s.drop()
        srv.stop()
