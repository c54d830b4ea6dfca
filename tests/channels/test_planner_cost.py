"""What the channels cost (issue 8): proportional to what they must do.

A tenant with no channel for anyone (no push subscription, no e-mail address) has its cursor
moved past everything committed in one transaction, without reading a notification, and from
then on passes woken by its publishes cost no SQL at all (the 1 s poll moves its cursor) until
a user gains a channel — on any instance; a tenant with one device plans for that user only;
parsed profiles are reused while their row is the same. The presence heartbeat writes rows
only for users with a device and records new users' token claims in one write. Real store on
SQLite and PostgreSQL, the planner and heartbeat called directly (no background worker), and
two servers on one store and one Redis broker for the event across instances.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import event, func, select

from tests.channels.conftest import (
    PushService,
    bearer,
    channel_settings,
    on_server,
    start_server,
    token,
    wait_until,
)
from tests.support import create_tenant, open_service
from tests.support import publish as publish_http
from tidings.channels import profiles, subscriptions
from tidings.channels.runtime import Channels
from tidings.channels.tables import channel_cursors, channel_users, presence, push_outbox
from tidings.config import Settings
from tidings.domain.notifications import NewNotification, utcnow
from tidings.domain.principals import Principal
from tidings.service import Tidings
from tidings.store import Store

pytestmark = pytest.mark.anyio
TENANT = "jump-joy"


@contextmanager
def statements(store: Store) -> Iterator[list[str]]:
    seen: list[str] = []

    def on_execute(*args: Any) -> None:
        seen.append(str(args[2]))

    # the async engine's and, on SQLite in a file, the synchronous one of Store.run_write
    engines = [store.engine.sync_engine, *filter(None, [store.writer_engine])]
    for engine in engines:
        event.listen(engine, "before_cursor_execute", on_execute)
    try:
        yield seen
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", on_execute)


async def publish(service: Tidings, count: int) -> None:
    for start in range(0, count, 100):
        items = [
            NewNotification(type="booking_created", title=f"Booking #{i}")
            for i in range(start, min(count, start + 100))
        ]
        await service.publish_many(TENANT, items)


async def save_device(conn: Any, user: str) -> None:
    """A push subscription of ``user`` (at ``https://push.example/<user>``)."""
    await subscriptions.save(
        conn,
        TENANT,
        user,
        endpoint=f"https://push.example/{user}",
        p256dh="p" * 87,
        auth="a" * 22,
        user_agent=None,
        now=utcnow(),
    )


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
            await save_device(conn, "bob")
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


async def test_woken_passes_skip_a_tenant_without_channels_until_the_poll(
    settings: Settings,
) -> None:
    async with open_service(settings) as service:
        await service.create_tenant(TENANT, "J")
        await publish(service, 10)
        planner = Channels(service).planner
        assert await planner.run_once([TENANT]) == 10  # finds nobody reachable, remembers it
        await publish(service, 5)
        with statements(service.store) as seen:
            assert await planner.run_once([TENANT]) == 0  # a pass woken by a publish
        assert seen == [], "no SQL for a tenant where nobody can be reached"
        assert await cursor(service) == 10
        assert await planner.run_once() == 5  # the full poll moves the cursor on
        assert await cursor(service) == 15


async def test_a_publish_nobody_can_be_pushed_for_wakes_the_planner_only_once_someone_can(
    settings: Settings,
) -> None:
    """A publish to a tenant the planner remembers as unreachable does not wake it; when a user
    of that tenant gains a channel (a push subscription: ``preferences_changed``, as the
    subscription route calls it), the planner is woken for the tenant at once, so what was
    published meanwhile is planned then, not at the next poll."""
    async with open_service(settings) as service:
        await service.create_tenant(TENANT, "J")
        await publish(service, 3)
        planner = Channels(service).planner
        assert await planner.run_once([TENANT]) == 3  # finds nobody reachable, remembers it
        planner._wake.clear()
        item = NewNotification(type="booking_created", title="Nobody to push")
        await planner.on_publish([n for n, _ in await service.publish_many(TENANT, [item])])
        assert not planner._wake.is_set() and planner._woken == set()
        async with service.store.write() as conn:
            await profiles.save(conn, TENANT, "ann", now=utcnow())
            await save_device(conn, "ann")
        await service.preferences_changed(TENANT, "ann")
        assert planner._wake.is_set() and planner._woken == {TENANT}
        assert await planner.run_once(sorted(planner._woken)) == 1
        async with service.store.read() as conn:
            queued = await conn.execute(select(push_outbox.c.seq))
            assert [seq for (seq,) in queued] == [4]


async def test_a_push_subscription_on_another_instance_is_planned_for(
    tmp_path: Any, redis_url: str, push_service: PushService
) -> None:
    settings = channel_settings(tmp_path, broker_url=redis_url, push_ca_file=str(push_service.ca))
    a, b = start_server(settings), start_server(settings)
    try:
        tenant = create_tenant(a.url, TENANT)
        async with httpx.AsyncClient(timeout=10) as client:
            await publish_http(client, tenant, "nobody can be pushed yet")

            def unreachable_on_a(expected: bool) -> Any:
                async def check() -> bool:
                    async def probe(channels: Any) -> bool:
                        return (TENANT in channels.planner.unreachable) is expected

                    return await on_server(a, probe)

                return check

            await wait_until(unreachable_on_a(True), what="A's planner to skip the tenant")
            ann = token(tenant, "ann")
            r = await client.post(
                f"{b.url}/v1/push/subscriptions",
                json=push_service.device("ann").subscription(),
                headers=bearer(ann),
            )
            assert r.status_code == 201, r.text
            # B's "p" broker message reaches A: A plans the tenant again at once, not at a poll
            await wait_until(unreachable_on_a(False), what="A's planner to hear of the device")
            sent = await publish_http(client, tenant, "pushed")
            got = await push_service.wait_for("ann", 1)
            assert [m["id"] for m in got] == [sent["id"]]
    finally:
        a.stop()
        b.stop()


def _principal(user: str, email: str | None = None) -> Principal:
    return Principal(TENANT, user, frozenset({"staff"}), utcnow() + timedelta(hours=1), email)


async def test_presence_rows_only_for_users_with_a_device_and_claims_in_one_write(
    settings: Settings,
) -> None:
    async with open_service(settings) as service:
        await service.create_tenant(TENANT, "J")
        async with service.store.write() as conn:
            await save_device(conn, "u7")
        channels = Channels(service)
        users = [f"u{i}" for i in range(40)]
        for user in users:
            await service.hub.subscribe(_principal(user, f"{user}@example.com"))
        with statements(service.store) as seen:
            await channels.presence.beat()
        async with service.store.read() as conn:
            rows = (await conn.execute(select(presence.c.user_id))).scalars().all()
            recorded = (await conn.execute(select(channel_users.c.user_id))).scalars().all()
        assert rows == ["u7"], "a presence row only for the user who can be pushed"
        assert sorted(recorded) == sorted(users), "every token's claims recorded"
        assert len([s for s in seen if s.startswith("INSERT INTO channel_users")]) == 1
        with statements(service.store) as seen:
            await channels.presence.beat()  # nothing new: no claims written again
        assert not [s for s in seen if "channel_users" in s]


async def test_a_full_poll_moves_remembered_tenants_with_one_statement_each(
    settings: Settings,
) -> None:
    """The 1 s poll finds tenants nobody can be pushed for pending at every publish: for those
    it remembers, one UPDATE each (the store checking there is still no channel) in one write
    transaction, not a planning transaction each."""
    async with open_service(settings) as service:
        names = [TENANT, "bounce-co", "party-hq"]
        for name in names[1:]:
            await service.create_tenant(name, name)
        await service.create_tenant(TENANT, "J")
        planner = Channels(service).planner
        planner.unreachable.watch(service.hub)
        item = NewNotification(type="booking_created", title="Nobody to push")
        for name in names:
            await service.publish_many(name, [item])
        assert await planner.run_once() == 3  # plans each fully once: remembers them
        for name in names:
            await service.publish_many(name, [item, item])
        with statements(service.store) as seen:
            assert await planner.run_once() == 6
        writes = [s for s in seen if s.split()[0] in ("INSERT", "UPDATE", "DELETE")]
        moves = [s for s in writes if s.startswith("UPDATE channel_cursors")]
        assert len(moves) == 3 and writes == moves, seen
        assert len([s for s in seen if s.startswith("SELECT")]) == 1, "the pending tenants"
        assert await cursor(service) == 3


async def test_on_sqlite_a_full_poll_is_one_synchronous_transaction(settings: Settings) -> None:
    """On SQLite in a file the full poll — the pending tenants' read and the remembered
    tenants' cursor moves — is ONE write transaction on a synchronous connection
    (``Store.run_write``), not a read and a write transaction through aiosqlite (~3.6 ms of
    CPU once a second while anything is published; docs/performance.md, session 12). On
    PostgreSQL: a read, then one write transaction for the moves, as before."""
    async with open_service(settings) as service:
        store = service.store
        await service.create_tenant(TENANT, "J")
        planner = Channels(service).planner
        planner.unreachable.watch(service.hub)
        item = NewNotification(type="booking_created", title="Nobody to push")
        await service.publish_many(TENANT, [item])
        assert await planner.run_once() == 1  # planned fully once: remembered
        await service.publish_many(TENANT, [item, item])
        used: list[str] = []
        for name in ("read", "write", "run_write"):
            real = getattr(store, name)

            def counted(*args: Any, _real: Any = real, _name: str = name) -> Any:
                used.append(_name)
                return _real(*args)

            setattr(store, name, counted)
        try:
            assert await planner.run_once() == 2
        finally:
            for name in ("read", "write", "run_write"):
                delattr(store, name)
        assert used == (["run_write"] if store.writes_in_thread else ["read", "write"])
        assert store.writes_in_thread == (store.engine.dialect.name == "sqlite")
        assert await cursor(service) == 3


@pytest.mark.parametrize("channel", ["device", "e-mail"])
async def test_a_remembered_tenant_that_gained_a_channel_unheard_is_planned_by_the_poll(
    settings: Settings, channel: str
) -> None:
    """The memory only ever defers: a device or (with e-mail on) an address saved where this
    instance did not hear of it (no ``p`` message: a broker outage, another instance) is found
    by the poll's own check in the store, and what was published since is planned for it."""
    settings = settings.model_copy(update={"smtp_host": "127.0.0.1"})
    async with open_service(settings) as service:
        await service.create_tenant(TENANT, "J")
        planner = Channels(service).planner
        planner.unreachable.watch(service.hub)
        await publish(service, 2)
        assert await planner.run_once() == 2
        assert TENANT in planner.unreachable
        async with service.store.write() as conn:  # no preferences_changed: unheard
            if channel == "device":
                await profiles.save(conn, TENANT, "ann", now=utcnow())
                await save_device(conn, "ann")
            else:
                await profiles.save(conn, TENANT, "ann", now=utcnow(), email="ann@example.com")
        await publish(service, 1)
        assert TENANT in planner.unreachable
        assert await planner.run_once() == 1
        assert TENANT not in planner.unreachable, "planned fully: the channel was found"
        assert await cursor(service) == 3
        if channel == "device":
            async with service.store.read() as conn:
                queued = await conn.execute(select(push_outbox.c.user_id, push_outbox.c.seq))
                assert [tuple(row) for row in queued] == [("ann", 3)]
