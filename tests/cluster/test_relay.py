"""The :class:`~tidings.delivery.relay.Relay` owns its tasks: inside ``async with`` it carries
another instance's publishes from the broker to this hub; once the block exits, none of its
tasks is left running."""

from __future__ import annotations

import asyncio
from pathlib import Path

import anyio
import pytest

from tests.core.direct.support import new, principal
from tests.support import make_settings
from tidings.delivery.hub import Hub, Subscriber
from tidings.delivery.relay import Relay
from tidings.metrics import Metrics
from tidings.wiring import open_service

pytestmark = pytest.mark.anyio
RELAY_TASKS = {"tidings-broker-listener", "tidings-sweep", "tidings-store-poll"}


async def seqs(sub: Subscriber, until: int) -> list[int]:
    """The seqs offered to ``sub`` up to and including ``until`` (≤ 5 s)."""
    seen: list[int] = []
    with anyio.fail_after(5):
        while until not in seen:
            seen.extend(seq for seq, _ in sub.buffer)
            sub.buffer.clear()
            await asyncio.sleep(0.01)
    return seen


def relay_tasks() -> set[str]:
    return {t.get_name() for t in asyncio.all_tasks() if not t.done()} & RELAY_TASKS


async def test_the_relay_carries_other_instances_and_owns_its_tasks(tmp_path: Path) -> None:
    settings = make_settings(str(tmp_path), sweep_interval=3600.0)  # no sweep during the test
    async with open_service(settings, live=False) as other:  # another instance, one broker
        await other.create_tenant("t1", "One")
        hub = Hub(other.store, Metrics(), buffer=16, max_per_user=5, max_per_tenant=5)
        sub = await hub.subscribe(principal("t1", "alice"))
        assert relay_tasks() == set()
        async with Relay(other.broker, hub, origin="here", sweep_interval=3600.0):
            assert relay_tasks() == {"tidings-broker-listener", "tidings-sweep"}
            await other.publish("t1", new("from the other instance"))
            assert await seqs(sub, until=1) == [1]
            await other.publish("t1", new("second"))
            assert await seqs(sub, until=2) == [2]  # by the broker, once
        assert relay_tasks() == set()

        hub.shutdown()
