"""The limits Redis failing: stopped (fail open, per-instance limits) and black-holed (a budget
and a circuit breaker, so a publish or a stream open never waits on it).

Real redis-server; the black hole is a real TCP proxy on loopback (tests/cluster/blackhole.py)
that keeps accepting connections but stops forwarding.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.cluster.blackhole import BlackHole
from tests.services import RedisServer, run_sync
from tests.support import ServerThread, Stream, create_tenant, make_settings, publish

pytestmark = [pytest.mark.anyio, pytest.mark.redis]


def redis_keys(redis: RedisServer, pattern: str) -> list[bytes | str]:
    from redis.asyncio import Redis

    async def keys() -> list[bytes | str]:
        client = Redis.from_url(redis.url)
        try:
            return list(await client.keys(pattern))
        finally:
            await client.aclose()

    return run_sync(keys)


@pytest.fixture
def server_with(tmp_path: Path) -> Iterator[list[ServerThread]]:
    started: list[ServerThread] = []
    yield started
    for server in started:
        server.stop()


@pytest.mark.timeout(90)
async def test_limits_fail_open_when_redis_stops(
    redis_live: RedisServer, tmp_path: Path, server_with: list[ServerThread]
) -> None:
    settings = make_settings(
        str(tmp_path), limits_url=redis_live.url, publish_rate="5/minute", max_streams_per_user=2
    )
    server = ServerThread(settings).start()
    server_with.append(server)
    tenant = create_tenant(server.url, "hop")
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        for n in range(3):
            await publish(client, tenant, f"shared {n}")
        assert redis_keys(redis_live, "tidings:limits*"), "counted in Redis while it is up"

        redis_live.stop()
        # Publishing goes on, counted per instance now (a fresh local window of 5), at once.
        codes = []
        for n in range(6):
            started = time.monotonic()
            r = await client.post(
                "/v1/notifications", json={"type": "system", "title": f"local {n}"},
                headers=tenant.auth,
            )  # fmt: skip
            assert time.monotonic() - started < 2.0, "a stopped Redis refuses at once"
            codes.append(r.status_code)
        assert codes == [201] * 5 + [429], codes
        assert r.json()["code"] == "rate_limited"

        # Streams open (fail open); the per-instance cap of 2 per user still holds.
        async with Stream(server.url, tenant.token("ann")) as one:
            await one.next_event("ready")
            async with Stream(server.url, tenant.token("ann")) as two:
                await two.next_event("ready")
                async with Stream(server.url, tenant.token("ann")) as third:
                    refused = await third.next_event("http-error")
                assert third.status == 429 and refused.data["code"] == "too_many_streams"

        # Redis back: counting is shared again (a refusing Redis did not open the breaker: it
        # cost nothing to ask). The restarted Redis is empty, so the publish is allowed.
        redis_live.start()
        deadline = time.monotonic() + 20
        while True:
            r = await client.post(
                "/v1/notifications", json={"type": "system", "title": "back"},
                headers=tenant.auth,
            )  # fmt: skip
            if r.status_code == 201:
                break
            assert time.monotonic() < deadline, "never went back to the shared limiter"
            await _sleep(0.5)
        assert redis_keys(redis_live, "tidings:limits*")


@pytest.mark.timeout(120)
async def test_a_black_holed_redis_costs_a_publish_at_most_its_budget(
    redis_live: RedisServer, tmp_path: Path, server_with: list[ServerThread]
) -> None:
    with BlackHole(redis_live.port) as hole:
        common = {"limits_url": hole.url, "broker_url": hole.url, "sweep_interval": 1.0}
        a = ServerThread(make_settings(str(tmp_path), **common)).start()
        server_with.append(a)
        b = ServerThread(make_settings(str(tmp_path), **common)).start()  # same store
        server_with.append(b)
        tenant = create_tenant(a.url, "bounce")
        async with (
            httpx.AsyncClient(base_url=a.url, timeout=30) as client,
            Stream(a.url, tenant.token("ann")) as here,
            Stream(b.url, tenant.token("bob")) as there,
        ):
            await here.next_event("ready")
            await there.next_event("ready")
            await publish(client, tenant, "before")
            assert [f.id for f in await there.notifications(1)] == [1]  # through Redis

            hole.swallow()
            took = []
            for n in range(6):
                started = time.monotonic()
                await publish(client, tenant, f"in the hole {n}")
                took.append(time.monotonic() - started)
            # Budgets: 250 ms for the limiter, 250 ms for the broker publish; the first publish
            # pays both (then the breakers open), the others neither. Without them the first
            # waited on socket timeouts (1 s for the limiter, 2 s x 2 for the broker).
            assert took[0] < 1.5, took
            service = a.service
            assert service.limiter.breaker.state == "open"
            assert service.broker.breaker.state == "open" and service.broker.breaker.refused >= 4
            # A stream opens without waiting on the cluster-wide caps either.
            started = time.monotonic()
            async with Stream(a.url, tenant.token("cy")) as late:
                await late.next_event("ready", timeout=5)
            assert time.monotonic() - started < 0.9, "stream open waited on Redis"
            assert a.app.state.tidings.hub.slots.breaker.state in ("open", "half-open")

            # Nothing lost: this instance's hub has them at once; the other one, whose Redis
            # listener hears nothing either, finds them in the store (the sweep).
            assert [f.id for f in await here.notifications(7)] == list(range(1, 8))
            assert [f.id for f in await there.notifications(6, timeout=20)] == list(range(2, 8))

            # The network heals: after the cooldown a probe closes each breaker again.
            hole.restore()
            deadline = time.monotonic() + 20
            n = 0
            while service.limiter.breaker.state != "closed" or (
                service.broker.breaker.state != "closed"
            ):
                assert time.monotonic() < deadline, "the breakers never closed"
                await publish(client, tenant, f"after {n}")
                n += 1
                await _sleep(0.5)
            await publish(client, tenant, "healed")
            last = 8 + n
            got = await there.notifications(n + 1, timeout=20)
            assert [f.id for f in got] == list(range(8, last + 1))


async def _sleep(seconds: float) -> None:
    import anyio

    await anyio.sleep(seconds)
