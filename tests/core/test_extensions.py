"""The extension seam (``tidings.extension.Extension``): ``create_app(settings, extensions)``
includes an extension's routers, configures the app with it, starts it once the service is
open, installs the hooks it returns, and unwinds what it put on the stack at shutdown. Without
extensions the core stands alone: no channels route, publishing and the feed work."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from fastapi.routing import iter_route_contexts

from tests.support import OPERATOR, make_settings
from tidings.app import create_app
from tidings.domain.notifications import NewNotification, Notification
from tidings.domain.principals import Principal
from tidings.hooks import Hooks
from tidings.service import Tidings
from tidings.store.migrate import Branch

pytestmark = pytest.mark.anyio


class Recorder:
    """An extension that records what the core does with it."""

    name = "recorder"
    migrations: Branch | None = None

    def __init__(self) -> None:
        self.events: list[str] = []
        self.published: list[int] = []

    def routers(self) -> Sequence[APIRouter]:
        router = APIRouter()

        @router.get("/recorder")
        async def hello() -> dict[str, str]:
            return {"hello": "recorder"}

        return (router,)

    def configure(self, app: FastAPI) -> None:
        self.events.append("configure")

    async def start(self, service: Tidings, stack: AsyncExitStack) -> Hooks:
        self.events.append("start")
        stack.callback(self.events.append, "stop")

        async def after_publish(published: list[Notification]) -> None:
            self.published.extend(n.seq for n in published)

        async def muted(principal: Principal) -> frozenset[str]:
            return frozenset({"booking_created"})

        return Hooks(after_publish=[after_publish], muted_types=muted)


async def test_an_extension_is_routed_started_hooked_and_stopped(tmp_path: Path) -> None:
    recorder = Recorder()
    app = create_app(make_settings(str(tmp_path)), [recorder])
    assert recorder.events == ["configure"]  # at build time; nothing started yet
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://t") as client,
    ):
        assert recorder.events == ["configure", "start"]
        assert (await client.get("/recorder")).json() == {"hello": "recorder"}
        service: Tidings = app.state.tidings
        await service.create_tenant("t1", "One")
        for kind in ("booking_created", "payment_received"):
            await service.publish("t1", NewNotification(type=kind, title=kind))
        assert recorder.published == [1, 2]  # the after_publish hook saw both
        alice = service.mint_token("t1", "alice")[0]
        feed = await client.get("/v1/feed", headers={"Authorization": f"Bearer {alice}"})
        assert feed.status_code == 200, feed.text
        assert [item["type"] for item in feed.json()["items"]] == ["payment_received"]  # muted
        # A hook without muted_types_many still answers a stream opener's batch, per principal.
        many = await service.muted_many([await service.verify_token(alice)] * 2)
        assert many == [frozenset({"booking_created"})] * 2
    assert recorder.events == ["configure", "start", "stop"]


async def test_the_core_runs_without_extensions(tmp_path: Path) -> None:
    app = create_app(make_settings(str(tmp_path)))
    paths = {context.path or "" for context in iter_route_contexts(app.routes)}
    assert "/v1/notifications" in paths
    assert not any(p.startswith(("/v1/preferences", "/v1/push", "/demo")) for p in paths)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://t") as client,
    ):
        operator = {"Authorization": f"Bearer {OPERATOR}"}
        made = await client.post(
            "/v1/admin/tenants", json={"id": "t1", "name": "One"}, headers=operator
        )
        assert made.status_code == 201, made.text
        service: Tidings = app.state.tidings
        stored, _ = await service.publish("t1", NewNotification(type="system", title="hi"))
        assert stored.seq == 1
        assert service.after_publish == [] and service.muted_types is None
        assert service.muted_types_many is None
        assert await service.muted_many(
            [await service.verify_token(service.mint_token("t1", "a")[0])]
        ) == [frozenset()]
