"""The muted-types cache (channels/mutes.py): a warm connect reads no SQL for it, and every
event that changes a user's muted types (their preferences, the tenant's defaults, an
erasure, a tenant deleted) makes the next connect see the change, on this instance at once
and on the others through the broker; while the broker is away nothing cached is trusted."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from tests.conftest import STORES
from tests.support import ServerThread, Stream, create_tenant, make_settings, open_service, publish
from tidings import erasure
from tidings.channels import erasure as channels_erasure
from tidings.channels import profiles
from tidings.channels.mutes import Mutes
from tidings.channels.preferences import TenantPreferences, UserPreferences
from tidings.channels.runtime import Channels
from tidings.domain.principals import Principal
from tidings.service import Tidings
from tidings.store import Store

pytestmark = pytest.mark.anyio
MUTE_BOOKINGS = {"types": {"booking_created": {"in_app": False}}}


@contextmanager
def statements(store: Store) -> Iterator[list[str]]:
    """Every SQL statement run on ``store``'s engine while the block runs."""
    seen: list[str] = []

    def on_execute(*args: Any) -> None:
        seen.append(str(args[2]))

    engine = store.engine.sync_engine
    event.listen(engine, "before_cursor_execute", on_execute)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", on_execute)


def principal(tenant: str, user: str) -> Principal:
    expires = datetime.now(UTC) + timedelta(hours=1)
    return Principal(tenant=tenant, user=user, roles=frozenset(), expires_at=expires)


async def save_prefs(service: Tidings, tenant: str, user: str, body: dict[str, Any]) -> None:
    """Commit a user's preferences as another instance would: no event here."""
    async with service.store.write() as conn:
        prefs = UserPreferences.model_validate(body)
        await profiles.save(conn, tenant, user, now=datetime.now(UTC), prefs=prefs)


# -- one instance --------------------------------------------------------------------------------


async def test_muted_types_are_kept_until_an_event_says_they_changed(tmp_path: Path) -> None:
    async with open_service(make_settings(str(tmp_path))) as service:
        await service.create_tenant("jump-joy", "Jump")
        channels, ann = Channels(service), principal("jump-joy", "ann")
        assert await channels.muted_types(ann) == frozenset()
        with statements(service.store) as seen:
            assert await channels.muted_types(ann) == frozenset()
        assert seen == [], "a warm lookup reads nothing"

        await save_prefs(service, "jump-joy", "ann", MUTE_BOOKINGS)
        assert await channels.muted_types(ann) == frozenset(), "no event yet: still kept"
        service.hub.preferences_changed("jump-joy", "ann")  # as a ``p`` broker message does
        assert await channels.muted_types(ann) == {"booking_created"}

        bob = principal("jump-joy", "bob")
        assert await channels.muted_types(bob) == frozenset()
        async with service.store.write() as conn:  # the tenant's defaults: everyone's changes
            defaults = TenantPreferences.model_validate(
                {"types": {"payment_failed": {"in_app": False}}}
            )
            await profiles.set_tenant_prefs(conn, "jump-joy", defaults, now=datetime.now(UTC))
        await service.preferences_changed("jump-joy")
        assert await channels.muted_types(bob) == {"payment_failed"}
        assert await channels.muted_types(ann) == {"booking_created", "payment_failed"}

        await erasure.erase_user(service, "jump-joy", "ann", also=[channels_erasure.erase_user])
        assert await channels.muted_types(ann) == {"payment_failed"}, "erased: the defaults"
        await erasure.delete_tenant(service, "jump-joy")
        assert len(channels.mutes) == 0, "a deleted tenant's entries are gone"


async def test_nothing_cached_is_trusted_while_the_broker_is_away(tmp_path: Path) -> None:
    async with open_service(make_settings(str(tmp_path))) as service:
        await service.create_tenant("jump-joy", "Jump")
        channels, ann, hub = Channels(service), principal("jump-joy", "ann"), service.hub
        assert await channels.muted_types(ann) == frozenset()  # kept
        hub.broker_changed(connected=False)  # a ``p`` message may be lost from now on
        await save_prefs(service, "jump-joy", "ann", MUTE_BOOKINGS)
        assert await channels.muted_types(ann) == {"booking_created"}
        with statements(service.store) as seen:
            assert await channels.muted_types(ann) == {"booking_created"}
        assert seen, "while the broker is away every lookup reads the store"
        hub.broker_changed(connected=True)
        assert await channels.muted_types(ann) == {"booking_created"}
        with statements(service.store) as seen:
            assert await channels.muted_types(ann) == {"booking_created"}
        assert seen == [], "kept again once the broker is back"

        begun = channels.mutes.begin()  # a fill that read before the broker went and came back
        hub.broker_changed(connected=False)
        hub.broker_changed(connected=True)
        channels.mutes.put("jump-joy", "bob", frozenset({"old"}), begun)
        assert channels.mutes.get("jump-joy", "bob") is None


async def test_a_fill_racing_a_change_is_not_kept_and_the_cache_is_bounded(tmp_path: Path) -> None:
    async with open_service(make_settings(str(tmp_path))) as service:
        mutes = Mutes(service.hub, size=2)
        begun = mutes.begin()  # read from the store, then the change's event arrives
        service.hub.preferences_changed("jump-joy", "ann")
        mutes.put("jump-joy", "ann", frozenset({"old"}), begun)
        assert mutes.get("jump-joy", "ann") is None
        for user in ("ann", "bob", "cy"):
            mutes.put("jump-joy", user, frozenset(), mutes.begin())
        assert len(mutes) == 2 and mutes.get("jump-joy", "ann") is None, "least recent out"
        mutes.close()
        service.hub.preferences_changed("jump-joy", None)  # no longer listening: harmless
        assert len(mutes) == 0


@pytest.mark.parametrize("store", STORES)
async def test_new_users_of_a_tenant_read_the_store_once_not_per_batch(
    store: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The tenant's plain fact: users without stored preferences get the tenant's defaults
    with no SQL after the tenant's first read; a user with preferences is read as before;
    a change of anyone's preferences drops the fact (then it is read again)."""
    overrides: dict[str, Any] = {}
    if store == "postgres":
        overrides["database_url"] = request.getfixturevalue("postgres_url")
    async with open_service(make_settings(str(tmp_path), **overrides)) as service:
        await service.create_tenant("jump-joy", "Jump")
        await save_prefs(service, "jump-joy", "ann", MUTE_BOOKINGS)
        channels = Channels(service)
        first = [principal("jump-joy", f"u{i}") for i in range(5)] + [principal("jump-joy", "ann")]
        with statements(service.store) as seen:
            muted = await asyncio.gather(*(channels.muted_types(p) for p in first))
        assert muted == [frozenset()] * 5 + [{"booking_created"}]
        selects = [q for q in seen if q.startswith("SELECT")]
        assert len(selects) == 3, seen  # the defaults, who has preferences, ann's row
        with statements(service.store) as seen:
            assert await channels.muted_types(principal("jump-joy", "new")) == frozenset()
            assert await channels.muted_types(principal("jump-joy", "ann")) == {"booking_created"}
        assert seen == [], "new users and ann: no SQL"
        assert len(channels.mutes) == 1, "no entry per plain user: only ann's"

        await save_prefs(service, "jump-joy", "u3", MUTE_BOOKINGS)
        assert await channels.muted_types(principal("jump-joy", "u3")) == frozenset(), "no event"
        service.hub.preferences_changed("jump-joy", "u3")  # as a ``p`` broker message does
        assert await channels.muted_types(principal("jump-joy", "u3")) == {"booking_created"}
        with statements(service.store) as seen:
            assert await channels.muted_types(principal("jump-joy", "u4")) == frozenset()
        assert seen == [], "the fact was read again with u3's change, and is kept"

        async with service.store.write() as conn:  # the defaults change: everyone's do
            defaults = TenantPreferences.model_validate(
                {"types": {"payment_failed": {"in_app": False}}}
            )
            await profiles.set_tenant_prefs(conn, "jump-joy", defaults, now=datetime.now(UTC))
        await service.preferences_changed("jump-joy")
        assert await channels.muted_types(principal("jump-joy", "u4")) == {"payment_failed"}

        service.hub.broker_changed(connected=False)  # the fact is not trusted without a broker
        with statements(service.store) as seen:
            assert await channels.muted_types(principal("jump-joy", "u4")) == {"payment_failed"}
        assert seen, "while the broker is away every lookup reads the store"
        channels.mutes.close()


# -- two instances, the Redis broker ------------------------------------------------------------


@pytest.mark.redis
async def test_a_preference_changed_on_b_is_honoured_by_the_next_connect_on_a(
    tmp_path: Path, redis_url: str
) -> None:
    """ann's muted types are kept on A; she mutes a type through B; the ``p`` message that B
    sends reaches A before B's next notification does, so a new stream on A leaves the type out
    of its count and its live frames; so for the tenant's defaults changed on B. A warm
    connect on A runs no SQL at all."""
    settings = make_settings(
        str(tmp_path), broker_url=redis_url, channels_workers=False, sweep_interval=3600.0
    )
    a, b = ServerThread(settings).start(), ServerThread(settings).start()
    try:
        tenant = create_tenant(a.url, "jump-joy")
        token = tenant.token("ann")
        auth = {"Authorization": f"Bearer {token}"}
        on_b = type(tenant)(tenant.id, tenant.key, b.url)
        async with Stream(a.url, token) as first, httpx.AsyncClient(timeout=10) as client:
            await first.next_event("ready")  # keeps the tenant served on A
            await publish(client, tenant, "b1")
            await publish(client, tenant, "s1", type="system")
            await first.notifications(2)
            async with Stream(a.url, token) as probe:  # fills A's caches
                assert (await probe.next_event("ready")).data["unread"]["count"] == 2
            with statements(a.service.store) as seen:
                async with Stream(a.url, token) as warm:
                    assert (await warm.next_event("ready")).data["unread"]["count"] == 2
            assert seen == [], f"a warm connect ran SQL: {seen}"

            r = await client.put(f"{b.url}/v1/preferences", json=MUTE_BOOKINGS, headers=auth)
            assert r.status_code == 200, r.text
            await publish(client, on_b, "marker", type="system")  # after B's ``p`` message
            await first.until("marker")

            async with Stream(a.url, token) as after:
                ready = (await after.next_event("ready")).data
                assert ready["unread"]["count"] == 2, "b1 is muted: s1 and the marker"
                assert [item["title"] for item in ready["latest"]] == ["marker", "s1"]
                await publish(client, on_b, "b2")
                await publish(client, on_b, "marker2", type="system")
                got = await after.until("marker2")
                assert [f.data["title"] for f in got if f.event == "notification"] == []
            with statements(a.service.store) as seen:
                async with Stream(a.url, token) as warm:
                    assert (await warm.next_event("ready")).data["unread"]["count"] == 3
            assert not [s for s in seen if "channel_" in s], "the muted types were kept again"

            await publish(client, on_b, "p1", type="payment_failed")
            defaults = {"types": {"payment_failed": {"in_app": False}}}
            r = await client.put(f"{b.url}/v1/tenant/preferences", json=defaults, headers=on_b.auth)
            assert r.status_code == 200, r.text
            await publish(client, on_b, "marker3", type="system")  # after B's tenant-wide ``p``
            await first.until("marker3")
            async with Stream(a.url, token) as later:
                ready = (await later.next_event("ready")).data
            assert ready["unread"]["count"] == 4, "p1 muted by the tenant's new default"
    finally:
        a.stop()
        b.stop()
