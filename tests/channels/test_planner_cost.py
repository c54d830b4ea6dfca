"""What the channel planner costs (issue 8): proportional to what it must do.

A tenant with no channel for anyone (no push subscription, no e-mail address) has its cursor
moved past everything committed in one transaction, without reading a notification; a tenant
with one device plans for that user only; parsed profiles are reused while their row is the
same. Real store on SQLite and PostgreSQL, the planner called directly (no background worker).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event, func, select

from tests.support import open_service
from tidings.channels import profiles, subscriptions
from tidings.channels.runtime import Channels
from tidings.channels.tables import channel_cursors, push_outbox
from tidings.config import Settings
from tidings.domain.notifications import NewNotification, utcnow
from tidings.service import Tidings
from tidings.store import Store

pytestmark = pytest.mark.anyio
TENANT = "jump-joy"


@contextmanager
def statements(store: Store) -> Iterator[list[str]]:
    seen: list[str] = []

    def on_execute(*args: Any) -> None:
        seen.append(str(args[2]))

    engine = store.engine.sync_engine
    event.listen(engine, "before_cursor_execute", on_execute)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", on_execute)


async def publish(service: Tidings, count: int) -> None:
    for start in range(0, count, 100):
        items = [
            NewNotification(type="booking_created", title=f"Booking #{i}")
            for i in range(start, min(count, start + 100))
        ]
        await service.publish_many(TENANT, items)


async def cursor(service: Tidings) -> int:
    async with service.store.read() as conn:
        value = (
            await conn.execute(
                select(channel_cursors.c.last_seq).where(channel_cursors.c.tenant_id == TENANT)
            )
        ).scalar_one()
    return int(value)


async def test_a_tenant_without_channels_costs_one_transaction_and_no_reads(
    settings: Settings,
) -> None:
    async with open_service(settings) as service:
        await service.create_tenant(TENANT, "J")
        async with service.store.write() as conn:  # a user without device or e-mail
            await profiles.save(conn, TENANT, "ann", now=utcnow(), roles=["staff"])
        await publish(service, 250)
        planner = Channels(service).planner
        with statements(service.store) as seen:
            assert await planner.run_once([TENANT]) == 250
        assert await cursor(service) == 250
        assert not [s for s in seen if "FROM notifications" in s], "no notification was read"
        assert not [s for s in seen if "FROM channel_users" in s and "LIMIT" not in s]
        assert len([s for s in seen if s.startswith("UPDATE channel_cursors")]) == 1
        with statements(service.store) as seen:
            assert await planner.run_once([TENANT]) == 0  # nothing new: nothing written
        assert not [s for s in seen if s.startswith("UPDATE")]


async def test_a_device_is_planned_for_its_user_only(settings: Settings) -> None:
    async with open_service(settings) as service:
        await service.create_tenant(TENANT, "J")
        async with service.store.write() as conn:
            for user in ("ann", "bob", "cy"):
                await profiles.save(conn, TENANT, user, now=utcnow(), roles=["staff"])
            await subscriptions.save(
                conn,
                TENANT,
                "bob",
                endpoint="https://push.example/bob",
                p256dh="p" * 87,
                auth="a" * 22,
                user_agent=None,
                now=utcnow(),
            )
        await publish(service, 150)
        planner = Channels(service).planner
        with statements(service.store) as seen:
            assert await planner.run_once([TENANT]) == 150
        assert await cursor(service) == 150
        async with service.store.read() as conn:
            queued = await conn.execute(
                select(push_outbox.c.user_id, func.count()).group_by(push_outbox.c.user_id)
            )
            assert dict(queued.all()) == {"bob": 150}
        assert len([s for s in seen if s.startswith("UPDATE channel_cursors")]) == 2  # 100 + 50


async def test_parsed_profiles_are_reused_while_their_row_is_unchanged(
    settings: Settings,
) -> None:
    async with open_service(settings) as service:
        await service.create_tenant(TENANT, "J")
        cache = profiles.ProfileCache()
        async with service.store.write() as conn:
            await profiles.save(conn, TENANT, "ann", now=utcnow(), email="ann@example.com")
        async with service.store.read() as conn:
            first = await profiles.reachable(conn, TENANT, False, True, cache)
            again = await profiles.reachable(conn, TENANT, False, True, cache)
        assert [p.user for p in first] == ["ann"] and again[0] is first[0]
        async with service.store.write() as conn:
            await profiles.save(conn, TENANT, "ann", now=utcnow(), time_zone="Europe/Berlin")
        async with service.store.read() as conn:
            changed = await profiles.reachable(conn, TENANT, False, True, cache)
            assert await profiles.reachable(conn, TENANT, False, False, cache) == []
        assert changed[0].time_zone == "Europe/Berlin", "a changed row is parsed again"
