"""Helpers shared by the demo tests and the browser tests: a demo server (optionally on a given
port, for restarts), signing in over HTTP, and publishing straight into the store."""

from __future__ import annotations

import asyncio
import re
import sqlite3
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path
from typing import Any, TypeVar

import httpx
import uvicorn

from tests.support import ServerThread, Tenant, create_tenant, make_settings
from tidings.config import Settings
from tidings.server import Server

T = TypeVar("T")

# Seeded demo users: tidings user id → tenant.
USERS = {
    "ann": "jump-joy",
    "sam": "jump-joy",
    "lee": "jump-joy",
    "bob": "bounce-bros",
    "tia": "bounce-bros",
}
SEEDED_UNREAD = 3


def demo_settings(tmp: Path | str, **overrides: Any) -> Settings:
    return make_settings(str(tmp), demo=True, **overrides)


class DemoServer(ServerThread):
    """A demo server; with ``port`` it binds that port (to restart on the same address)."""

    def __init__(self, settings: Settings, port: int | None = None) -> None:
        super().__init__(settings)
        if port is not None:
            self.port = port
            self.url = f"http://127.0.0.1:{port}"
            config = uvicorn.Config(
                self.app,
                host="127.0.0.1",
                port=port,
                log_level="warning",
                lifespan="on",
                timeout_graceful_shutdown=5,
            )
            self.server = Server(config, self.app)
            self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> DemoServer:
        super().start()
        return self

    @property
    def db(self) -> str:
        return self.settings.database_url.split("///", 1)[1]

    def sql(self, query: str, *args: Any) -> list[tuple[Any, ...]]:
        """Run SQL on the demo database directly (a test's view of the truth)."""
        with closing(sqlite3.connect(self.db, timeout=10)) as conn, conn:
            return conn.execute(query, args).fetchall()


def start_demo(tmp: Path | str, **overrides: Any) -> DemoServer:
    server = DemoServer(demo_settings(tmp, **overrides))
    server.start()
    return server


_FORM_TOKEN = re.compile(r'name="form_token" value="([^"]+)"')
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def latest_seq(demo: DemoServer, tenant: str) -> int:
    """The last seq ``tenant`` has published, as the database holds it."""
    return int(demo.sql("SELECT last_seq FROM tenants WHERE id = ?", tenant)[0][0])


def booking_with(demo: DemoServer, tenant: str, status: str) -> int:
    """The id of ``tenant``'s first booking in ``status`` (the seed has one of each)."""
    rows = demo.sql(
        "SELECT id FROM bookings WHERE tenant_id = ? AND status = ? ORDER BY id", tenant, status
    )
    assert rows, f"no {status} booking for {tenant}"
    return int(rows[0][0])


def status_of(demo: DemoServer, booking: int) -> str:
    return str(demo.sql("SELECT status FROM bookings WHERE id = ?", booking)[0][0])


def form_token(html: str) -> str:
    match = _FORM_TOKEN.search(html)
    assert match, "no form_token in the page"
    return match.group(1)


def csrf_of(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "no csrf field in the page"
    return match.group(1)


def sign_in(url: str, user: str) -> httpx.Client:
    """An HTTP client signed in as a seeded demo user (picked on the sign-in page)."""
    client = httpx.Client(base_url=url, timeout=10)
    page = client.get("/demo/login")
    assert page.status_code == 200, page.text
    match = re.search(rf'name="user" value="(\d+)" data-user="{user}"', page.text)
    assert match, f"demo user {user} is not offered"
    r = client.post(
        "/demo/login",
        data={"form_token": form_token(page.text), "user": match.group(1), "next": "/demo"},
    )
    assert r.status_code == 303, r.text
    return client


def csrf(client: httpx.Client, path: str = "/demo") -> str:
    page = client.get(path)
    assert page.status_code == 200, page.text
    return csrf_of(page.text)


def run_with_service(settings: Settings, fn: Callable[[Any], Awaitable[T]]) -> T:
    """Run ``fn(service)`` on a fresh service over the same store (no server needed):
    :func:`tidings.wiring.open_service`, not live, as the CLI opens it."""
    from tidings.extensions import every_branch
    from tidings.wiring import open_service

    async def run() -> T:
        async with open_service(
            settings, every_branch(), live=False, secrets=False, migrate=True
        ) as service:
            return await asyncio.wait_for(fn(service), 30)

    # In a thread of its own: Playwright's sync API keeps an event loop running in this one.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, run()).result(timeout=60)


def publish_offline(settings: Settings, tenant: str, titles: list[str]) -> list[int]:
    """Publish straight into the store (the server may be down). Returns the new ids."""
    from tidings.domain.notifications import NewNotification

    async def go(service: Any) -> list[int]:
        ids = []
        for title in titles:
            stored, _ = await service.publish(tenant, NewNotification(type="system", title=title))
            ids.append(stored.seq)
        return ids

    return run_with_service(settings, go)


def api_key(url: str, tenant: str) -> Tenant:
    """An API key (publish, tokens, admin) for a seeded tenant, made through the operator API."""
    return create_tenant(url, tenant)


def publish(tenant: Tenant, title: str, **fields: Any) -> dict[str, Any]:
    """Publish through ``POST /v1/notifications`` like any host backend."""
    body = {"type": fields.pop("type", "system"), "title": title, **fields}
    r = httpx.post(f"{tenant.url}/v1/notifications", json=body, headers=tenant.auth, timeout=10)
    assert r.status_code == 201, r.text
    result: dict[str, Any] = r.json()
    return result


def preferences_form(page: str) -> dict[str, str]:
    """What a browser would send for the page's preferences form as it stands."""
    fields = {"csrf": csrf_of(page)}
    form = page[page.index('<form method="post" action="/demo/preferences') :]
    for name in re.findall(r'<input type="checkbox" name="([^"]+)" value="on" checked', form):
        fields[name] = "on"
    inputs = (
        r'<input id="[^"]+" (?:type="time" )?name="([^"]+)"(?: inputmode="decimal")? '
        r'value="([^"]*)"'
    )
    for name, value in re.findall(inputs, form):
        fields[name] = value
    for name, body in re.findall(
        r'<select id="[^"]+" name="([^"]+)"[^>]*>(.*?)</select>', form, re.S
    ):
        chosen = re.search(r'<option value="([^"]*)" selected', body)
        fields[name] = chosen.group(1) if chosen else ""
    return fields
