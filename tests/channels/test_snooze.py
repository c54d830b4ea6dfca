"""Snoozes end exactly once across two instances (issue 10 item 2): one PostgreSQL database, a
Redis broker, both instances' sweeps running (their own loops and ticks run by hand,
concurrently). Each of the user's streams — one per instance — hears ``unsnoozed`` once per
item; a user without a stream is pushed once per item; the counts come back exact.
Time is a ManualClock that starts at the wall clock (a snooze is checked against it)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.channels.conftest import (
    PushService,
    bearer,
    channel_settings,
    on_server,
    start_server,
    token,
)
from tests.support import Stream, create_tenant, mark, publish
from tidings.channels.clock import ManualClock

pytestmark = [pytest.mark.anyio, pytest.mark.postgres, pytest.mark.redis]


async def tick_together(*servers: Any, rounds: int = 3) -> None:
    for _ in range(rounds):
        await asyncio.gather(
            *(on_server(s, lambda ch: ch.reminders_tick()) for s in servers for _ in range(2))
        )


async def unsnoozed(stream: Stream, marker: str) -> list[int]:
    frames = await stream.until(marker)
    ids: list[int] = []
    for frame in frames:
        if frame.event == "unsnoozed":
            assert frame.id is None
            assert [n["id"] for n in frame.data["items"]] == sorted(frame.data["ids"], reverse=True)
            assert all(n["read"] is False for n in frame.data["items"])
            ids += frame.data["ids"]
    return sorted(ids)


@pytest.mark.timeout(120)
async def test_a_snooze_ends_exactly_once_across_instances(
    tmp_path: Path, postgres_url: str, redis_url: str, push_service: PushService
) -> None:
    start = datetime.now(UTC)
    clock = ManualClock(start)
    settings = channel_settings(
        tmp_path,
        database_url=postgres_url,
        broker_url=redis_url,
        push_ca_file=str(push_service.ca),
        # The clock jumps an hour ahead below; without this, a marker published within a
        # second of the start is older than push_max_age (3600 s) by that clock and rightly
        # never pushed ("stale").
        push_max_age=86400,
    )
    a = start_server(settings, clock)
    b = start_server(settings, clock)
    try:
        tenant = create_tenant(a.url, "jump-joy")
        ann, bob = token(tenant, "ann"), token(tenant, "bob")
        device = push_service.device("bob-phone")
        async with httpx.AsyncClient(timeout=10) as client:
            r = await client.post(
                f"{b.url}/v1/push/subscriptions",
                json=device.subscription(),
                headers=bearer(bob),
            )
            assert r.status_code == 201, r.text
            on_a, on_b = Stream(a.url, ann), Stream(b.url, ann)
            async with on_a, on_b:
                await on_a.next_event("ready")
                await on_b.next_event("ready")
                for i in range(3):
                    await publish(client, tenant, f"n{i + 1}")
                await push_service.wait_for("bob-phone", 3)  # bob is away: each was pushed

                until = (start + timedelta(hours=1)).isoformat()
                for who, url, ids in ((ann, a.url, [1, 2]), (bob, b.url, [3])):
                    r = await client.post(
                        f"{url}/v1/feed/snooze",
                        json={"ids": ids, "until": until},
                        headers=bearer(who),
                    )
                    assert r.status_code == 200, r.text
                r = await client.get(f"{b.url}/v1/feed/unread-count", headers=bearer(ann))
                assert r.json() == {"count": 1, "more": False}

                await tick_together(a, b)  # not due yet: nothing ends
                assert await unsnoozed(on_a, await mark(tenant, "m1")) == []

                clock.set(start + timedelta(hours=1, seconds=1))
                await tick_together(a, b)
                marker = await mark(tenant, "m2")
                assert await unsnoozed(on_a, marker) == [1, 2]
                assert await unsnoozed(on_b, marker) == [1, 2]

                await tick_together(a, b)  # later sweeps find nothing more
                marker = await mark(tenant, "m3")
                assert await unsnoozed(on_a, marker) == []
                assert await unsnoozed(on_b, marker) == []

            for url in (a.url, b.url):
                r = await client.get(f"{url}/v1/feed/unread-count", headers=bearer(ann))
                assert r.json() == {"count": 6, "more": False}  # n1-n3 and three markers
                r = await client.get(
                    f"{url}/v1/feed", params={"status": "snoozed"}, headers=bearer(ann)
                )
                assert r.json()["items"] == []
            r = await client.get(f"{a.url}/v1/feed/unread-count", headers=bearer(bob))
            assert r.json() == {"count": 6, "more": False}

            # bob had no stream: item 3 was pushed once more (and only once) when it came back.
            pushed = await push_service.wait_for("bob-phone", 7)  # 3 + markers + the snooze
            await tick_together(a, b)
            await mark(tenant, "m4")
            pushed = await push_service.wait_for("bob-phone", 8)
            assert sorted(m["id"] for m in pushed) == [1, 2, 3, 3, 4, 5, 6, 7], pushed
    finally:
        a.stop()
        b.stop()
