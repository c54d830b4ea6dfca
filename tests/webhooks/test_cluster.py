"""Durability and cooperation: deliveries pending when tidings stops are sent after it starts
again; two instances on one store deliver each event exactly once, in order per endpoint."""

from __future__ import annotations

import httpx

from tests.support import ServerThread, Tenant, create_tenant
from tests.webhooks.conftest import Receiver, add_endpoint, publish
from tidings.config import Settings


def _queued(server: ServerThread, tenant: Tenant, count: int) -> None:
    """Until ``count`` events are recorded (the queue is in the store)."""
    import time

    from tests.webhooks.conftest import operator

    deadline = time.monotonic() + 15
    path = f"/v1/admin/tenants/{tenant.id}/webhooks/events"
    while len(operator(server.url, "GET", path, params={"limit": 200}).json()["events"]) < count:
        assert time.monotonic() < deadline, "events were not queued"
        time.sleep(0.05)


def test_pending_deliveries_survive_a_restart(hook_settings: Settings, receiver: Receiver) -> None:
    first = ServerThread(hook_settings).start()
    try:
        tenant = create_tenant(first.url, "jump-joy")
        add_endpoint(tenant, receiver, "/later", ["notification.created"])
        receiver.answers = [503] * 1000  # the receiver is down: everything waits
        seqs = [publish(tenant, f"n{i}") for i in range(5)]
        _queued(first, tenant, 5)
    finally:
        first.stop()
    receiver.answers = []
    assert not receiver.ok()
    second = ServerThread(hook_settings).start()  # same store, a new process' worth of state
    try:
        receiver.wait(lambda: len(receiver.ok()) == 5)
        assert [d.payload["data"]["notification"]["id"] for d in receiver.ok()] == seqs
    finally:
        second.stop()


def test_two_instances_deliver_each_event_once_in_order(
    hook_settings: Settings, receiver: Receiver
) -> None:
    one = ServerThread(hook_settings).start()
    two = ServerThread(hook_settings).start()
    try:
        tenant = create_tenant(one.url, "jump-joy")
        add_endpoint(tenant, receiver, "/a", ["notification.created"])
        add_endpoint(tenant, receiver, "/b", ["notification.created"])
        receiver.answers = [500, 500, 500]  # some retries in between
        at_two = Tenant(tenant.id, tenant.key, two.url)
        seqs = []
        for i in range(20):
            seqs.append(publish(tenant if i % 2 else at_two, f"n{i}"))
        seqs.sort()
        receiver.wait(lambda: len(receiver.ok()) == 40, timeout=25)
        for path in ("/a", "/b"):
            got = [d.payload["data"]["notification"]["id"] for d in receiver.ok(path)]
            assert got == seqs, path  # each once, in seq order
            assert len({d.id for d in receiver.ok(path)}) == 20
        assert httpx.get(f"{one.url}/readyz", timeout=10).status_code == 200
    finally:
        two.stop()
        one.stop()
