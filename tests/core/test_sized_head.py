"""The server's HTTP protocol writes a sized response's head with its body (``server.py``,
``SizedHeadCycle``): one ``write`` (one TCP segment, one wake-up of the client) where uvicorn
makes two; a head without a length (a stream) still goes at once; HEAD answers and an app that
fails after starting its answer behave as under uvicorn.

The protocol runs over a transport that records its writes (asyncio's transport interface: the
only stand-in here), with real ASGI apps; the same answers over a real socket are checked by
every other test of the suite, which all run on this protocol."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import uvicorn
from uvicorn.server import ServerState

from tidings.server import EdgeProtocol

pytestmark = pytest.mark.anyio
BODY = b'{"ok":true}'


class Recording(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 50000)}.get(
            name, default
        )

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.protocol = protocol

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass


async def sized(scope: Any, receive: Any, send: Any) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(BODY))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": BODY})


async def streamed(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await asyncio.sleep(0.05)
    await send({"type": "http.response.body", "body": b"part", "more_body": True})
    await send({"type": "http.response.body", "body": b""})


async def fails_after_start(scope: Any, receive: Any, send: Any) -> None:
    headers = [(b"content-length", b"10")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    raise RuntimeError("broken after the head")


async def answer(app: Any, request: bytes, *, wait: float = 0.3) -> Recording:
    config = uvicorn.Config(app, http=EdgeProtocol, log_level="critical", lifespan="off")
    protocol = EdgeProtocol(config=config, server_state=ServerState(), app_state={})
    transport = Recording()
    protocol.connection_made(transport)
    protocol.data_received(request)
    await asyncio.sleep(wait)
    return transport


GET = b"GET /x HTTP/1.1\r\nHost: t\r\n\r\n"


async def test_a_sized_answer_is_one_write() -> None:
    transport = await answer(sized, GET)
    assert len(transport.writes) == 1, transport.writes
    head, _, body = transport.writes[0].partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK") and b"content-length: 11" in head
    assert body == BODY


async def test_a_head_request_gets_its_head() -> None:
    transport = await answer(sized, b"HEAD /x HTTP/1.1\r\nHost: t\r\n\r\n")
    assert len(transport.writes) == 1, transport.writes
    assert transport.writes[0].startswith(b"HTTP/1.1 200 OK")
    assert transport.writes[0].endswith(b"\r\n\r\n")  # and no body


async def test_a_stream_s_head_goes_at_once() -> None:
    transport = await answer(streamed, GET, wait=0.02)
    assert len(transport.writes) == 1 and b"transfer-encoding: chunked" in transport.writes[0]
    await asyncio.sleep(0.2)
    assert transport.writes[1:] == [b"4\r\npart\r\n", b"0\r\n\r\n"], transport.writes


async def test_an_app_failing_after_its_head_closes_the_connection() -> None:
    transport = await answer(fails_after_start, GET)
    assert transport.closed
    assert not any(w.startswith(b"HTTP/1.1 200") for w in transport.writes), transport.writes


async def sized_after_a_pause(scope: Any, receive: Any, send: Any) -> None:
    headers = [(b"content-length", b"%d" % len(BODY))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await asyncio.sleep(0.1)
    await send({"type": "http.response.body", "body": BODY})


async def test_a_client_gone_before_the_body_gets_nothing_and_nothing_fails() -> None:
    """The client leaves between the head and the body: nothing is written to the closed
    transport (the held head is dropped) and the app's send does not raise."""
    config = uvicorn.Config(sized_after_a_pause, http=EdgeProtocol, log_level="critical")
    protocol = EdgeProtocol(config=config, server_state=ServerState(), app_state={})
    transport = Recording()
    protocol.connection_made(transport)
    protocol.data_received(GET)
    await asyncio.sleep(0.03)
    transport.closed = True
    protocol.connection_lost(None)
    await asyncio.sleep(0.2)
    assert transport.writes == []
