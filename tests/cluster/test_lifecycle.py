"""``tidings serve`` as a process: it waits for a PostgreSQL that is down at start, and a
graceful SIGTERM ends it with status 0 after every open stream was told ``bye``."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from pathlib import Path

import httpx
import pytest

from tests.cluster.processes import Instance, token
from tests.services import PostgresServer
from tests.support import OPERATOR, SECRET

pytestmark = [pytest.mark.anyio]


def env(database_url: str) -> dict[str, str]:
    return {
        "TIDINGS_ENV": "test",
        "TIDINGS_DATABASE_URL": database_url,
        "TIDINGS_BROKER_URL": "memory://",
        "TIDINGS_SECRET": SECRET,
        "TIDINGS_OPERATOR_KEY": OPERATOR,
        "TIDINGS_LOG_LEVEL": "INFO",
        "TIDINGS_CHANNELS_WORKERS": "false",
        "TIDINGS_STORE_RETRY_MAX_DELAY": "1",
    }


def create_tenant(url: str, tenant: str) -> str:
    op = {"Authorization": f"Bearer {OPERATOR}"}
    r = httpx.post(f"{url}/v1/admin/tenants", json={"id": tenant, "name": tenant}, headers=op)
    assert r.status_code in (201, 409), r.text
    r = httpx.post(f"{url}/v1/admin/tenants/{tenant}/keys", json={"name": "k"}, headers=op)
    assert r.status_code == 201, r.text
    key: str = r.json()["key"]
    return key


@pytest.mark.postgres
@pytest.mark.timeout(120)
def test_an_instance_started_while_postgres_is_down_waits_for_it(
    pg_live: PostgresServer, workdir: Path
) -> None:
    database = pg_live.fresh_database("startup")
    pg_live.stop()
    instance = Instance("late", env(pg_live.url(database)), workdir).start(wait=False)
    try:
        deadline = time.monotonic() + 30
        while instance.tail().count("store unreachable at start") < 3:
            assert instance.proc is not None and instance.proc.poll() is None, instance.tail()
            assert time.monotonic() < deadline, instance.tail()
            time.sleep(0.1)
        # Not ready meanwhile: the port opens only once the store answers.
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{instance.url}/readyz", timeout=2)
        attempts = [line for line in instance.tail(20_000).splitlines() if "unreachable" in line]
        assert "attempt 1," in attempts[0] and "retrying in 0.5s" in attempts[0], attempts
        assert "retrying in 1.0s" in attempts[-1], attempts  # the backoff, capped at max delay

        pg_live.start()
        instance.wait_ready(60)
        assert "store reachable after" in instance.tail()
        key = create_tenant(instance.url, "late")
        r = httpx.post(
            f"{instance.url}/v1/notifications",
            json={"type": "system", "title": "made it"},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert r.status_code == 201 and r.json()["id"] == 1, r.text
    finally:
        instance.stop()
        with contextlib.suppress(Exception):  # PostgreSQL may be down if the test failed
            pg_live.drop_database(database)


async def _open(port: int, jwt: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 5)
    writer.write(
        f"GET /v1/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {jwt}\r\n\r\n".encode()
    )
    await asyncio.wait_for(reader.readuntil(b"event: ready"), 10)
    return reader, writer


@pytest.mark.timeout(60)
async def test_sigterm_with_open_streams_exits_zero_after_bye(workdir: Path) -> None:
    instance = Instance("term", env(f"sqlite+aiosqlite:///{workdir}/t.db"), workdir).start()
    try:
        create_tenant(instance.url, "alpha")
        streams = [await _open(instance.port, token("alpha", f"u{n}", [])) for n in range(3)]
        instance.signal(signal.SIGTERM)
        for reader, writer in streams:
            rest = await asyncio.wait_for(reader.read(-1), 20)  # until the server closes it
            assert b"event: bye" in rest and b'"reason":"shutdown"' in rest, rest
            writer.close()
        status = await asyncio.to_thread(instance.wait, 30)
        assert status == 0, instance.tail()
    finally:
        instance.stop()


@pytest.mark.postgres
@pytest.mark.timeout(120)
def test_a_stream_opened_while_postgres_is_down_is_a_503_problem(
    pg_live: PostgresServer, workdir: Path
) -> None:
    """A stream whose opening needs the store (a user the instance has no view of) while the
    store is down is refused before its head: ``503 store_unavailable`` with ``Retry-After``,
    as a problem the client's reconnect understands, never a 200 cut off mid-opening. Once the
    store is back the same stream opens."""
    database = pg_live.fresh_database("opendown")
    settings = env(pg_live.url(database)) | {"TIDINGS_STREAM_VIEW_TTL": "0"}
    instance = Instance("opendown", settings, workdir).start()
    try:
        key = create_tenant(instance.url, "down")
        auth = {"Authorization": f"Bearer {key}"}
        for n in range(3):
            r = httpx.post(
                f"{instance.url}/v1/notifications",
                json={"type": "system", "title": f"before {n}"},
                headers=auth,
            )
            assert r.status_code == 201, r.text
        pg_live.stop()
        jwt = token("down", "newcomer", [])
        headers = {"Authorization": f"Bearer {jwt}", "Last-Event-ID": "0"}
        with httpx.stream("GET", f"{instance.url}/v1/stream", headers=headers, timeout=30) as r:
            body = r.read()
        assert r.status_code == 503, (r.status_code, body[:300], instance.tail())
        assert r.headers["content-type"].startswith("application/problem+json")
        assert "retry-after" in r.headers
        pg_live.start()
        deadline = time.monotonic() + 30
        while True:
            with httpx.stream("GET", f"{instance.url}/v1/stream", headers=headers, timeout=30) as r:
                if r.status_code == 200:
                    seen = b""
                    for chunk in r.iter_bytes():
                        seen += chunk
                        if seen.count(b"event: notification") == 3:
                            break
                    break
            assert time.monotonic() < deadline, instance.tail()
            time.sleep(0.2)
        assert b"before 2" in seen
        assert "Traceback" not in instance.tail(50_000), instance.tail(50_000)
    finally:
        instance.stop()
        with contextlib.suppress(Exception):
            pg_live.drop_database(database)
