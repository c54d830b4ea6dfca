"""``subscribe`` against a live server, blocking and asyncio: live events, resume with
``Last-Event-ID`` (across a close, a server restart, a token expiry), and its errors."""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import uvicorn

from tests.support import ServerThread, Tenant, create_tenant, make_settings
from tidings.client import ApiError, AsyncClient, Client, Event, StreamToken, subscribe
from tidings.client._tokens import UserRef
from tidings.server import EdgeProtocol, Server

LIMIT = 10.0


def titles(events: list[Event]) -> list[str]:
    return [e.data["title"] for e in events if e.event == "notification"]


def test_sync_subscribe_is_live_and_resumes_from_its_last_id(
    live: ServerThread, fresh: Tenant
) -> None:
    with Client(live.url, api_key=fresh.key) as client:
        got: list[Event] = []
        with client.subscribe("ann", read_timeout=LIMIT) as events:
            for event in events:
                got.append(event)
                if event.event == "ready":
                    client.publish("system", "one")
                    client.publish("system", "two")
                elif event.event == "notification" and event.data["title"] == "two":
                    break
            resume_at = events.last_event_id
        assert titles(got) == ["one", "two"] and resume_at == 2
        client.publish("system", "missed")
        client.publish("system", "marker")
        again: list[Event] = []
        with client.subscribe("ann", last_event_id=resume_at, read_timeout=LIMIT) as events:
            for event in events:
                again.append(event)
                if event.event == "notification" and event.data["title"] == "marker":
                    break
        assert [e.id for e in again if e.event == "notification"] == [3, 4]
        assert titles(again) == ["missed", "marker"]


@pytest.mark.anyio
async def test_async_subscribe_is_live_and_resumes_from_its_last_id(
    live: ServerThread, fresh: Tenant
) -> None:
    async with AsyncClient(live.url, api_key=fresh.key) as client, asyncio.timeout(LIMIT):
        got: list[Event] = []
        async with client.subscribe("ann", roles=["owner"]) as events:
            async for event in events:
                got.append(event)
                if event.event == "ready":
                    await client.publish("system", "for owners", audience={"roles": ["owner"]})
                    await client.publish("system", "for bob", audience={"users": ["bob"]})
                    await client.publish("system", "two")
                elif event.event == "notification" and event.data["title"] == "two":
                    break
            resume_at = events.last_event_id
        assert titles(got) == ["for owners", "two"], "only what ann may see"
        await client.publish("system", "missed")
        await client.publish("system", "marker")
        async with client.subscribe("ann", last_event_id=resume_at) as events:
            again = [e async for e in _until(events, "marker")]
        assert [e.id for e in again if e.event == "notification"] == [4, 5]


async def _until(events: AsyncIterator[Event], title: str) -> AsyncIterator[Event]:
    async for event in events:
        yield event
        if event.event == "notification" and event.data["title"] == title:
            return


def test_a_user_subscription_renews_its_token_and_misses_nothing(
    live: ServerThread, fresh: Tenant
) -> None:
    """Tokens of 2 s: the stream ends with ``expired``, the SDK mints a new token and resumes
    from its last id, so what was published around the expiry arrives once."""
    with Client(live.url, api_key=fresh.key, token_ttl=2) as client:
        got: list[Event] = []
        with client.subscribe("ann", read_timeout=LIMIT) as events:
            for event in events:
                got.append(event)
                if event.event == "ready" and len(got) == 1:
                    client.publish("system", "before")
                elif event.event == "expired":
                    client.publish("system", "between")
                elif event.event == "ready":
                    client.publish("system", "after")
                elif event.event == "notification" and event.data["title"] == "after":
                    break
    names = [e.event for e in got]
    assert names.count("expired") == 1 and names.count("ready") == 2, names
    assert titles(got) == ["before", "between", "after"]
    assert [e.id for e in got if e.event == "notification"] == [1, 2, 3]


def test_a_given_token_ends_the_iteration_when_it_expires(
    live: ServerThread, fresh: Tenant
) -> None:
    with Client(live.url, api_key=fresh.key) as client:
        token = client.mint_token("ann", ttl=2)  # exp is whole seconds: it lives 1-2 s
        names = [e.event for e in client.subscribe(token=token.token, read_timeout=LIMIT)]
    assert names == ["ready", "expired"]


@pytest.mark.anyio
async def test_async_given_token_ends_the_iteration_when_it_expires(
    live: ServerThread, fresh: Tenant
) -> None:
    async with AsyncClient(live.url, api_key=fresh.key) as client, asyncio.timeout(LIMIT):
        token = await client.mint_token("ann", ttl=2)  # exp is whole seconds: it lives 1-2 s
        async with client.subscribe(token=token.token) as events:
            names = [e.event async for e in events]
    assert names == ["ready", "expired"]


def test_a_refused_token_is_an_api_error(live: ServerThread, fresh: Tenant) -> None:
    with Client(live.url, api_key=fresh.key) as client:
        with pytest.raises(ApiError) as refused:
            next(iter(client.subscribe(token="not-a-token")))
        assert refused.value.status == 401 and refused.value.code
        with pytest.raises(ValueError, match="either user or token"):
            client.subscribe()


@pytest.mark.anyio
async def test_async_refused_token_and_bad_resume_point_are_api_errors(
    live: ServerThread, fresh: Tenant
) -> None:
    async with AsyncClient(live.url, api_key=fresh.key) as client, asyncio.timeout(LIMIT):
        with pytest.raises(ApiError) as refused:
            await anext(client.subscribe(token="not-a-token"))
        assert refused.value.status == 401
        with pytest.raises(ApiError) as negative:
            await anext(client.subscribe("ann", last_event_id=-1))
        assert (negative.value.status, negative.value.code) == (400, "invalid_event_id")


def _restart(old: ServerThread) -> ServerThread:
    """A new server on ``old``'s settings (its database) and port."""
    srv = ServerThread(old.settings)
    srv.port, srv.url = old.port, old.url
    config = uvicorn.Config(
        srv.app,
        host="127.0.0.1",
        port=old.port,
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=5,
        http=EdgeProtocol,
    )
    srv.server = Server(config, srv.app)
    srv.thread = threading.Thread(target=srv.server.run, daemon=True)
    return srv.start()


def test_sync_subscribe_resumes_after_the_server_restarts(tmp_path: Path) -> None:
    first = ServerThread(make_settings(str(tmp_path))).start()
    second: ServerThread | None = None
    tenant = create_tenant(first.url, "jump-joy")
    seen: queue.Queue[Event | BaseException] = queue.Queue()
    client = Client(first.url, api_key=tenant.key)

    def consume() -> None:
        try:
            with client.subscribe("ann", read_timeout=LIMIT) as events:
                for event in events:
                    seen.put(event)
                    if event.event == "notification" and event.data["title"] == "stop":
                        return
        except BaseException as error:  # handed to the test thread
            seen.put(error)

    def next_event() -> Event:
        item = seen.get(timeout=LIMIT)
        assert isinstance(item, Event), item
        return item

    def next_notification() -> Event:
        while (event := next_event()).event != "notification":
            pass
        return event

    reader = threading.Thread(target=consume, daemon=True)
    reader.start()
    try:
        assert next_event().event == "ready"
        client.publish("system", "a")
        assert next_notification().id == 1
        first.stop()
        second = _restart(first)
        client.publish("system", "b")  # into the store, maybe before the stream is back
        client.publish("system", "c")
        assert [next_notification().id, next_notification().id] == [2, 3]
        client.publish("system", "stop")
        assert next_notification().data["title"] == "stop"
    finally:
        first.stop()
        if second is not None:
            second.stop()
        reader.join(timeout=LIMIT)
        client.close()
    assert not reader.is_alive()


@pytest.mark.anyio
async def test_a_refused_cached_token_is_renewed_by_the_subscription(
    live: ServerThread, fresh: Tenant
) -> None:
    stale = StreamToken("not-a-valid-token", datetime.now(UTC) + timedelta(hours=1), "x", "ann")
    with Client(live.url, api_key=fresh.key) as client:
        client.tokens.put(UserRef.of("ann"), stale)
        with client.subscribe("ann", read_timeout=LIMIT) as events:
            assert next(events).event == "ready"
    async with AsyncClient(live.url, api_key=fresh.key) as aclient, asyncio.timeout(LIMIT):
        aclient.tokens.put(UserRef.of("ann"), stale)
        async with aclient.subscribe("ann") as aevents:
            assert (await anext(aevents)).event == "ready"


@pytest.mark.anyio
async def test_the_older_subscribe_without_a_token_raises_the_401(live: ServerThread) -> None:
    async with asyncio.timeout(LIMIT):
        events = subscribe(live.url)
        with pytest.raises(ApiError) as refused:
            await anext(events)
        await events.aclose()
    assert (refused.value.status, refused.value.code) == (401, "missing_credentials")
