"""Cluster-wide limits: publish rate per API key and open streams per user and per tenant
hold across two instances when Redis is configured, and per instance otherwise; a crashed
instance's stream slots expire instead of leaking."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import httpx
import orjson
import pytest

from tests.cluster.harness import Cluster, cluster_of, token
from tests.services import PostgresServer, RedisServer

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]

LIMITS = {
    "TIDINGS_PUBLISH_RATE": "10/minute",
    "TIDINGS_MAX_STREAMS_PER_USER": "3",
    "TIDINGS_MAX_STREAMS_PER_TENANT": "5",
    "TIDINGS_STREAM_SLOT_TTL": "3",
}


class Open:
    """A stream held open over a raw socket (no reconnects), or its refusal."""

    def __init__(self, status: int, problem: dict[str, object], headers: bytes) -> None:
        self.status = status
        self.problem = problem
        self.headers = headers
        self.writer: asyncio.StreamWriter | None = None

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.writer.wait_closed(), 2)


async def open_stream(url: str, tenant: str, user: str) -> Open:
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), 5)
    writer.write(
        f"GET /v1/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
        f"{token(tenant, user, [])}\r\n\r\n".encode()
    )
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    status = int(head.split(b" ", 2)[1])
    if status == 200:
        await asyncio.wait_for(reader.readuntil(b"event: ready"), 5)
        opened = Open(status, {}, head)
        opened.writer = writer
        return opened
    length = int(head.lower().split(b"content-length: ", 1)[1].split(b"\r\n", 1)[0])
    body = await asyncio.wait_for(reader.readexactly(length), 5)
    writer.close()
    return Open(status, orjson.loads(body), head)


async def publish(client: httpx.AsyncClient, url: str, key: str, n: int) -> httpx.Response:
    return await client.post(
        f"{url}/v1/notifications",
        json={"type": "system", "title": f"n{n}"},
        headers={"Authorization": f"Bearer {key}"},
    )


async def rate_limit_holds(cluster: Cluster, allowed: int) -> None:
    key = cluster.tenant("alpha").key
    a, b = (i.url for i in cluster.instances)
    async with httpx.AsyncClient(timeout=10) as client:
        answers = [await publish(client, (a, b)[n % 2], key, n) for n in range(allowed + 2)]
    assert [r.status_code for r in answers] == [201] * allowed + [429, 429]
    for refused in answers[allowed:]:
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.json()["code"] == "rate_limited"
        assert int(refused.headers["retry-after"]) >= 1


@pytest.mark.redis
@pytest.mark.timeout(90)
async def test_limits_hold_across_instances_with_redis(
    pg_live: PostgresServer, redis_live: RedisServer, workdir: Path
) -> None:
    with cluster_of(
        pg_live, workdir, broker="redis", redis=redis_live, instances=2, nginx=False, env=LIMITS
    ) as cluster:
        await rate_limit_holds(cluster, allowed=10)  # 5 + 5 on two instances, not 10 + 10
        cluster.tenant("beta")
        a, b = (i.url for i in cluster.instances)
        held = [await open_stream(u, "alpha", "ann") for u in (a, a, b)]
        assert [s.status for s in held] == [200, 200, 200]
        try:
            for url in (a, b):  # the user's fourth stream, on either instance
                refused = await open_stream(url, "alpha", "ann")
                assert refused.status == 429
                assert refused.problem["code"] == "too_many_streams"
                assert b"retry-after: 5" in refused.headers.lower()
            held += [await open_stream(a, "alpha", "bob"), await open_stream(b, "alpha", "cy")]
            assert [s.status for s in held[3:]] == [200, 200]
            refused = await open_stream(b, "alpha", "dee")  # the tenant's sixth stream
            assert refused.status == 429 and "tenant" in str(refused.problem["detail"])
            assert (await open_stream(b, "beta", "dee")).status == 200  # other tenants: own caps

            # Closing a stream on one instance frees its slot for another instance at once.
            await held.pop(0).close()
            async with asyncio.timeout(3):
                while (again := await open_stream(b, "alpha", "ann")).status != 200:
                    await asyncio.sleep(0.1)
            held.append(again)

            # A crashed instance's slots expire (TIDINGS_STREAM_SLOT_TTL=3) instead of leaking.
            cluster.instances[0].kill()  # held ann #2 and bob
            started = time.monotonic()
            async with asyncio.timeout(10):
                while (late := await open_stream(b, "alpha", "eve")).status != 200:
                    await asyncio.sleep(0.25)
            held.append(late)
            assert 1.0 < time.monotonic() - started < 8
        finally:
            for stream in held:
                await stream.close()


@pytest.mark.timeout(60)
async def test_without_redis_the_limits_are_per_instance(
    pg_live: PostgresServer, workdir: Path
) -> None:
    with cluster_of(
        pg_live, workdir, broker="postgres", instances=2, nginx=False, env=LIMITS
    ) as cluster:
        await rate_limit_holds_per_instance(cluster)
        a, b = (i.url for i in cluster.instances)
        held = [await open_stream(u, "alpha", "ann") for u in (a, a, a, b, b, b)]
        try:
            assert [s.status for s in held] == [200] * 6
            assert (await open_stream(a, "alpha", "ann")).status == 429
        finally:
            for stream in held:
                await stream.close()


async def rate_limit_holds_per_instance(cluster: Cluster) -> None:
    key = cluster.tenant("alpha").key
    a, b = (i.url for i in cluster.instances)
    async with httpx.AsyncClient(timeout=10) as client:
        on_a = [(await publish(client, a, key, n)).status_code for n in range(11)]
        on_b = [(await publish(client, b, key, n)).status_code for n in range(11)]
    assert on_a == [201] * 10 + [429]
    assert on_b == [201] * 10 + [429]
