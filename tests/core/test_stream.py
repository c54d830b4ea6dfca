"""The stream end to end over real sockets: fan-out, resume, audiences, read sync, expiry."""

from __future__ import annotations

import asyncio
import random

import httpx
import pytest

from tests.support import ServerThread, Stream, Tenant, create_tenant, mark, publish

pytestmark = pytest.mark.anyio


async def test_publish_reaches_every_stream_of_the_tenant_and_no_other(
    server: ServerThread, tenant: Tenant, other_tenant: Tenant
) -> None:
    mine = [Stream(server.url, tenant.token(f"u{i}")) for i in range(5)]
    theirs = Stream(server.url, other_tenant.token("u0"))
    for s in [*mine, theirs]:
        await s.__aenter__()
    try:
        for s in [*mine, theirs]:
            ready = await s.next_event("ready")
            assert ready.data["latest_seq"] == 0
        async with httpx.AsyncClient(timeout=10) as client:
            sent = await publish(client, tenant, "New booking", body="Castle XL")
        for s in mine:
            (got,) = await s.notifications(1)
            assert got.id == sent["id"] == 1
            assert got.data["title"] == "New booking"
        other = await mark(other_tenant)  # published after: what precedes it was sent first
        assert [f for f in await theirs.until(other) if f.event == "notification"] == []
    finally:
        for s in [*mine, theirs]:
            await s.close()


async def test_stream_headers_retry_and_ready_snapshot(
    server: ServerThread, tenant: Tenant
) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        for i in range(7):
            await publish(client, tenant, f"n{i}")
        token = tenant.token("ann")
        async with client.stream(
            "GET", f"{server.url}/v1/stream", headers={"Authorization": f"Bearer {token}"}
        ) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            assert response.headers["cache-control"] == "no-cache, no-transform"
            assert response.headers["x-accel-buffering"] == "no"
            lines: list[str] = []
            async for line in response.aiter_lines():
                lines.append(line)
                if line.startswith("data:"):
                    break
    assert lines[0] == "retry: 500"
    assert "id: 7" in lines and "event: ready" in lines
    import orjson

    snapshot = orjson.loads(lines[-1].removeprefix("data: "))
    assert snapshot["unread"] == {"count": 7, "more": False}
    assert [n["id"] for n in snapshot["latest"]] == [7, 6, 5, 4, 3, 2, 1][:5]


@pytest.mark.parametrize("header_resume", [True, False], ids=["header", "query"])
async def test_resume_gets_exactly_what_was_missed(
    server: ServerThread, tenant: Tenant, header_resume: bool
) -> None:
    token = tenant.token("ann")
    async with httpx.AsyncClient(timeout=10) as client:
        async with Stream(server.url, token) as first:
            await first.next_event("ready")
            for i in range(5):
                await publish(client, tenant, f"before {i}")
            got = await first.notifications(5)
            last = got[-1].id
        assert last == 5
        for i in range(50):
            await publish(client, tenant, f"missed {i}")
        async with Stream(server.url, token, last_event_id=last, header_resume=header_resume) as s:
            ready = await s.next_event("ready")
            assert ready.id is None  # a replay follows, so ready must not move the id
            replayed = await s.notifications(50)
            assert [f.id for f in replayed] == list(range(6, 56))
            assert [f.data["title"] for f in replayed] == [f"missed {i}" for i in range(50)]
            assert [f for f in await s.until(await mark(tenant)) if f.event == "notification"] == []


async def test_reconnect_race_loses_and_doubles_nothing(
    server: ServerThread, tenant: Tenant
) -> None:
    """Publishers never stop while a client drops and resumes over and over."""
    token = tenant.token("ann")
    stop = asyncio.Event()
    published: list[int] = []

    async def publisher(n: int) -> None:
        async with httpx.AsyncClient(timeout=10) as client:
            i = 0
            while not stop.is_set():
                published.append((await publish(client, tenant, f"p{n}-{i}"))["id"])
                i += 1
                await asyncio.sleep(random.uniform(0, 0.004))

    received: list[int] = []
    tasks = [asyncio.create_task(publisher(n)) for n in range(3)]
    try:
        last: int | None = None
        for _ in range(15):
            async with Stream(server.url, token, last_event_id=last) as s:
                frame = await s.next()
                assert frame.event in ("ready", "reset") and frame.event == "ready"
                if last is None:
                    last = frame.id
                deadline = asyncio.get_running_loop().time() + random.uniform(0.02, 0.15)
                while asyncio.get_running_loop().time() < deadline:
                    try:
                        f = await asyncio.wait_for(s.frames.get(), 0.01)
                    except TimeoutError:
                        continue
                    if f.event == "notification":
                        assert f.id is not None
                        received.append(f.id)
                        last = f.id
    finally:
        stop.set()
        await asyncio.gather(*tasks)
    # Drain whatever is left after the last publish.
    async with Stream(server.url, token, last_event_id=last) as s:
        await s.next_event("ready")
        top = max(published)
        while not received or received[-1] < top:
            f = await s.next_event("notification")
            assert f.id is not None
            received.append(f.id)
    first = received[0]
    assert received == list(range(first, top + 1)), "gap or duplicate across reconnects"
    assert len(published) > 50


async def test_audiences_users_and_roles(server: ServerThread, tenant: Tenant) -> None:
    ann = Stream(server.url, tenant.token("ann", ["owner"]))
    bob = Stream(server.url, tenant.token("bob", ["staff"]))
    cat = Stream(server.url, tenant.token("cat", ["staff", "driver"]))
    streams = [ann, bob, cat]
    for s in streams:
        await s.__aenter__()
        await s.next_event("ready")
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            await publish(client, tenant, "for bob", audience={"users": ["bob"]})
            await publish(client, tenant, "for staff", audience={"roles": ["staff"]})
            await publish(
                client, tenant, "for owners or cat", audience={"roles": ["owner"], "users": ["cat"]}
            )
            await publish(client, tenant, "for all")
            await publish(client, tenant, "marker")
        expected = {
            "ann": ["for owners or cat", "for all"],
            "bob": ["for bob", "for staff", "for all"],
            "cat": ["for staff", "for owners or cat", "for all"],
        }
        for name, s in zip(("ann", "bob", "cat"), streams, strict=True):
            got = await s.notifications(len(expected[name]))
            assert [f.data["title"] for f in got] == expected[name]
            assert [f for f in await s.until("marker") if f.event == "notification"] == []
        # Replay honours audiences too.
        async with Stream(server.url, tenant.token("ann", ["owner"]), last_event_id=0) as again:
            got = await again.notifications(2)
            assert [f.data["title"] for f in got] == expected["ann"]
            assert [f.id for f in got] == [3, 4]
    finally:
        for s in streams:
            await s.close()


async def test_read_state_reaches_the_users_other_streams_only(
    server: ServerThread, tenant: Tenant
) -> None:
    ann_token = tenant.token("ann")
    ann1, ann2 = Stream(server.url, ann_token), Stream(server.url, ann_token)
    bob = Stream(server.url, tenant.token("bob"))
    for s in (ann1, ann2, bob):
        await s.__aenter__()
        await s.next_event("ready")
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            for i in range(3):
                await publish(client, tenant, f"n{i}")
            auth = {"Authorization": f"Bearer {ann_token}"}
            r = await client.post(f"{server.url}/v1/feed/read", json={"ids": [2]}, headers=auth)
            assert r.status_code == 200, r.text
            assert r.json()["unread"] == {"count": 2, "more": False}
            for s in (ann1, ann2):
                read = await s.next_event("read")
                assert read.id is None
                assert read.data == {"ids": [2], "unread": {"count": 2, "more": False}}
            r = await client.post(f"{server.url}/v1/feed/read", json={"all": True}, headers=auth)
            assert r.json()["unread"] == {"count": 0, "more": False}
            read = await ann2.next_event("read")
            assert read.data["all"] is True and read.data["up_to"] == 3
            assert [f.event for f in await bob.until(await mark(tenant)) if f.event == "read"] == []
            r = await client.get(
                f"{server.url}/v1/feed/unread-count",
                headers={"Authorization": f"Bearer {tenant.token('bob')}"},
            )
            assert r.json() == {"count": 4, "more": False}  # n0..n2 and the marker
    finally:
        for s in (ann1, ann2, bob):
            await s.close()


async def test_token_expiry_closes_with_expired(server: ServerThread, tenant: Tenant) -> None:
    token = tenant.token("ann", ttl=2)
    async with Stream(server.url, token) as s:
        await s.next_event("ready")
        expired = await s.next_event("expired", timeout=6)
        assert expired.data == {"reason": "token_expired"}
        await asyncio.wait_for(s.ended.wait(), 5)
    async with httpx.AsyncClient(timeout=10) as client:
        r = await client.get(
            f"{server.url}/v1/stream", headers={"Authorization": f"Bearer {token}"}
        )
        assert r.status_code == 401
        assert r.json()["code"] == "token_expired"
        assert r.headers["content-type"] == "application/problem+json"


async def test_resume_too_far_behind_or_ahead_gets_reset(tmp_path: object) -> None:
    from tests.support import make_settings

    srv = ServerThread(make_settings(str(tmp_path), replay_limit=10)).start()
    try:
        tenant = create_tenant(srv.url, "jump-joy")
        async with httpx.AsyncClient(timeout=10) as client:
            for i in range(25):
                await publish(client, tenant, f"n{i}")
        token = tenant.token("ann")
        async with Stream(srv.url, token, last_event_id=3) as s:
            reset = await s.next()
            assert reset.event == "reset" and reset.id == 25
            assert reset.data["latest_seq"] == 25 and len(reset.data["latest"]) == 5
            assert [f for f in await s.until(await mark(tenant)) if f.event == "notification"] == []
        async with Stream(srv.url, token, last_event_id=999) as s:
            assert (await s.next()).event == "reset"
        async with Stream(srv.url, token, last_event_id=20) as s:
            assert (await s.next()).event == "ready"
            assert [f.id for f in await s.notifications(5)] == [21, 22, 23, 24, 25]
    finally:
        srv.stop()


async def test_keepalive_ping(tmp_path: object) -> None:
    from tests.support import make_settings

    srv = ServerThread(make_settings(str(tmp_path), keepalive=0.3)).start()
    try:
        tenant = create_tenant(srv.url, "jump-joy")
        async with (
            httpx.AsyncClient(timeout=10) as client,
            client.stream(
                "GET",
                f"{srv.url}/v1/stream",
                headers={"Authorization": f"Bearer {tenant.token('ann')}"},
            ) as response,
        ):
            pings = 0
            async with asyncio.timeout(5):
                async for line in response.aiter_lines():
                    if line == ": ping":
                        pings += 1
                        if pings == 2:
                            break
            assert pings == 2
    finally:
        srv.stop()


async def test_access_token_query_and_cookie(server: ServerThread, tenant: Tenant) -> None:
    token = tenant.token("ann")
    async with httpx.AsyncClient(timeout=10) as client:
        for kwargs in ({"params": {"access_token": token}}, {"cookies": {"tidings_token": token}}):
            async with client.stream("GET", f"{server.url}/v1/stream", **kwargs) as r:  # type: ignore[arg-type]
                assert r.status_code == 200
                async for line in r.aiter_lines():
                    if line == "event: ready":
                        break


async def test_stream_caps_per_user(tmp_path: object) -> None:
    from tests.support import make_settings

    srv = ServerThread(make_settings(str(tmp_path), max_streams_per_user=2)).start()
    try:
        tenant = create_tenant(srv.url, "jump-joy")
        token = tenant.token("ann")
        async with Stream(srv.url, token) as a, Stream(srv.url, token) as b:
            await a.next_event("ready")
            await b.next_event("ready")
            async with Stream(srv.url, token) as c:
                frame = await c.next()
                assert c.status == 429
                assert frame.data["code"] == "too_many_streams"
            async with Stream(srv.url, tenant.token("bob")) as other:
                await other.next_event("ready")
    finally:
        srv.stop()


async def test_shutdown_says_bye_with_retry(tmp_path: object) -> None:
    from tests.support import make_settings

    srv = ServerThread(make_settings(str(tmp_path))).start()
    tenant = create_tenant(srv.url, "jump-joy")
    async with Stream(srv.url, tenant.token("ann")) as s:
        await s.next_event("ready")
        await asyncio.get_running_loop().run_in_executor(None, srv.stop)
        bye = await s.next_event("bye")
        assert bye.data == {"reason": "shutdown"}
        await asyncio.wait_for(s.ended.wait(), 5)
