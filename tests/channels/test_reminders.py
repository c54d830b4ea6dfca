"""Reminders: exactly one per booking with two instances on one PostgreSQL database, none for a
cancelled booking, and a restart between ticks changes nothing. Time is a ManualClock."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.channels.conftest import bearer, channel_settings, on_server, start_server, token
from tests.support import ServerThread, Tenant, create_tenant
from tidings.channels import reminders
from tidings.channels.clock import ManualClock

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]

BASE = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


async def schedule_bookings(server: ServerThread, ids: range) -> None:
    """The demo's path: in-process, inside the transaction that writes the booking."""

    async def work(channels: Any) -> None:
        for booking in ids:
            async with channels.service.transaction() as tx:
                await reminders.schedule_booking(
                    tx.conn,
                    "jump-joy",
                    booking,
                    BASE + timedelta(hours=24 + booking),
                    now=channels.clock.now(),
                    title=f"Booking #{booking} starts tomorrow",
                    link=f"/bookings/{booking}",
                )

    await on_server(server, work)


async def cancel_booking(server: ServerThread, booking: int) -> bool:
    async def work(channels: Any) -> bool:
        async with channels.service.transaction() as tx:
            return await reminders.cancel_booking(
                tx.conn, "jump-joy", booking, now=channels.clock.now()
            )

    return await on_server(server, work)


async def tick_together(*servers: ServerThread, rounds: int = 3) -> int:
    total = 0
    for _ in range(rounds):
        done = await asyncio.gather(
            *(on_server(s, lambda ch: ch.reminders_tick()) for s in servers for _ in range(2))
        )
        total += sum(done)
    return total


async def reminder_feed(client: httpx.AsyncClient, url: str, user_token: str) -> list[Any]:
    r = await client.get(
        f"{url}/v1/feed", params={"type": "reminder", "limit": 100}, headers=bearer(user_token)
    )
    assert r.status_code == 200, r.text
    items: list[Any] = r.json()["items"]
    return items


async def settle(
    client: httpx.AsyncClient, url: str, user_token: str, count: int, *servers: ServerThread
) -> list[Any]:
    """Wait until ``count`` reminders exist, then make sure no more follow: ticks run by hand on
    every server, concurrently with their background loops, find nothing left to publish."""
    for _ in range(100):
        items = await reminder_feed(client, url, user_token)
        if len(items) >= count:
            break
        await asyncio.sleep(0.05)
    assert await tick_together(*servers) == 0
    return await reminder_feed(client, url, user_token)


async def test_each_booking_gets_exactly_one_reminder_across_instances(
    tmp_path: Path, postgres_url: str
) -> None:
    clock = ManualClock(BASE)
    settings = channel_settings(tmp_path, database_url=postgres_url)
    a = start_server(settings, clock)
    b = start_server(settings, clock)
    servers = [a, b]
    try:
        tenant: Tenant = create_tenant(a.url, "jump-joy")
        ann = token(tenant, "ann")
        await schedule_bookings(a, range(1, 21))
        assert await cancel_booking(b, 5) is True
        async with httpx.AsyncClient(timeout=10) as client:
            # The generic API: any host can arm and cancel its own reminders.
            r = await client.post(
                f"{b.url}/v1/reminders",
                headers=tenant.auth,
                json={
                    "key": "custom:1",
                    "due_at": (BASE + timedelta(hours=2)).isoformat(),
                    "title": "Inspect the castles",
                    "data": {"batch": 7},
                },
            )
            assert r.status_code == 201, r.text
            assert r.json()["state"] == "pending"
            r = await client.post(
                f"{a.url}/v1/reminders",
                headers=tenant.auth,
                json={
                    "key": "custom:2",
                    "due_at": (BASE + timedelta(hours=3)).isoformat(),
                    "title": "Never sent",
                },
            )
            assert r.status_code == 201, r.text
            r = await client.delete(f"{b.url}/v1/reminders/custom:2", headers=tenant.auth)
            assert r.status_code == 200 and r.json()["cancelled"] is True

            assert await tick_together(a, b) == 0
            assert await reminder_feed(client, a.url, ann) == []

            clock.set(BASE + timedelta(hours=10, minutes=1))  # bookings 1-10 and custom:1 due
            await tick_together(a, b)
            items = await settle(client, a.url, ann, 10, *servers)
            ids = sorted(i["data"].get("booking_id", 0) for i in items)
            assert ids == [0, 1, 2, 3, 4, 6, 7, 8, 9, 10], ids

            a.stop()  # a restart between ticks changes nothing
            a = start_server(settings, clock)
            servers = [a, b]
            assert await tick_together(a, b) == 0
            assert len(await settle(client, a.url, ann, 10, *servers)) == 10

            clock.set(BASE + timedelta(hours=30))
            await tick_together(a, b)
            items = await settle(client, b.url, ann, 19, *servers)
            ids = sorted(i["data"].get("booking_id", 0) for i in items)
            assert ids == [0] + [n for n in range(1, 21) if n != 5], ids
            assert len({i["id"] for i in items}) == len(items)

            done = (await client.get(f"{a.url}/v1/reminders/booking:3", headers=tenant.auth)).json()
            assert done["state"] == "done" and done["notification_id"] in {i["id"] for i in items}
            first = next(i for i in items if i["data"].get("booking_id") == 3)
            assert first["title"] == "Booking #3 starts tomorrow" and first["link"] == "/bookings/3"
            assert first["data"]["starts_at"] == "2026-12-02T11:00:00.000000Z"
            cancelled = await client.get(f"{b.url}/v1/reminders/booking:5", headers=tenant.auth)
            assert cancelled.json()["state"] == "cancelled"
            # Re-arming a sent reminder does not send it again.
            r = await client.post(
                f"{a.url}/v1/reminders",
                headers=tenant.auth,
                json={
                    "key": "custom:1",
                    "due_at": (BASE + timedelta(hours=1)).isoformat(),
                    "title": "Again?",
                },
            )
            assert r.json()["state"] == "done"
            await tick_together(a, b)
            assert len(await settle(client, a.url, ann, 20, *servers)) == 20
    finally:
        for server in servers:
            server.stop()
