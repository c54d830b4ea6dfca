"""The broker contract, run against every backend: memory, Redis pub/sub, PostgreSQL NOTIFY.

What the hub relies on (delivery/broker.py): every instance gets every message, one publisher's
messages in order; a listener says CONNECTED before it delivers and DISCONNECTED/CONNECTED
around every lost connection; a publish to a broker that is down raises; a notification that
does not fit the backend arrives without its payload (the hub then reads the row).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.services import PostgresServer, RedisServer
from tidings.delivery.broker import Broker, Envelope, Signal, from_url

pytestmark = pytest.mark.anyio

ALL = [
    "memory",
    pytest.param("redis", marks=pytest.mark.redis),
    pytest.param("postgres", marks=pytest.mark.postgres),
]
NETWORKED = [
    pytest.param("redis", marks=pytest.mark.redis),
    pytest.param("postgres", marks=pytest.mark.postgres),
]


@pytest.fixture
def backend_url(request: pytest.FixtureRequest) -> Iterator[str]:
    kind = request.param
    if kind == "memory":
        yield "memory://"
    elif kind == "redis":
        yield request.getfixturevalue("redis_url")
    else:
        server: PostgresServer = request.getfixturevalue("postgres_server")
        name = server.fresh_database("broker")
        try:
            yield server.broker_url(name)
        finally:
            server.drop_database(name)


class Listening:
    """A broker's ``listen()`` drained into a queue by a task."""

    def __init__(self, broker: Broker, origin: str | None = None) -> None:
        self.items: asyncio.Queue[bytes | Signal] = asyncio.Queue()
        self.task = asyncio.create_task(self._run(broker, origin))

    async def _run(self, broker: Broker, origin: str | None) -> None:
        async for item in broker.listen(origin=origin):
            await self.items.put(item)

    async def next(self, timeout: float = 5.0) -> bytes | Signal:
        return await asyncio.wait_for(self.items.get(), timeout)

    async def signal(self, expected: Signal, timeout: float = 15.0) -> None:
        item = await self.next(timeout)
        assert item is expected, f"expected {expected}, got {item!r}"

    async def messages(self, count: int, timeout: float = 10.0) -> list[bytes]:
        got: list[bytes] = []
        async with asyncio.timeout(timeout):
            while len(got) < count:
                item = await self.items.get()
                if isinstance(item, bytes):
                    got.append(item)
        return got

    async def stop(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(self.task, 5)


@contextlib.asynccontextmanager
async def instances(
    url: str, count: int = 2, origins: list[str | None] | None = None
) -> AsyncIterator[list[tuple[Broker, Listening]]]:
    """``count`` "instances": separate brokers on one backend (memory: one shared broker),
    listening with ``origins`` (default: none)."""
    async with contextlib.AsyncExitStack() as stack:
        shared = await stack.enter_async_context(from_url(url)) if url == "memory://" else None
        out: list[tuple[Broker, Listening]] = []
        for _ in range(count):
            broker = (
                shared if shared is not None else await stack.enter_async_context(from_url(url))
            )
            listening = Listening(broker, origins[len(out)] if origins else None)
            stack.push_async_callback(listening.stop)
            await listening.signal(Signal.CONNECTED)
            out.append((broker, listening))
        yield out


def note(seq: int, tenant: str = "t1", payload: bytes | None = None, origin: str = "") -> bytes:
    body = (
        payload
        if payload is not None
        else b'{"id":%d,"title":"caf\xc3\xa9 \xf0\x9f\x8e\x88"}' % seq
    )
    return Envelope("n", tenant, seq, payload=body, origin=origin).encode()


@pytest.mark.parametrize("backend_url", ALL, indirect=True)
async def test_every_instance_gets_every_message_and_each_publishers_order(
    backend_url: str,
) -> None:
    async with instances(backend_url) as [(a, la), (b, lb)]:

        async def send(broker: Broker, origin: str) -> None:
            for seq in range(1, 151):
                await broker.publish(note(seq, origin=origin))

        await asyncio.wait_for(asyncio.gather(send(a, "A"), send(b, "B")), 20)
        # A marker from each publisher: its order puts any late duplicate before its marker.
        await a.publish(note(999, origin="A"))
        await b.publish(note(999, origin="B"))
        for listening in (la, lb):
            got = [Envelope.decode(m) for m in await listening.messages(302)]
            for origin in ("A", "B"):
                seqs = [e.seq for e in got if e.origin == origin]
                assert seqs == [*range(1, 151), 999], origin
            assert all(e.payload.decode().endswith('caf\u00e9 \U0001f388"}') for e in got)


@pytest.mark.parametrize("backend_url", ALL, indirect=True)
async def test_a_listener_may_be_spared_its_own_messages_never_another_instances(
    backend_url: str,
) -> None:
    """A message published with an ``origin`` may skip the listener of that origin (the memory
    broker skips it: that instance delivered it locally); every other listener gets it, and a
    message published without one reaches every listener."""
    async with instances(backend_url, origins=["A", "B"]) as [(a, la), (b, lb)]:
        await a.publish(note(1, origin="A"), origin="A")
        await b.publish(note(2, origin="B"), origin="B")
        await a.publish(note(3, origin="A"))  # no origin given
        await a.publish(note(9), origin="C")  # the marker: after it, nothing more comes
        for listening, own in ((la, "A"), (lb, "B")):
            seqs: set[int] = set()
            while 9 not in seqs:
                seqs.update(Envelope.decode(m).seq for m in await listening.messages(1))
            others = {1, 3} if own == "B" else {2, 3}
            assert others <= seqs, own
            mine = {1, 2} - others
            if backend_url == "memory://":
                assert seqs == others | {9}, own
            else:
                assert seqs - mine == others | {9}, own


@pytest.mark.parametrize("backend_url", ALL, indirect=True)
async def test_a_notification_too_big_for_the_backend_arrives_without_payload(
    backend_url: str,
) -> None:
    big = b'{"body":"' + b"x" * 20_000 + b'"}'
    fits = b'{"body":"' + b"y" * 7000 + b'"}'
    async with instances(backend_url, 1) as [(broker, listening)]:
        await broker.publish(note(1, payload=big))
        await broker.publish(note(2, payload=fits))
        await broker.publish(Envelope("e", "t1", user="ann", event="read", payload=big).encode())
        await broker.publish(note(3))
        got = [Envelope.decode(m) for m in await listening.messages(3)]
        first, second = got[0], got[1]
        assert (first.kind, first.tenant, first.seq) == ("n", "t1", 1)
        assert first.payload in (big, b"")  # whole, or empty: the hub reads the row
        assert second.seq == 2 and second.payload == fits
        # The oversized ephemeral event arrives whole or not at all, never cut.
        rest = got[2:]
        if rest[0].kind == "e":
            rest += [Envelope.decode(m) for m in await listening.messages(1)]
            assert rest[0].payload == big
            assert rest[1].seq == 3
        else:
            assert rest[0].seq == 3


@pytest.mark.parametrize("backend_url", NETWORKED, indirect=True)
async def test_listener_says_when_it_lost_the_backend_and_when_it_is_back(
    backend_url: str, request: pytest.FixtureRequest
) -> None:
    server = _server(request, backend_url)
    async with instances(backend_url) as [(a, la), (_b, lb)]:
        await a.publish(note(1))
        for listening in (la, lb):
            assert len(await listening.messages(1)) == 1
        await asyncio.to_thread(server.restart, 0.5)
        for listening in (la, lb):
            await listening.signal(Signal.DISCONNECTED, 15)
            item = await listening.next(20)
            while item is Signal.DISCONNECTED:  # reconnect attempts while it was down
                item = await listening.next(20)
            assert item is Signal.CONNECTED
        # After CONNECTED the listener is subscribed again: new messages reach both.
        for seq in range(2, 6):
            await asyncio.wait_for(a.publish(note(seq)), 10)
        for listening in (la, lb):
            got = [Envelope.decode(m).seq for m in await listening.messages(4)]
            assert got == [2, 3, 4, 5]


@pytest.mark.parametrize("backend_url", NETWORKED, indirect=True)
async def test_publish_to_a_backend_that_is_down_raises_then_works_again(
    backend_url: str, request: pytest.FixtureRequest
) -> None:
    server = _server(request, backend_url)
    async with instances(backend_url, 1) as [(broker, listening)]:
        await broker.publish(note(1))
        await listening.messages(1)
        await asyncio.to_thread(_stop, server)
        try:
            with pytest.raises(Exception) as raised:  # noqa: PT011 - driver-specific errors
                await asyncio.wait_for(broker.publish(note(2)), 10)
            assert not isinstance(raised.value, TimeoutError), "publish hung instead of failing"
        finally:
            await asyncio.to_thread(server.start)
        await listening.signal(Signal.DISCONNECTED, 15)
        async with asyncio.timeout(20):
            while (item := await listening.next(20)) is not Signal.CONNECTED:
                assert item is Signal.DISCONNECTED
        await asyncio.wait_for(broker.publish(note(3)), 10)
        assert [Envelope.decode(m).seq for m in await listening.messages(1)] == [3]


@pytest.mark.parametrize("backend_url", ALL, indirect=True)
async def test_closing_the_broker_ends_listening(backend_url: str) -> None:
    broker = from_url(backend_url)
    await broker.__aenter__()
    listening = Listening(broker)
    await listening.signal(Signal.CONNECTED)
    await broker.__aexit__(None, None, None)
    await asyncio.wait_for(listening.task, 10)


@pytest.mark.postgres
async def test_postgres_notify_inside_the_transaction_leaves_at_commit_only(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    from sqlalchemy import text

    from tidings.delivery.postgres import PostgresBroker
    from tidings.store import Store

    name = await asyncio.to_thread(postgres_server.fresh_database, "notify")
    store = Store(postgres_server.url(name))
    other = Store(f"sqlite+aiosqlite:///{tmp_path}/x.db")
    try:
        async with PostgresBroker(postgres_server.broker_url(name)) as broker:
            listening = Listening(broker)
            await listening.signal(Signal.CONNECTED)
            async with store.write() as conn:
                assert await broker.publish_in_transaction(conn, [note(1), note(2)])
                await conn.execute(text("SELECT pg_sleep(0.3)"))
                assert listening.items.empty(), "NOTIFY left before commit"
            got = [Envelope.decode(m).seq for m in await listening.messages(2)]
            assert got == [1, 2]

            with contextlib.suppress(RuntimeError):
                async with store.write() as conn:
                    assert await broker.publish_in_transaction(conn, [note(3)])
                    raise RuntimeError("roll back")
            async with store.write() as conn:  # a committed marker after the rolled-back one
                assert await broker.publish_in_transaction(conn, [note(3, origin="marker")])
            (after,) = [Envelope.decode(m) for m in await listening.messages(1)]
            assert after.origin == "marker", "a rolled-back NOTIFY was delivered"

            big = b'{"body":"' + b"z" * 9000 + b'"}'
            async with store.write() as conn:
                assert await broker.publish_in_transaction(conn, [note(4, payload=big)])
            (arrived,) = [Envelope.decode(m) for m in await listening.messages(1)]
            assert (arrived.seq, arrived.payload) == (4, b"")

            # Not this broker's database: nothing is done, the service publishes after commit.
            async with other.write() as conn:
                assert not await broker.publish_in_transaction(conn, [note(5)])
            await listening.stop()
    finally:
        await store.close()
        await other.close()
        await asyncio.to_thread(postgres_server.drop_database, name)


def _server(request: pytest.FixtureRequest, url: str) -> RedisServer | PostgresServer:
    if url.startswith("redis"):
        server: RedisServer | PostgresServer = request.getfixturevalue("redis_server")
    else:
        server = request.getfixturevalue("postgres_server")
    return server


def _stop(server: RedisServer | PostgresServer) -> None:
    if isinstance(server, RedisServer):
        server.stop()
    else:
        server.stop("fast")
