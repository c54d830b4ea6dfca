"""Streams opened below the framework (``tidings.api.opener``, ``tidings.server.EdgeProtocol``).

The properties: the edge protocol answers exactly as the route does under plain uvicorn (every
refusal, status, headers and problem+json body, and the stream's own head and opening), and a
burst of first connects shares read transactions (one for the muted types, one for the views
of a batch) with nothing lost or doubled afterwards."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from tests.support import (
    SECRET,
    PlainServer,
    ServerThread,
    access_lines,
    create_tenant,
    exchange,
    make_settings,
    open_service,
)
from tidings import auth
from tidings.channels import profiles
from tidings.channels.preferences import UserPreferences
from tidings.channels.runtime import Channels
from tidings.domain.principals import Principal
from tidings.server import AppProtocol

HOST = "https://rentals.example"


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[ServerThread, ServerThread]]:
    """The same app twice: on the edge protocol, and under plain uvicorn."""
    servers: list[ServerThread] = []
    try:
        for name, kind in (("edge", ServerThread), ("plain", PlainServer)):
            (tmp_path / name).mkdir()
            settings = make_settings(
                str(tmp_path / name), cors_origins=HOST, max_streams_per_user=1
            )
            servers.append(kind(settings).start())
        yield servers[0], servers[1]
    finally:
        for srv in servers:
            srv.stop()


def _expired(user: str) -> str:
    then = datetime.now(UTC) - timedelta(hours=2)
    return auth.mint(SECRET, tenant="jump-joy", user=user, ttl=600, now=then)[0]


def _cases(token: str, key: str) -> list[tuple[str, dict[str, str], dict[str, str]]]:
    """(path, query, headers) of requests the route refuses."""
    bearer = {"Authorization": f"Bearer {token}"}
    return [
        ("/v1/stream", {}, {}),
        ("/v1/stream", {}, {"Origin": HOST}),
        ("/v1/stream", {}, {"Authorization": f"Bearer {key}"}),
        ("/v1/stream", {}, {"Authorization": f"Basic {token}"}),
        ("/v1/stream", {"access_token": token[:-2] + "xx"}, {"Origin": HOST}),
        ("/v1/stream", {"access_token": _expired("ann")}, {}),
        ("/v1/stream", {"access_token": "not-a-token"}, {}),
        ("/v1/stream", {"access_token": "x" * 5000}, {}),
        ("/v1/stream", {}, {**bearer, "Last-Event-ID": "abc", "Origin": "https://evil.example"}),
        ("/v1/stream", {"last_event_id": "1" * 25}, bearer),
        ("/v1/stream", {"last_event_id": "-1"}, bearer),
        ("/sse/notifications", {"token": token[:-1]}, {}),
        ("/sse/notifications", {"token": token, "last_event_id": "x"}, {}),
    ]


def _headers(r: httpx.Response) -> list[tuple[str, str]]:
    return [h for h in r.headers.multi_items() if h[0] != "date"]


def _answer(r: httpx.Response) -> tuple[int, list[tuple[str, str]], bytes]:
    return r.status_code, _headers(r), r.content


def _opened(srv: ServerThread) -> int:
    opener = getattr(srv.app.state, "edge_opener", None)
    return 0 if opener is None else int(opener.opened)


def test_every_refusal_is_the_routes_own_byte_for_byte(
    pair: tuple[ServerThread, ServerThread],
) -> None:
    edge, plain = pair
    answers: dict[str, list[Any]] = {}
    for srv, name in ((edge, "edge"), (plain, "plain")):
        tenant = create_tenant(srv.url, "jump-joy")
        token = srv.service.mint_token("jump-joy", "ann")[0]
        with httpx.Client(base_url=srv.url, timeout=10) as client:
            got = [
                _answer(client.get(path, params=query, headers=headers))
                for path, query, headers in _cases(token, tenant.key)
            ]
            bearer = {"Authorization": f"Bearer {token}", "Origin": HOST}
            with client.stream("GET", "/v1/stream", headers=bearer) as first:  # the user's one
                chunks = first.iter_raw()  # kept: a dropped iterator closes the response
                head = next(chunks)
                got.append((first.status_code, _headers(first), head))
                got.append(_answer(client.get("/v1/stream", headers=bearer)))  # 429: a second
            srv.service.hub.closing = True  # shutting down: 503
            got.append(_answer(client.get("/v1/stream", headers=bearer)))
            srv.service.hub.closing = False
        answers[name] = got
    statuses = [a[0] for a in answers["edge"]]
    assert statuses == [401] * 7 + [422, 400, 422, 400, 401, 400, 200, 429, 503]
    for mine, theirs in zip(answers["edge"], answers["plain"], strict=True):
        assert mine == theirs
    assert _opened(edge) == 1, "the edge opened the stream itself, and only that one"


def test_a_legacy_stream_opens_below_the_framework_alike(
    pair: tuple[ServerThread, ServerThread],
) -> None:
    edge, plain = pair
    heads = []
    for srv in (edge, plain):
        create_tenant(srv.url, "jump-joy")
        token = srv.service.mint_token("jump-joy", "bob")[0]
        with httpx.stream(
            "GET", f"{srv.url}/sse/notifications", params={"token": token}, timeout=10
        ) as r:
            heads.append((r.status_code, _headers(r), next(r.iter_raw())))
    assert heads[0] == heads[1]
    assert heads[0][2].endswith(b'data: {"type":"connected"}\n\n')
    assert _opened(edge) == 1


async def _open(port: int, token: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"GET /v1/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n".encode()
    )
    seen = b""
    while b"event: ready" not in seen:
        data = await asyncio.wait_for(reader.read(65536), 10)
        assert data, seen
        seen += data
    while not seen.endswith(b"\n\n\r\n"):  # the whole opening chunk
        seen += await asyncio.wait_for(reader.read(65536), 10)
    return reader, writer, seen


async def _until(reader: asyncio.StreamReader, marker: bytes, seen: bytes) -> bytes:
    while marker not in seen:
        data = await asyncio.wait_for(reader.read(65536), 10)
        assert data, seen
        seen += data
    return seen


def test_a_burst_of_first_connects_shares_read_transactions(tmp_path: Path) -> None:
    n = 60
    srv = ServerThread(make_settings(str(tmp_path), max_streams_per_tenant=n + 5)).start()
    try:
        tenant = create_tenant(srv.url, "jump-joy")
        for i in range(3):  # a history: every view is read from the store
            r = httpx.post(
                f"{srv.url}/v1/notifications",
                json={"type": "system", "title": f"n{i}"},
                headers=tenant.auth,
                timeout=10,
            )
            assert r.status_code == 201, r.text
        service = srv.service
        tokens = [service.mint_token("jump-joy", f"u{i}")[0] for i in range(n)]
        reads = [0]
        real_read = service.store.read

        def counting_read() -> AbstractAsyncContextManager[Any]:
            reads[0] += 1
            opened: AbstractAsyncContextManager[Any] = real_read()
            return opened

        async def burst() -> list[bytes]:
            service.store.read = counting_read
            try:
                streams = await asyncio.gather(*(_open(srv.port, t) for t in tokens))
            finally:
                service.store.read = real_read
            r = httpx.post(
                f"{srv.url}/v1/notifications",
                json={"type": "system", "title": "marker"},
                headers=tenant.auth,
                timeout=10,
            )
            assert r.status_code == 201, r.text
            got = [await _until(reader, b"id: 4\n", seen) for reader, _, seen in streams]
            for _, writer, _ in streams:
                writer.close()
            return got

        got = asyncio.run(burst())
        opener = srv.app.state.edge_opener
        assert opener.opened == n
        assert opener.batches < n / 2, "streams that arrive together are opened together"
        # Per batch: the muted types (one read for all its users) and the views (one); the
        # rest is background work (the presence heartbeat, the hub's periodic catch-up). One
        # by one it was two reads per stream.
        assert reads[0] < n / 4, (reads[0], opener.batches)
        for data in got:
            assert b'"unread":{"count":3,"more":false},"latest_seq":3' in data
            assert b"id: 3\nevent: ready\n" in data
            assert data.count(b"event: notification") == 1, "the live marker, once, alone"
            assert data.count(b"id: 4\n") == 1
    finally:
        srv.stop()


@pytest.mark.anyio
async def test_muted_types_missed_together_are_read_together(tmp_path: Path) -> None:
    async with open_service(make_settings(str(tmp_path))) as service:
        await service.create_tenant("jump-joy", "Jump")
        async with service.store.write() as conn:
            prefs = UserPreferences.model_validate(
                {"types": {"booking_created": {"in_app": False}}}
            )
            await profiles.save(conn, "jump-joy", "ann", now=datetime.now(UTC), prefs=prefs)
        channels = Channels(service)
        expires = datetime.now(UTC) + timedelta(hours=1)
        users = ["ann", "bob", "cy", "ann"]
        reads = [0]
        real_read = service.store.read

        def counting_read() -> AbstractAsyncContextManager[Any]:
            reads[0] += 1
            return real_read()

        service.store.read = counting_read  # type: ignore[method-assign, assignment]
        muted = await asyncio.gather(
            *(
                channels.muted_types(
                    Principal(tenant="jump-joy", user=u, roles=frozenset(), expires_at=expires)
                )
                for u in users
            )
        )
        assert muted == [{"booking_created"}, frozenset(), frozenset(), {"booking_created"}]
        assert reads[0] == 1, "one read transaction for the four lookups"
        again = await channels.muted_types(
            Principal(tenant="jump-joy", user="cy", roles=frozenset(), expires_at=expires)
        )
        assert again == frozenset() and reads[0] == 1, "kept"


@pytest.mark.anyio
async def test_a_connect_storm_of_new_users_is_noted_in_one_write(tmp_path: Path) -> None:
    """The presence heartbeat records the e-mail and roles of every new user's token that has
    any: all of them in one write transaction (not two statements per user), a stored
    profile's preferences kept, nothing written again for users it has seen as they are."""
    async with open_service(make_settings(str(tmp_path))) as service:
        await service.create_tenant("jump-joy", "Jump")
        mute = UserPreferences.model_validate({"types": {"booking_created": {"in_app": False}}})
        async with service.store.write() as conn:
            await profiles.save(conn, "jump-joy", "u0", now=datetime.now(UTC), prefs=mute)
        channels = Channels(service)
        expires = datetime.now(UTC) + timedelta(hours=1)
        subs = []
        for i in range(30):
            email = f"u{i}@example.com" if i % 2 else None
            roles = frozenset({"staff"}) if i % 3 == 0 else frozenset()
            p = Principal(
                tenant="jump-joy", user=f"u{i}", roles=roles, expires_at=expires, email=email
            )
            subs.append(await service.hub.subscribe(p))
        writes = [0]
        real_write = service.store.write

        def counting_write() -> AbstractAsyncContextManager[Any]:
            writes[0] += 1
            opened: AbstractAsyncContextManager[Any] = real_write()
            return opened

        service.store.write = counting_write  # type: ignore[method-assign, assignment]
        seen: list[str] = []

        def on_execute(*args: Any) -> None:
            seen.append(str(args[2]))

        engine = service.store.engine.sync_engine
        event.listen(engine, "before_cursor_execute", on_execute)
        try:
            await channels.presence_beat()
        finally:
            event.remove(engine, "before_cursor_execute", on_execute)
        # the new users' profiles, and the presence table's first clean-up (no rows: nobody
        # here has a push subscription, and only push asks who is live)
        assert writes[0] == 2, "the new users' profiles, then the presence table"
        saved = [s for s in seen if s.startswith("INSERT INTO channel_users")]
        assert len(saved) == 2, "one statement with an e-mail, one without"
        await channels.presence_beat()
        assert writes[0] == 2, "seen as they are, and no presence row to refresh: no write"
        service.store.write = real_write  # type: ignore[method-assign]
        async with service.store.read() as conn:
            stored = await profiles.get_many(conn, "jump-joy", [f"u{i}" for i in range(30)])
        # A user whose token says nothing a row would hold (no e-mail, no roles) and who has
        # no row gets none: it would read exactly as having none (channels/profiles.py).
        silent = {f"u{i}" for i in range(30) if i % 2 == 0 and i % 3 != 0}
        assert len(silent) == 10 and set(stored) == {f"u{i}" for i in range(30)} - silent
        for i in range(30):
            profile = stored.get(f"u{i}")
            if profile is None:
                continue
            assert profile.email == (f"u{i}@example.com" if i % 2 else None)
            assert profile.roles == (("staff",) if i % 3 == 0 else ())
        assert stored["u0"].prefs == mute, "a stored profile keeps its preferences"
        for sub in subs:
            service.hub.unsubscribe(sub)


def test_clients_gone_during_their_opening_leave_no_subscriber(tmp_path: Path) -> None:
    srv = ServerThread(make_settings(str(tmp_path))).start()
    try:
        create_tenant(srv.url, "jump-joy")
        service = srv.service
        tokens = [service.mint_token("jump-joy", f"g{i}")[0] for i in range(20)]

        async def drop_all() -> None:
            for token in tokens:  # the request, then gone at once (before any answer is read)
                _, writer = await asyncio.open_connection("127.0.0.1", srv.port)
                request = f"GET /v1/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}"
                writer.write(f"{request}\r\n\r\n".encode())
                writer.transport.abort()
            _, writer, seen = await _open(srv.port, tokens[0])  # the server still answers
            assert b"event: ready" in seen
            writer.close()

        asyncio.run(drop_all())
        deadline = time.monotonic() + 10
        while service.hub.stream_count and time.monotonic() < deadline:
            time.sleep(0.05)
        assert service.hub.stream_count == 0, "every subscriber of a gone client was dropped"
    finally:
        srv.stop()


# Raw requests the edge protocol reads and then leaves to uvicorn (each ends the connection):
# none is a plain stream request, so each must be answered exactly as under plain uvicorn.
_NOT_OPENED = [
    b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    b"GET /v1/stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    b"GET /v1/stream?access_token=a.b.c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    b"POST /v1/stream HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    b"GET /v1/stream HTTP/1.0\r\nHost: x\r\n\r\n",
    b"GET /v1/stream%3F HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nHost: x\r\n\rX",  # malformed at its last byte
    # pipelined: a plain request, then a refused stream request, in one packet
    b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    b"GET /v1/stream?access_token=a.b.c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    # a head longer than the edge protocol reads before it decides
    b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: "
    + b"a" * 70_000
    + b"\r\nConnection: close\r\n\r\n",
]


def _without_date(data: bytes) -> bytes:
    return b"\r\n".join(line for line in data.split(b"\r\n") if not line.startswith(b"date: "))


@pytest.mark.parametrize("size", [1 << 20, 1, 7])
def test_what_the_edge_leaves_to_uvicorn_is_answered_as_uvicorn_answers(
    pair: tuple[ServerThread, ServerThread], size: int
) -> None:
    """A connection's first request is read by the edge protocol itself; every one it does not
    open (any method, version, path, a malformed or over-long head, a pipelined pair), in one
    piece or arriving a byte at a time, is answered byte for byte as plain uvicorn answers."""
    edge, plain = pair

    async def both() -> list[list[bytes]]:
        return [
            [_without_date(await exchange(srv.port, r, size)) for r in _NOT_OPENED]
            for srv in (edge, plain)
        ]

    mine, theirs = asyncio.run(both())
    for request, a, b in zip(_NOT_OPENED, mine, theirs, strict=True):
        assert a == b, request[:60]
        assert a.startswith(b"HTTP/1.1 "), (request[:60], a[:80])
    assert _opened(edge) == 0


def test_a_stream_request_arriving_a_byte_at_a_time_is_opened_below_the_framework(
    pair: tuple[ServerThread, ServerThread], monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a new connection the edge protocol opens the stream itself: no uvicorn protocol is
    made for it (counted), and its head is the route's."""
    edge, plain = pair
    made = [0]
    real_init = AppProtocol.__init__

    def counted(self: AppProtocol, *args: Any, **kwargs: Any) -> None:
        made[0] += 1
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(AppProtocol, "__init__", counted)
    heads = []
    for srv in (edge, plain):
        create_tenant(srv.url, "jump-joy")
        token = srv.service.mint_token("jump-joy", "ann")[0]
        request = f"GET /v1/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n"

        async def trickle(port: int = srv.port, data: bytes = request.encode()) -> bytes:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                for at in range(len(data)):
                    writer.write(data[at : at + 1])
                    await asyncio.wait_for(writer.drain(), 10)
                    await asyncio.sleep(0)
                seen = b""
                while b"event: ready" not in seen:
                    chunk = await asyncio.wait_for(reader.read(65536), 10)
                    assert chunk, seen
                    seen += chunk
                return seen
            finally:
                writer.close()

        made[0] = 0  # the requests above made theirs
        seen = asyncio.run(trickle())
        if srv is edge:
            assert made == [0], "the stream's connection never met uvicorn's protocol"
        heads.append(_without_date(seen.partition(b"\r\n\r\n")[0]))
    assert heads[0] == heads[1]
    assert _opened(edge) == 1 and _opened(plain) == 0


def test_a_head_too_long_to_read_is_left_to_uvicorn_unread(tmp_path: Path) -> None:
    """The edge protocol holds at most HEAD_LIMIT bytes of a head it has not decided on: a
    longer one, still arriving, is uvicorn's already."""
    srv = ServerThread(make_settings(str(tmp_path))).start()
    try:

        async def long_head() -> list[type]:
            _, writer = await asyncio.open_connection("127.0.0.1", srv.port)
            try:
                writer.write(b"GET /v1/stream HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000)
                await asyncio.wait_for(writer.drain(), 10)
                deadline = time.monotonic() + 10
                while True:
                    kinds = [type(c) for c in list(srv.server.server_state.connections)]
                    if AppProtocol in kinds or time.monotonic() > deadline:
                        return kinds
                    await asyncio.sleep(0.02)
            finally:
                writer.close()

        kinds = asyncio.run(long_head())
        assert kinds == [AppProtocol], kinds
    finally:
        srv.stop()


def test_an_opened_stream_s_access_line_is_uvicorns(
    pair: tuple[ServerThread, ServerThread],
) -> None:
    """With uvicorn's access log on, a stream the edge opens (on a new connection, and on a
    kept-alive one after another request) logs the line uvicorn logs for it."""
    seen: list[list[str]] = []
    with access_lines() as lines:
        for srv in pair:
            create_tenant(srv.url, "jump-joy")
            token = srv.service.mint_token("jump-joy", "ann")[0]
            with httpx.Client(base_url=srv.url, timeout=10) as client:
                for reused in (False, True):
                    if reused:
                        assert client.get("/healthz").status_code == 200
                    query = {"access_token": token}
                    with client.stream("GET", "/v1/stream", params=query) as s:
                        assert s.status_code == 200
                        next(s.iter_raw())
                    client.get("/healthz?marker")
            deadline = time.monotonic() + 10
            while sum("/healthz?marker" in line for line in lines) < 2:
                assert time.monotonic() < deadline, lines
                time.sleep(0.02)
            seen.append([re.sub(r":\d+ - ", ":PORT - ", line) for line in lines])
            lines.clear()
    edge, plain = seen
    assert [line for line in edge if "/v1/stream" in line] == [
        line for line in plain if "/v1/stream" in line
    ]
    assert len([line for line in edge if "/v1/stream" in line]) == 2, edge
    assert _opened(pair[0]) == 2


def test_a_request_the_opener_leaves_to_the_route_is_not_offered_to_it_again(
    tmp_path: Path,
) -> None:
    """A refused stream request (here: a bad token, and one over the user's cap) is offered to
    the opener once; the route answers it without a second verification or subscription."""
    srv = ServerThread(make_settings(str(tmp_path), max_streams_per_user=1)).start()
    try:
        create_tenant(srv.url, "jump-joy")
        token = srv.service.mint_token("jump-joy", "ann")[0]

        async def refused() -> list[tuple[int, int]]:
            seen = []
            _, held, _ = await _open(srv.port, token)  # ann's one stream
            try:
                for bearer in (token[:-2] + "xx", token):  # 401, then 429
                    opener = srv.app.state.edge_opener
                    before = opener.batches
                    status = await _status(srv.port, bearer)
                    seen.append((status, opener.batches - before))
            finally:
                held.close()
            return seen

        assert asyncio.run(refused()) == [(401, 1), (429, 1)]
    finally:
        srv.stop()


async def _status(port: int, bearer: str) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(
            f"GET /v1/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {bearer}\r\n\r\n".encode()
        )
        line = await asyncio.wait_for(reader.readline(), 10)
        return int(line.split()[1])
    finally:
        writer.close()
