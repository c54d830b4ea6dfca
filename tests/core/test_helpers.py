"""The test helpers cannot hide a failure: an absence check on a dead stream fails.

A tiny loopback server answers ``GET /v1/stream`` with a 200 event stream and then breaks the
response mid-chunk (what a crashed instance looks like); the readers must say so.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from tests.cluster.sse_client import SseStream
from tests.support import Stream, StreamClosed

pytestmark = pytest.mark.anyio

HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
OPENING = b'retry: 500\n\nevent: ready\ndata: {"latest_seq": 0}\n\n'

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def chunk(body: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(body), body)


async def broken(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Opens the stream, then dies half-way through a chunk."""
    await reader.readuntil(b"\r\n\r\n")
    writer.write(HEAD + chunk(OPENING) + b"40\r\npartial")
    await writer.drain()
    writer.transport.abort()


async def garbled(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Opens the stream, then sends a frame that is not JSON, then stays open until the
    client goes."""
    await reader.readuntil(b"\r\n\r\n")
    writer.write(HEAD + chunk(OPENING) + chunk(b"id: 1\nevent: notification\ndata: {oops\n\n"))
    await writer.drain()
    await reader.read()
    writer.close()


async def serve(handler: Handler) -> AsyncIterator[str]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()


@pytest.fixture
async def dead_url() -> AsyncIterator[str]:
    async for url in serve(broken):
        yield url


@pytest.fixture
async def garbled_url() -> AsyncIterator[str]:
    async for url in serve(garbled):
        yield url


async def test_an_absence_check_on_a_dead_stream_fails(dead_url: str) -> None:
    async with Stream(dead_url, "token") as s:
        assert (await s.next()).event == "ready"
        with pytest.raises(StreamClosed):
            await s.until("marker", timeout=5)
        with pytest.raises(StreamClosed):
            await s.quiet(1.0)
        assert s.error is not None  # the transport error is kept, not swallowed


async def test_a_frame_that_does_not_parse_is_an_error(garbled_url: str) -> None:
    async with Stream(garbled_url, "token") as s:
        assert (await s.next()).event == "ready"
        with pytest.raises(StreamClosed):
            await s.next(timeout=5)
        assert "JSONDecodeError" in repr(s.error)


async def test_the_cluster_reader_records_transport_and_parse_errors(
    dead_url: str, garbled_url: str
) -> None:
    found: list[SseStream] = []
    for url in (dead_url, garbled_url):
        host, port = url.removeprefix("http://").split(":")
        s = SseStream(host, int(port), "alpha", "ann", frozenset(), "token")
        stop = asyncio.Event()
        task = asyncio.create_task(s.run(stop))
        async with asyncio.timeout(10):
            while not (s.errors or s.fatal):
                await asyncio.sleep(0.01)
        stop.set()
        task.cancel()
        found.append(s)
    dead, bad = found
    assert dead.errors and dead.connects >= 1, dead
    assert any("parse error" in f for f in bad.fatal), bad.fatal
