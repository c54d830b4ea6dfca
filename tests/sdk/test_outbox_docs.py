"""The outbox examples of the SDKs' docs run against a real PostgreSQL while tidings' outbox
consumer runs: docs/outbox.md's Python one (``tidings.client``'s helpers) and its
TypeScript/Node one (``pg`` and ``insertOutbox`` of tidings/server, transpiled), and
docs/sdk.md's, each as the host's script in a fresh process. Each notification is published
exactly once; what the helpers refuse is neither queued nor booked. (The SQL and the first
Python example of docs/outbox.md: tests/outbox/test_docs.py.)"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from tests.outbox.conftest import drained, fetch, host_database
from tests.sdk.node import host_app, transpile
from tests.services import PostgresServer
from tests.support import make_settings, open_service, require_binary
from tidings.domain.notifications import Notification
from tidings.outbox import OutboxConsumer
from tidings.service import Tidings
from tidings.store import notifications as nq

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]

DOCS = Path(__file__).resolve().parents[2] / "docs"


def block(language: str, containing: str, doc: str = "outbox.md") -> str:
    found = re.findall(rf"^```{language}\n(.*?)^```", (DOCS / doc).read_text(), re.S | re.M)
    matching = [str(code) for code in found if containing in code]
    assert len(matching) == 1, f"one {language} block with {containing!r} in docs/{doc}"
    return matching[0]


@asynccontextmanager
async def tidings_consuming(url: str, tmp_path: Path) -> AsyncIterator[Tidings]:
    """A tidings with tenant ``jump-joy`` whose outbox consumer runs on the host database."""
    async with open_service(make_settings(str(tmp_path), outbox_url=url)) as service:
        await service.create_tenant("jump-joy", "Jump & Joy")
        async with OutboxConsumer(service):
            yield service


async def published(service: Tidings) -> list[Notification]:
    async with service.store.read() as store:
        return list(await nq.fetch_after(store, "jump-joy", 0))


async def run(args: list[str], env: dict[str, str], cwd: Path) -> str:
    done = await asyncio.to_thread(
        subprocess.run,
        args,
        env={**os.environ, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


async def test_the_python_sdk_example(postgres_server: PostgresServer, tmp_path: Path) -> None:
    code = block("python", "tidings.client")
    name, url = host_database(postgres_server)
    try:
        async with tidings_consuming(url, tmp_path) as service:
            env = {"HOST_DATABASE_URL": postgres_server.url(name, driver="postgresql+asyncpg")}
            out = await run([sys.executable, "-c", code], env, tmp_path)
            await drained(url)
            notes = await published(service)
        assert out.splitlines()[0] == "queued outbox row 1"
        assert out.splitlines()[1].startswith("refused: type 'Booking Created!'")
        assert [(n.title, n.data) for n in notes] == [
            ("New booking: Pirate Ship", {"booking_id": 1})
        ]
        assert notes[0].audience is not None and notes[0].audience.roles == ("staff",)
        assert await fetch(url, "SELECT id FROM tidings_outbox_dead") == []
    finally:
        postgres_server.drop_database(name)


@pytest.mark.timeout(240)  # node, TypeScript's transpiler and pg on a loaded 2-core machine
async def test_the_typescript_example_with_pg(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    """The docs' Node example, as is, against a real PostgreSQL with the consumer running:
    one booking, its notification published once; the refused one left neither."""
    node = require_binary("node", "nodejs")
    app = host_app(tmp_path)
    (app / "book.mjs").write_text(transpile(block("ts", "insertOutbox")))
    name, url = host_database(postgres_server)
    try:
        async with tidings_consuming(url, tmp_path) as service:
            out = await run([node, "book.mjs"], {"DATABASE_URL": url}, app)
            await drained(url)
            first = await published(service)
            # Run it again: a second booking, a second notification; the first is not repeated.
            again = await run([node, "book.mjs"], {"DATABASE_URL": url}, app)
            await drained(url)
            both = await published(service)
        assert out.splitlines() == [
            "booked 1",
            "rolled back: tidings: title is longer than 200 characters",
        ]
        assert again.splitlines()[0] == "booked 3"  # id 2 went with the rolled-back booking
        assert [(n.seq, n.title, n.data) for n in first] == [
            (1, "New booking: Rainbow Castle", {"booking_id": 1})
        ]
        assert [n.data for n in both] == [{"booking_id": 1}, {"booking_id": 3}]
        assert first[0].body == "Ada booked the Rainbow Castle."
        assert first[0].audience is not None and first[0].audience.roles == ("staff",)
        bookings = await fetch(url, "SELECT id, customer FROM bookings ORDER BY id")
        assert [(b["id"], b["customer"]) for b in bookings] == [(1, "Ada"), (3, "Ada")]
        assert await fetch(url, "SELECT id FROM tidings_outbox_dead") == []
    finally:
        postgres_server.drop_database(name)


async def test_the_outbox_example_of_sdk_md(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    code = block("python", "HOST_DATABASE_URL", doc="sdk.md")
    name, url = host_database(postgres_server)
    try:
        await fetch(url, "CREATE TABLE bookings (id bigserial PRIMARY KEY, status text)")
        await fetch(url, "INSERT INTO bookings (status) VALUES ('pending')")
        async with tidings_consuming(url, tmp_path) as service:
            env = {"HOST_DATABASE_URL": postgres_server.url(name, driver="postgresql+asyncpg")}
            out = await run([sys.executable, "-c", code], env, tmp_path)
            await drained(url)
            notes = await published(service)
        assert out.splitlines()[0] == "queued outbox row 1"
        assert out.splitlines()[1] == "refused before anything was written: title must not be blank"
        assert [(n.type, n.title, n.link) for n in notes] == [
            ("booking_confirmed", "Booking 1 confirmed", "/bookings/1")
        ]
        (booking,) = await fetch(url, "SELECT status FROM bookings")
        assert booking["status"] == "confirmed"
    finally:
        postgres_server.drop_database(name)
