"""``GET /sse/notifications``: the booking dashboard's stream (src/tidings/api/compat_stream.py).

Over real sockets, on the edge protocol and on plain uvicorn: unnamed ``message`` events only,
``{"type":"connected"}`` first, ``{"type":"ping"}`` keep-alives, notifications in the backend's
shape with ``id:`` so ``Last-Event-ID`` resumes; authenticated, audience- and mute-filtered
like ``/v1/stream``; read-state events never reach it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.support import PlainServer, ServerThread, Tenant, create_tenant, make_settings
from tidings.api.compat_stream import legacy_frames
from tidings.delivery import sse

pytestmark = pytest.mark.anyio


@dataclass
class Message:
    """One event as the browser's EventSource sees it."""

    event: str
    data: Any
    id: str | None


@pytest.fixture(params=["edge", "plain-asgi"])
def compat_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServerThread]:
    settings = make_settings(str(tmp_path), keepalive=0.4)
    srv = (ServerThread if request.param == "edge" else PlainServer)(settings).start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def jump(compat_server: ServerThread) -> Tenant:
    return create_tenant(compat_server.url, "jump-joy")


class Legacy:
    """``/sse/notifications`` read raw: every line is checked, not just the parsed events."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.lines = response.aiter_lines()
        self.raw: list[str] = []

    async def next(self, timeout: float = 5.0) -> Message:
        return await asyncio.wait_for(self._next(), timeout)

    async def _next(self) -> Message:
        event, data, ident = "message", None, None
        async for line in self.lines:
            self.raw.append(line)
            if line == "":
                if data is not None:
                    return Message(event, orjson.loads(data), ident)
                continue
            field, _, value = line.partition(": ")
            if field == "event":
                event = value
            elif field == "data":
                data = value
            elif field == "id":
                ident = value
        raise AssertionError("the stream ended")

    async def notification(self, timeout: float = 5.0) -> Message:
        """The next message that the dashboard would treat as a notification."""
        while True:
            message = await self.next(timeout)
            if message.data.get("type") not in ("connected", "ping"):
                return message


@asynccontextmanager
async def legacy(
    url: str, token: str, headers: dict[str, str] | None = None
) -> AsyncIterator[Legacy]:
    async with (
        httpx.AsyncClient(timeout=httpx.Timeout(10, read=10)) as client,
        client.stream(
            "GET", f"{url}/sse/notifications", params={"token": token}, headers=headers or {}
        ) as response,
    ):
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        yield Legacy(response)


async def broadcast(tenant: Tenant, **notification: Any) -> dict[str, Any]:
    """What the booking backend's afterChange hooks post (api/compat.py)."""
    async with httpx.AsyncClient(timeout=10) as client:
        r = await client.post(
            f"{tenant.url}/api/sse/broadcast",
            json={"tenantId": tenant.id, "notification": notification},
            headers=tenant.auth,
        )
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_the_dashboards_wire(compat_server: ServerThread, jump: Tenant) -> None:
    async with legacy(compat_server.url, jump.token("ann")) as stream:
        first = await stream.next()
        assert first.data == {"type": "connected"}
        sent = await broadcast(
            jump,
            type="booking_created",
            title="New booking",
            message="Castle XL, Saturday 10:00",
            link="/bookings/7",
            bookingId=7,
        )
        got = await stream.notification()
        assert got.id == str(sent["id"])
        assert got.event == "message"
        assert got.data["type"] == "booking_created"
        assert got.data["title"] == "New booking"
        assert got.data["message"] == "Castle XL, Saturday 10:00"
        assert got.data["link"] == "/bookings/7"
        assert got.data["bookingId"] == 7
        assert got.data["id"] == sent["id"]
        ping = await stream.next(3)  # keepalive 0.4 s
        assert ping.data == {"type": "ping"}
        # Nothing but unnamed events with one-line JSON data, ids and the retry hint.
        for line in stream.raw:
            assert line == "" or line.startswith(("data: {", "id: ", "retry: ")), line


async def test_read_state_events_never_reach_it(compat_server: ServerThread, jump: Tenant) -> None:
    token = jump.token("ann")
    async with legacy(compat_server.url, token) as stream:
        assert (await stream.next()).data["type"] == "connected"
        await broadcast(jump, type="payment_received", title="Paid")
        assert (await stream.notification()).data["title"] == "Paid"
        async with httpx.AsyncClient(timeout=10) as client:
            r = await client.post(
                f"{compat_server.url}/v1/feed/read",
                json={"all": True},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert r.status_code == 200
        await broadcast(jump, type="system", title="marker")
        assert (await stream.notification()).data["title"] == "marker"


async def test_audience_and_mutes_as_on_v1_stream(
    compat_server: ServerThread, jump: Tenant
) -> None:
    token = jump.token("ann", roles=["staff"])
    async with httpx.AsyncClient(timeout=10) as client:
        r = await client.put(
            f"{compat_server.url}/v1/preferences",
            json={"types": {"customer_created": {"in_app": False}}},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert r.status_code == 200, r.text
    other = create_tenant(compat_server.url, "bounce-bros")
    async with legacy(compat_server.url, token) as stream:
        assert (await stream.next()).data["type"] == "connected"
        await broadcast(jump, type="system", title="for sam", userId="sam")
        await broadcast(jump, type="system", title="for owners", roles=["owner"])
        await broadcast(jump, type="customer_created", title="muted")
        await broadcast(other, type="system", title="other tenant")
        await broadcast(jump, type="system", title="for ann", userId="ann")
        await broadcast(jump, type="system", title="for staff", roles=["staff"])
        assert (await stream.notification()).data["title"] == "for ann"
        assert (await stream.notification()).data["title"] == "for staff"


async def test_resume_by_last_event_id(compat_server: ServerThread, jump: Tenant) -> None:
    token = jump.token("ann")
    async with legacy(compat_server.url, token) as stream:
        assert (await stream.next()).data["type"] == "connected"
        seen = await broadcast(jump, type="system", title="one")
        assert (await stream.notification()).id == str(seen["id"])
    missed = [await broadcast(jump, type="system", title=f"missed {i}") for i in range(3)]
    # The browser's own reconnect: Last-Event-ID is the last id it saw.
    async with legacy(compat_server.url, token, {"Last-Event-ID": str(seen["id"])}) as stream:
        assert (await stream.next()).data == {"type": "connected"}
        got = [await stream.notification() for _ in missed]
        assert [m.id for m in got] == [str(m["id"]) for m in missed]
        await broadcast(jump, type="system", title="live")
        assert (await stream.notification()).data["title"] == "live"
    # Fresh, with nothing to replay: connected carries the latest id (the resume point).
    async with legacy(compat_server.url, token) as stream:
        first = await stream.next()
        assert first.data == {"type": "connected"}
        assert first.id is not None and int(first.id) >= int(missed[-1]["id"]) + 1


async def test_authenticated_like_v1_stream(compat_server: ServerThread, jump: Tenant) -> None:
    url = f"{compat_server.url}/sse/notifications"
    async with httpx.AsyncClient(timeout=10) as client:
        r = await client.get(url)
        assert r.status_code == 401
        assert r.headers["content-type"] == "application/problem+json"
        r = await client.get(url, params={"token": jump.key})  # an API key is not a token
        assert r.status_code == 401
        r = await client.get(url, params={"token": "a.b.c"})
        assert r.status_code == 401
        r = await client.get(
            url, params={"token": jump.token("ann")}, headers={"Last-Event-ID": "x"}
        )
        assert r.status_code == 400
        assert r.json()["code"] == "invalid_event_id"
    # ?access_token= (as /v1/stream) works too.
    async with (
        httpx.AsyncClient(timeout=10) as client,
        client.stream("GET", url, params={"access_token": jump.token("ann")}) as response,
    ):
        assert response.status_code == 200


async def test_frames_are_rewritten_one_by_one() -> None:
    note = {
        "id": 5,
        "type": "booking_created",
        "title": "T",
        "body": "B",
        "data": {"bookingId": 7, "type": "spoof"},
        "link": None,
        "audience": None,
        "created_at": "2026-01-01T00:00:00.000000Z",
    }
    block = (
        sse.retry(500)
        + sse.frame("ready", {"unread": 1}, 4)
        + sse.notification_frame(5, orjson.dumps(note))
        + sse.frame("read", {"ids": [5]})
        + sse.PING
        + sse.frame("bye", {"reason": "shutdown"})
    )
    out = legacy_frames(block).split(b"\n\n")
    assert out[0] == b"retry: 500"
    assert out[1] == b'id: 4\ndata: {"type":"connected"}'
    head, _, data = out[2].partition(b"\ndata: ")
    assert head == b"id: 5"
    assert orjson.loads(data) == {
        "bookingId": 7,
        "id": 5,
        "type": "booking_created",
        "title": "T",
        "message": "B",
        "link": None,
        "createdAt": "2026-01-01T00:00:00.000000Z",
        "read": False,
    }
    assert out[3] == b'data: {"type":"ping"}'
    assert out[4:] == [b""]
    assert legacy_frames(sse.frame("archived", {"ids": [1]})) == b""
    assert (
        legacy_frames(sse.frame("reset", {"unread": 0}, 9))
        == b'id: 9\ndata: {"type":"connected"}\n\n'
    )


async def test_a_resume_it_cannot_honour_is_connected_at_the_latest_id(
    compat_server: ServerThread, jump: Tenant
) -> None:
    sent = await broadcast(jump, type="system", title="one")
    ahead = {"Last-Event-ID": "999"}  # a wiped database: /v1/stream says reset
    async with legacy(compat_server.url, jump.token("ann"), ahead) as stream:
        first = await stream.next()
        assert first.data == {"type": "connected"}
        assert first.id == str(sent["id"])
        await broadcast(jump, type="system", title="live")
        assert (await stream.notification()).data["title"] == "live"
