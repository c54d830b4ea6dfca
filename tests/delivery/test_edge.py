"""The edge (delivery/edge.py, server.EdgeProtocol): a stream past its opening is a transport the
hub writes to. Real uvicorn, real sockets; the body is read chunk by chunk off a raw socket, so
one HTTP chunk is one ``transport.write`` of the edge."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import inspect
import json
import socket
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from tests.support import (
    ServerThread,
    Stream,
    Tenant,
    create_tenant,
    free_port,
    make_settings,
    publish_blobs,
)
from tidings.delivery.edge import write_limit
from tidings.server import EdgeProtocol

pytestmark = pytest.mark.anyio


class RawStream:
    """``GET /v1/stream`` over a raw socket, decoded HTTP chunk by HTTP chunk."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(
        cls, port: int, token: str, rcvbuf: int | None = None, extra: str = ""
    ) -> RawStream:
        sock = socket.socket()
        if rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.connect(("127.0.0.1", port))
        sock.setblocking(False)
        reader, writer = await asyncio.open_connection(sock=sock, limit=1 << 24)
        request = (
            f"GET /v1/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n{extra}\r\n"
        )
        writer.write(request.encode())
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert b"200 OK" in head and b"transfer-encoding: chunked" in head.lower()
        return cls(reader, writer)

    async def chunk(self, timeout: float = 10.0) -> bytes:
        """The next HTTP chunk (b"" at the last one)."""
        async with asyncio.timeout(timeout):
            size = int((await self.reader.readuntil(b"\r\n")).strip(), 16)
            data = await self.reader.readexactly(size + 2)
        return data[:-2]

    async def until(self, event: bytes, timeout: float = 10.0) -> list[bytes]:
        """Chunks up to and including the one holding ``event: <event>``."""
        chunks = []
        async with asyncio.timeout(timeout):
            while True:
                chunks.append(await self.chunk(timeout))
                if b"event: " + event + b"\n" in chunks[-1] or not chunks[-1]:
                    return chunks

    def close(self) -> None:
        self.writer.close()


def ids(data: bytes) -> list[int]:
    return [int(line[4:]) for line in data.split(b"\n") if line.startswith(b"id: ")]


def edges(srv: ServerThread) -> list[Any]:
    hub = srv.service.hub
    return [] if hub.edges is None else list(hub.edges.live)


async def post_batch(client: httpx.AsyncClient, srv: ServerThread, tenant: Tenant, n: int) -> None:
    items = [{"type": "system", "title": f"n{i}"} for i in range(n)]
    r = await client.post(
        f"{srv.url}/v1/notifications/batch", json={"notifications": items}, headers=tenant.auth
    )
    assert r.status_code == 201, r.text


def test_the_uvicorn_internals_the_edge_relies_on() -> None:
    """EdgeProtocol subclasses uvicorn's httptools protocol and uses its internals: a uvicorn
    upgrade that changes them must fail here, loudly, not in production."""
    assert uvicorn.__version__ == "0.54.0", "re-check tidings.server.EdgeProtocol, then re-pin"
    for name in ("on_headers_complete", "data_received", "connection_lost", "shutdown"):
        assert callable(getattr(HttpToolsProtocol, name))
    for name in ("pause_writing", "resume_writing"):
        assert callable(getattr(HttpToolsProtocol, name))
    init = inspect.getsource(HttpToolsProtocol.__init__)
    for attr in ("self.cycle", "self.scope", "self.headers", "self.flow"):
        assert attr in init
    run_asgi = inspect.getsource(RequestResponseCycle.run_asgi)
    assert "not self.response_complete and not self.disconnected" in run_asgi
    cycle = inspect.getsource(RequestResponseCycle.__init__)
    assert "self.disconnected = False" in cycle and "self.chunked_encoding" in cycle
    send = inspect.getsource(RequestResponseCycle.send)
    assert 'b"%x\\r\\n" % len(body)' in send  # the chunk framing the edge writes too
    lost = inspect.getsource(HttpToolsProtocol.connection_lost)
    assert "if self.flow is not None" in lost and "if self.cycle" in lost  # both dropped
    headers_complete = inspect.getsource(HttpToolsProtocol.on_headers_complete)
    assert "self.cycle = RequestResponseCycle(" in headers_complete
    assert 'self.scope["path"] = full_path' in headers_complete


async def test_a_batch_of_100_reaches_a_stream_in_one_write(tmp_path: Path) -> None:
    srv = ServerThread(make_settings(str(tmp_path))).start()
    try:
        tenant = create_tenant(srv.url, "jump-joy")
        raw = await RawStream.open(srv.port, tenant.token("ann"))
        await raw.until(b"ready")
        async with asyncio.timeout(5):
            while not edges(srv):
                await asyncio.sleep(0.01)
        async with httpx.AsyncClient(timeout=30) as client:
            await post_batch(client, srv, tenant, 100)
            first = await raw.chunk()
            assert ids(first) == list(range(1, 101))  # all 100 frames, one chunk: one write
            await post_batch(client, srv, tenant, 1)
            assert ids(await raw.chunk()) == [101]
        raw.close()
    finally:
        srv.stop()


async def test_streams_opened_and_closed_leave_no_reference_cycle(tmp_path: Path) -> None:
    """A stream's protocol, request state, edge and subscriber are freed by reference counting
    when it is handed over and when it ends, on both ways in (the edge opener, and the route
    for a request the opener leaves to it): nothing of them waits for the cyclic GC, which
    at thousands of connects a second costs CPU and holds memory (docs/performance.md)."""
    srv = ServerThread(make_settings(str(tmp_path))).start()
    try:
        tenant = create_tenant(srv.url, "jump-joy")
        gc.collect()
        gc.disable()  # garbage in cycles stays until the census below
        try:
            streams = [await RawStream.open(srv.port, tenant.token(f"u{i}")) for i in range(5)]
            # ``Expect`` is not plain: the opener leaves it to the route (the ASGI path).
            routed = await RawStream.open(srv.port, tenant.token("r"), extra="Expect: x\r\n")
            for stream in [*streams, routed]:
                await stream.until(b"ready")
            async with asyncio.timeout(5):
                while len(edges(srv)) < 6:
                    await asyncio.sleep(0.01)
            for stream in [*streams, routed]:
                stream.close()
            async with asyncio.timeout(5):
                while edges(srv) or srv.service.hub.stream_count:
                    await asyncio.sleep(0.01)
            gc.set_debug(gc.DEBUG_SAVEALL)
            gc.collect()
            ours = sorted(
                {
                    f"{type(o).__module__}.{type(o).__qualname__}"
                    for o in gc.garbage
                    if type(o).__module__.startswith(("tidings.", "uvicorn."))
                }
            )
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
            gc.enable()
        assert ours == []
    finally:
        srv.stop()


async def test_ping_only_when_idle(tmp_path: Path) -> None:
    srv = ServerThread(make_settings(str(tmp_path), keepalive=1.0)).start()
    try:
        tenant = create_tenant(srv.url, "jump-joy")
        raw = await RawStream.open(srv.port, tenant.token("ann"))
        await raw.until(b"ready")
        loop = asyncio.get_running_loop()
        async with httpx.AsyncClient(timeout=30) as client:
            # Busy for three keep-alive periods, a notification at a time: no ping among them.
            start = loop.time()
            seq = 0
            while loop.time() - start < 3.0:
                await post_batch(client, srv, tenant, 1)
                seq += 1
                chunk = await raw.chunk()
                assert ids(chunk) == [seq], chunk
            # Idle: a ping within the keep-alive (plus one tick of the clock).
            idle = loop.time()
            assert await raw.chunk(timeout=5) == b": ping\n\n"
            assert loop.time() - idle >= 1.0 - 0.05
            await post_batch(client, srv, tenant, 1)
            assert ids(await raw.chunk()) == [seq + 1]
        raw.close()
    finally:
        srv.stop()


async def test_a_token_expiring_mid_stream_under_load(tmp_path: Path) -> None:
    srv = ServerThread(make_settings(str(tmp_path))).start()
    try:
        tenant = create_tenant(srv.url, "jump-joy")
        short = await RawStream.open(srv.port, tenant.token("ann", ttl=2))
        await short.until(b"ready")
        async with (
            Stream(srv.url, tenant.token("sam")) as long,
            httpx.AsyncClient(timeout=30) as client,
        ):
            await long.next_event("ready")
            published = 0
            seen: list[int] = []

            async def load() -> None:
                nonlocal published
                while True:
                    await post_batch(client, srv, tenant, 5)
                    published += 5

            async with asyncio.TaskGroup() as tg:
                pump = tg.create_task(load())
                chunks = await short.until(b"expired", timeout=15)
                pump.cancel()
            body = b"".join(chunks)
            for chunk in chunks:
                seen.extend(ids(chunk))
            assert seen == list(range(1, len(seen) + 1))  # in order, none twice, up to the end
            assert b'event: expired\ndata: {"reason":"token_expired"}' in body
            assert await short.chunk() == b""  # the response ends, then the connection
            with contextlib.suppress(ConnectionError):
                assert await asyncio.wait_for(short.reader.read(), 5) == b""
            got = await long.notifications(published, timeout=30)
            assert [f.id for f in got] == list(range(1, published + 1))
        short.close()
    finally:
        srv.stop()


async def test_a_reader_that_stops_reading_is_bounded_and_catches_up(tmp_path: Path) -> None:
    settings = make_settings(str(tmp_path), subscriber_buffer=16, send_timeout=60)
    srv = ServerThread(settings).start()
    try:
        tenant = create_tenant(srv.url, "jump-joy")
        stalled = await RawStream.open(srv.port, tenant.token("ann"), rcvbuf=4096)
        await stalled.until(b"ready")
        blob = "x" * 6000
        async with (
            Stream(srv.url, tenant.token("sam")) as healthy,
            httpx.AsyncClient(timeout=30) as client,
        ):
            await healthy.next_event("ready")
            (edge,) = [e for e in edges(srv) if e.sub.user == "ann"]
            total = 0
            async with asyncio.timeout(60):  # until the kernel's buffers are full too
                while not edge.sub.sending:
                    await publish_blobs(client, tenant, total, blob=blob)
                    total += 100
                    got = await healthy.notifications(100, timeout=30)
                    assert [f.id for f in got] == list(range(total - 99, total + 1))
            # The stalled stream is lagging, and holds no more than its bound meanwhile.
            assert edge.sub.sending and edge.sub.lagging
            assert len(edge.sub.buffer) <= 16 and edge.pending is None
            largest_write = 200 * (6000 + 200)  # a page of the catch-up
            assert edge.transport.get_write_buffer_size() <= write_limit(16) + largest_write
            await post_batch(client, srv, tenant, 100)  # not written to it: it lags
            total += 100
            assert [f.id for f in await healthy.notifications(100)][-1] == total
            assert edge.transport.get_write_buffer_size() <= write_limit(16) + largest_write
            # It reads again: it catches up from the store, in order, each once, and goes live.
            seen: list[int] = []
            while len(seen) < total:
                seen.extend(ids(await stalled.chunk(timeout=30)))
            assert seen == list(range(1, total + 1))
            await post_batch(client, srv, tenant, 1)
            while (more := ids(await stalled.chunk())) == []:
                pass
            assert more == [total + 1]
            assert not edge.sub.lagging and srv.service.hub.stream_count == 2
        stalled.close()
    finally:
        srv.stop()


async def test_without_the_edge_protocol_streams_run_on_the_asgi_path(tmp_path: Path) -> None:
    """A plain ``uvicorn tidings.app:…`` run (no ``http=EdgeProtocol``) still serves streams."""
    srv = ServerThread(make_settings(str(tmp_path)))
    srv.server.config.http = "httptools"
    srv.start()
    try:
        tenant = create_tenant(srv.url, "jump-joy")
        async with (
            Stream(srv.url, tenant.token("ann")) as s,
            httpx.AsyncClient(timeout=30) as client,
        ):
            await s.next_event("ready")
            await post_batch(client, srv, tenant, 3)
            assert [f.id for f in await s.notifications(3)] == [1, 2, 3]
            assert edges(srv) == []
            (sub,) = list(srv.service.hub._tenants["jump-joy"].subscribers)
            assert sub.edge is None
    finally:
        srv.stop()
    assert srv.server.config.http_protocol_class is HttpToolsProtocol


async def test_a_reader_stuck_past_the_send_timeout_is_cut_off_with_bye(tmp_path: Path) -> None:
    """Its ``bye`` is queued behind what it left unread (the documented ``overflow`` reason),
    then the stream ends; the others are unharmed and the hub forgets it at once."""
    settings = make_settings(str(tmp_path), subscriber_buffer=4, send_timeout=2)
    srv = ServerThread(settings).start()
    try:
        tenant = create_tenant(srv.url, "jump-joy")
        stalled = await RawStream.open(srv.port, tenant.token("ann"), rcvbuf=4096)
        await stalled.until(b"ready")
        blob = "x" * 6000
        total = 0
        async with (
            Stream(srv.url, tenant.token("sam")) as healthy,
            httpx.AsyncClient(timeout=30) as client,
        ):
            await healthy.next_event("ready")
            async with asyncio.timeout(60):
                while srv.service.hub.stream_count == 2:
                    await publish_blobs(client, tenant, total, count=50, blob=blob)
                    total += 50
                    await asyncio.sleep(0.1)
            got = await healthy.notifications(total, timeout=60)
            assert [f.id for f in got] == list(range(1, total + 1))
        # It reads again, in time: what it was sent, then bye, then the end of the response.
        chunks = await stalled.until(b"bye", timeout=30)
        seen = [i for c in chunks for i in ids(c)]
        assert seen == list(range(1, len(seen) + 1))
        assert b'event: bye\ndata: {"reason":"overflow"}' in chunks[-1]
        assert await stalled.chunk() == b""
        stalled.close()
    finally:
        srv.stop()


async def _scope_addresses(http: Any, bind: dict[str, Any], client: httpx.AsyncClient) -> Any:
    """``[server, client]`` of a request's ASGI scope as a uvicorn run with ``http`` sees it."""

    async def echo(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = json.dumps([scope["server"], scope["client"]]).encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    server = uvicorn.Server(
        uvicorn.Config(echo, http=http, loop="uvloop", lifespan="off", log_level="error", **bind)
    )
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(250):
            if server.started:
                break
            await asyncio.sleep(0.02)
        assert server.started
        if "uds" in bind:
            url = "http://localhost/"
        elif bind["host"] == "::1":
            url = f"http://[::1]:{bind['port']}/"
        else:
            url = f"http://127.0.0.1:{bind['port']}/"
        r = await asyncio.wait_for(client.get(url), 10)
        return r.json()
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


@pytest.mark.parametrize("family", ["ipv4", "ipv6", "unix"])
async def test_the_edge_protocol_gives_the_scope_uvicorns_addresses(
    family: str, tmp_path: Path
) -> None:
    """``EdgeProtocol.connection_made`` reads the addresses itself (cheaper than uvicorn's
    helpers under uvloop): the ASGI scope's ``server`` and ``client`` are uvicorn's."""
    connection_made = inspect.getsource(HttpToolsProtocol.connection_made)
    for line in ("self.server = get_local_addr(transport)", "self.client = get_remote_addr("):
        assert line in connection_made  # what EdgeProtocol.connection_made stands in for
    seen: list[Any] = []
    for http in (EdgeProtocol, "httptools"):
        if family == "unix":
            bind: dict[str, Any] = {"uds": str(tmp_path / f"s{len(seen)}.sock")}
            transport = httpx.AsyncHTTPTransport(uds=bind["uds"])
        else:
            bind = {"host": "127.0.0.1" if family == "ipv4" else "::1", "port": free_port()}
            transport = httpx.AsyncHTTPTransport()
        async with httpx.AsyncClient(transport=transport, timeout=10) as client:
            seen.append(await _scope_addresses(http, bind, client))
    (ours_server, ours_client), (theirs_server, theirs_client) = seen
    if family == "unix":
        assert ours_server[1] is None and theirs_server[1] is None
        assert ours_server[0].endswith(".sock") and theirs_server[0].endswith(".sock")
        assert ours_client == theirs_client
    else:
        assert ours_server[0] == theirs_server[0] and ours_server[1] != theirs_server[1]
        assert ours_client[0] == theirs_client[0] and isinstance(ours_client[1], int)
