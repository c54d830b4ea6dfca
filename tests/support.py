"""Test support: real servers on free loopback ports, and small SSE/HTTP helpers.

Nothing here mocks tidings or the services it talks to.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import uvicorn

from tidings import wiring
from tidings.app import create_app
from tidings.client import parse_sse
from tidings.config import Settings
from tidings.extensions import bundled, every_branch
from tidings.server import EdgeProtocol, Server
from tidings.service import Tidings

OPERATOR = "test-operator-key"
SECRET = "test-secret-0123456789-0123456789-abcdef"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def require_binary(name: str, *candidates: str) -> str:
    """Path of a system binary; in CI a missing one fails the test instead of skipping it."""
    for candidate in (name, *candidates):
        found = shutil.which(candidate) or (candidate if os.path.exists(candidate) else None)
        if found:
            return found
    message = f"{name} is not installed (apt-get install it; .ci/run does)"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


_sqlite_template: Path | None = None
_sqlite_template_lock = threading.Lock()


def sqlite_template() -> Path:
    """A SQLite database with every branch migrated, made once per test process (on first use)
    and removed at its exit. Each test's own SQLite database starts as a copy of it, as each
    PostgreSQL test's is a clone of a template database (tests/services.py): a server start
    then finds its schema at head instead of replaying the migrations (~0.25 s each). Tests of
    the migrations themselves make their databases on their own."""
    global _sqlite_template
    with _sqlite_template_lock:
        if _sqlite_template is None:
            from tests.services import run_sync
            from tidings.store import Store

            folder = Path(tempfile.mkdtemp(prefix="tidings-template-"))
            atexit.register(shutil.rmtree, folder, True)
            path = folder / "template.db"

            async def migrate() -> None:
                store = Store(f"sqlite+aiosqlite:///{path}")
                try:
                    await store.migrate(every_branch())
                finally:
                    await store.close()

            run_sync(migrate)
            _sqlite_template = path
        return _sqlite_template


def make_settings(tmp: str, **overrides: Any) -> Settings:
    """Settings for a test, on SQLite in ``tmp`` unless ``database_url`` says otherwise; a
    database not there yet starts as a copy of :func:`sqlite_template`."""
    if "database_url" not in overrides:
        database = Path(tmp) / "tidings.db"
        if database.parent.is_dir() and not database.exists():
            shutil.copyfile(sqlite_template(), database)
    values: dict[str, Any] = {
        "env": "test",
        "database_url": f"sqlite+aiosqlite:///{tmp}/tidings.db",
        "secret": SECRET,
        "operator_key": OPERATOR,
        "keepalive": 15.0,
        "retry_ms": 500,
        "publish_rate": "100000/second",
    }
    values.update(overrides)
    return Settings(**values)


class ServerThread:
    """tidings under uvicorn in a thread with its own event loop, on a free port."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = create_app(settings, bundled(settings))
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="on",
            timeout_graceful_shutdown=5,
            http=EdgeProtocol,  # as `tidings serve`: streams on the edge after their opening
            proxy_headers=False,  # as `tidings serve`: the app's own proxy middleware only
        )
        self.server = Server(config, self.app)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("test server did not start")
            time.sleep(0.02)
        return self

    @property
    def service(self) -> Any:
        return self.app.state.tidings

    def stop(self, within: float = 10.0) -> None:
        """Stop as ``tidings serve`` does on SIGTERM: ``Server.handle_exit`` on the server's
        loop (it tells the hub, streams get ``bye``), then assert the thread ended in time."""
        if self.thread.ident is None:  # never started
            return
        if self.thread.is_alive() and self.server.servers:
            loop = self.server.servers[0].get_loop()
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: it is ending
                loop.call_soon_threadsafe(self.server.handle_exit, signal.SIGTERM, None)
        else:
            self.server.should_exit = True
        self.thread.join(timeout=within)
        assert not self.thread.is_alive(), f"the server thread did not end within {within} s"


class PlainServer(ServerThread):
    """tidings under plain uvicorn (no edge protocol): every stream stays on the ASGI route."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="on",
            proxy_headers=False,
        )
        self.server = Server(config, self.app)
        self.thread = threading.Thread(target=self.server.run, daemon=True)


@dataclass
class Tenant:
    id: str
    key: str
    url: str

    def token(self, user: str, roles: list[str] | None = None, ttl: int | None = None) -> str:
        body: dict[str, Any] = {"user": user, "roles": roles or []}
        if ttl is not None:
            body["ttl"] = ttl
        r = httpx.post(f"{self.url}/v1/tokens", json=body, headers=self.auth, timeout=10)
        assert r.status_code == 201, r.text
        token: str = r.json()["token"]
        return token

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


def create_tenant(url: str, tenant_id: str, scopes: list[str] | None = None) -> Tenant:
    op = {"Authorization": f"Bearer {OPERATOR}"}
    r = httpx.post(
        f"{url}/v1/admin/tenants", json={"id": tenant_id, "name": tenant_id}, headers=op, timeout=10
    )
    assert r.status_code in (201, 409), r.text
    r = httpx.post(
        f"{url}/v1/admin/tenants/{tenant_id}/keys",
        json={"name": "test", "scopes": scopes or ["publish", "tokens", "admin"]},
        headers=op,
        timeout=10,
    )
    assert r.status_code == 201, r.text
    return Tenant(tenant_id, r.json()["key"], url)


@dataclass
class Frame:
    event: str
    data: Any
    id: int | None


class StreamClosed(AssertionError):
    """The stream ended (or broke) while a test was still waiting on it."""


class Stream:
    """An SSE stream over a real socket, read by a background task into a queue.

    It cannot hide a failure: a transport or parse error is kept in ``error`` and re-raised by
    every read that would otherwise wait for frames that can no longer come, and a read on a
    stream that ended cleanly raises :class:`StreamClosed` once its frames are consumed. Absence
    is asserted with :meth:`until`: publish a marker after the thing that must not arrive, read
    up to the marker, and check what came before it.
    """

    def __init__(
        self,
        url: str,
        token: str,
        *,
        last_event_id: int | None = None,
        header_resume: bool = True,
        params: dict[str, str] | None = None,
    ) -> None:
        self.url = url
        self.token = token
        self.last_event_id = last_event_id
        self.header_resume = header_resume
        self.params = params or {}
        self.frames: asyncio.Queue[Frame] = asyncio.Queue()
        self.status: int | None = None
        self.error: BaseException | None = None  # a transport or parse error, kept
        self.ended = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(10, read=None))
        self.opened = asyncio.Event()

    async def __aenter__(self) -> Stream:
        self._task = asyncio.create_task(self._run())
        await asyncio.wait_for(self.opened.wait(), 10)
        if self.status is None and self.error is not None:
            raise StreamClosed(f"the stream did not open: {self.error!r}") from self.error
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(self._task, 5)
        await self._client.aclose()

    async def _run(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        params = dict(self.params)
        if self.last_event_id is not None:
            if self.header_resume:
                headers["Last-Event-ID"] = str(self.last_event_id)
            else:
                params["last_event_id"] = str(self.last_event_id)
        try:
            async with self._client.stream(
                "GET", f"{self.url}/v1/stream", headers=headers, params=params
            ) as response:
                self.status = response.status_code
                self.opened.set()
                if response.status_code != 200:
                    body = await response.aread()
                    await self.frames.put(Frame("http-error", orjson.loads(body), None))
                    return
                async for event, raw, ident in parse_sse(response.aiter_lines()):
                    data = orjson.loads(raw) if raw else None
                    await self.frames.put(
                        Frame(event, data, int(ident) if ident and ident.isdigit() else None)
                    )
        except (httpx.TransportError, httpx.StreamError, orjson.JSONDecodeError) as error:
            self.error = error
        finally:
            self.opened.set()
            self.ended.set()

    async def next(self, timeout: float = 5.0) -> Frame:
        """The next frame; raises when none can come (the stream ended or broke) or on timeout."""
        if not self.frames.empty():
            return self.frames.get_nowait()
        getter = asyncio.ensure_future(self.frames.get())
        ended = asyncio.ensure_future(self.ended.wait())
        try:
            done, _ = await asyncio.wait(
                {getter, ended}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            ended.cancel()
            if not getter.done():
                getter.cancel()
        if getter in done:
            return getter.result()
        if ended in done:
            if not self.frames.empty():
                return self.frames.get_nowait()
            raise StreamClosed(f"the stream ended (error: {self.error!r})") from self.error
        raise TimeoutError(f"no frame within {timeout} s")

    async def next_event(self, name: str, timeout: float = 5.0) -> Frame:
        deadline = time.monotonic() + timeout
        while True:
            frame = await self.next(max(0.01, deadline - time.monotonic()))
            if frame.event == name:
                return frame

    async def notifications(self, count: int, timeout: float = 10.0) -> list[Frame]:
        got: list[Frame] = []
        deadline = time.monotonic() + timeout
        while len(got) < count:
            frame = await self.next(max(0.01, deadline - time.monotonic()))
            if frame.event == "notification":
                got.append(frame)
        return got

    async def until(self, marker: str, timeout: float = 10.0) -> list[Frame]:
        """Every frame before the notification titled ``marker`` (which the test published
        after whatever must not arrive). Raises if the stream ends or the marker never comes,
        so an absence check cannot pass on a dead stream."""
        got: list[Frame] = []
        deadline = time.monotonic() + timeout
        while True:
            frame = await self.next(max(0.01, deadline - time.monotonic()))
            if frame.event == "notification" and frame.data["title"] == marker:
                return got
            got.append(frame)

    async def quiet(self, seconds: float = 0.3) -> list[Frame]:
        """Frames that arrive within ``seconds``. Prefer :meth:`until` (a marker) to assert
        absence; this still raises if the stream is dead, so it cannot pass on one."""
        got: list[Frame] = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                got.append(await self.next(left))
            except TimeoutError:
                break
        return got


async def publish(client: httpx.AsyncClient, tenant: Tenant, title: str, **fields: Any) -> Any:
    body = {"type": fields.pop("type", "booking_created"), "title": title, **fields}
    headers = dict(tenant.auth)
    if "idempotency_key" in body:
        headers["Idempotency-Key"] = body.pop("idempotency_key")
    r = await client.post(f"{tenant.url}/v1/notifications", json=body, headers=headers)
    assert r.status_code in (200, 201), r.text
    return r.json()


async def publish_blobs(
    client: httpx.AsyncClient, tenant: Tenant, start: int, *, count: int = 100, blob: str
) -> None:
    """One batch of ``count`` notifications titled ``n<start>``… each carrying ``blob`` in its
    data: the quickest way to fill a stalled reader's socket."""
    items = [
        {"type": "system", "title": f"n{start + i}", "data": {"blob": blob}} for i in range(count)
    ]
    r = await client.post(
        f"{tenant.url}/v1/notifications/batch", json={"notifications": items}, headers=tenant.auth
    )
    assert r.status_code == 201, r.text


async def mark(tenant: Tenant, title: str = "marker", **fields: Any) -> str:
    """Publish a marker (after whatever must not arrive) and return its title, for
    :meth:`Stream.until`: what has not come before the marker is not coming."""
    async with httpx.AsyncClient(timeout=10) as client:
        await publish(client, tenant, title, **fields)
    return title


@contextlib.asynccontextmanager
async def open_service(settings: Settings) -> AsyncIterator[Tidings]:
    """The service over a real store migrated with every branch, an in-process broker and no
    server (:func:`tidings.wiring.open_service`, not live): for tests of the store and service
    levels (feed, counts, snapshot, read state)."""
    async with wiring.open_service(
        settings, every_branch(), live=False, secrets=False, migrate=True
    ) as service:
        yield service


@contextlib.contextmanager
def access_lines() -> Iterator[list[str]]:
    """The messages uvicorn's access logger writes meanwhile (the logger at INFO, as outside
    tests); its level and handlers are as before afterwards."""
    access = logging.getLogger("uvicorn.access")
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    handler = Collect()
    old_level = access.level
    access.setLevel(logging.INFO)
    access.addHandler(handler)
    try:
        yield lines
    finally:
        access.removeHandler(handler)
        access.setLevel(old_level)


async def exchange(port: int, request: bytes, size: int = 0) -> bytes:
    """Send ``request`` to 127.0.0.1:``port`` (in pieces of ``size`` bytes, each its own write
    and segment, when given), then read until the server closes the connection; each wait is
    bounded (10 s)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        step = size or len(request) or 1
        for at in range(0, len(request), step):
            writer.write(request[at : at + step])
            await asyncio.wait_for(writer.drain(), 10)
            if step < len(request):
                await asyncio.sleep(0)
        data = b""
        while chunk := await asyncio.wait_for(reader.read(65536), 10):
            data += chunk
        return data
    finally:
        writer.close()
