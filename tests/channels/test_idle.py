"""The background workers rest while nothing happens and answer at once when something does.

``TIDINGS_IDLE_POLL_MAX``: after each look at the store that found nothing, the planner's and
the push worker's pause doubles up to it (the webhook worker's too while no endpoint exists);
a publish here, a notification relayed from another instance, due work, or a push retry's due
time end the pause (docs/performance.md, "Session 6")."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tests.channels.conftest import (
    PushService,
    bearer,
    channel_settings,
    on_server,
    start_server,
    token,
    wait_until,
)
from tests.support import ServerThread, Tenant, publish
from tidings.channels.clock import as_utc
from tidings.channels.tables import push_outbox

pytestmark = pytest.mark.anyio
CAP = 4.0


@pytest.fixture
def server(tmp_path: Path, push_service: PushService) -> Iterator[ServerThread]:
    """A server whose workers back off to ``CAP`` s; push retries start at 5 s."""
    settings = channel_settings(
        tmp_path, push_ca_file=str(push_service.ca), idle_poll_max=CAP, push_retry_base=5.0
    )
    srv = start_server(settings)
    try:
        yield srv
    finally:
        srv.stop()


async def subscribe(
    client: httpx.AsyncClient, server: ServerThread, user_token: str, sub: Any
) -> None:
    r = await client.post(
        f"{server.url}/v1/push/subscriptions", json=sub, headers=bearer(user_token)
    )
    assert r.status_code == 201, r.text


def workers(server: ServerThread) -> Any:
    return server.app.state.channels


async def test_an_idle_instance_backs_off_and_a_publish_is_still_pushed_at_once(
    server: ServerThread, tenant: Tenant, push_service: PushService
) -> None:
    ch = workers(server)
    async with httpx.AsyncClient(timeout=10) as client:
        await subscribe(
            client, server, token(tenant, "eve"), push_service.device("eve").subscription()
        )

        async def rested() -> bool:
            return bool(ch.planner.every == CAP and ch.push_worker.every == CAP)

        # 1 + 2 s for the planner, 1 + 2 + 4 (capped) for the push worker.
        await wait_until(rested, timeout=15, what="the idle workers' pause to reach its cap")
        started = time.monotonic()
        sent = await publish(client, tenant, "Payment received", type="payment_received")
        [message] = await push_service.wait_for("eve")
        took = time.monotonic() - started
        assert message["id"] == sent["id"]
        # Woken by the publish, not by the next look: well within the 4 s pause (the planner
        # rests MIN_GAP between passes; the push worker is woken by the plan).
        assert took < CAP - 1.5, took
        assert ch.planner.every == 1.0  # back to the base pause after the publish


async def test_a_push_retry_is_sent_at_its_due_time_not_at_the_next_idle_look(
    server: ServerThread, tenant: Tenant, push_service: PushService
) -> None:
    """The retry is due 4-6 s after the failure (5 s ± 20 %); looks that found nothing at 1, 3
    and 7 s would send it at 7 s. The worker sleeps until the row's ``due_at`` instead."""
    ch = workers(server)
    async with httpx.AsyncClient(timeout=10) as client:
        await subscribe(
            client, server, token(tenant, "eve"), push_service.device("eve").subscription()
        )
        push_service.script["eve"] = [503]
        await publish(client, tenant, "Payment received", type="payment_received")

        async def due_at() -> float | None:
            async def read(channels: Any) -> Any:
                async with channels.service.store.read() as conn:
                    return (
                        await conn.execute(
                            select(push_outbox.c.due_at, push_outbox.c.attempts).where(
                                push_outbox.c.state == "pending"
                            )
                        )
                    ).first()

            row = await on_server(server, read)
            return None if row is None or row.attempts < 1 else as_utc(row.due_at).timestamp()

        async def failed_once() -> bool:
            return await due_at() is not None

        await wait_until(failed_once, what="the first attempt to fail and be rescheduled")
        due = await due_at()
        assert due is not None

        async def seen() -> bool:
            return ch.push_worker.next_due is not None

        await wait_until(seen, what="the worker to see the retry's due time")
        assert abs(as_utc(ch.push_worker.next_due).timestamp() - due) < 0.01
        [message] = await push_service.wait_for("eve", timeout=15)
        late = time.time() - due
        assert message["title"] == "Payment received"
        assert -0.05 < late < 0.95, late  # at its due time (a look at 7 s would be 1-3 s late)


async def test_a_relayed_notification_ends_the_planners_rest(
    server: ServerThread, tenant: Tenant
) -> None:
    """Another instance's publish (through the broker, ``Hub.on_relayed``) brings the planner
    back to its base pause at once: a notification whose instance died before planning it is
    planned within a second while anything moves anywhere."""
    ch = workers(server)

    async def rested() -> bool:
        return bool(ch.planner.every == CAP)

    await wait_until(rested, timeout=10, what="the planner's pause to reach its cap")
    hub = ch.service.hub

    async def relay(_: Any) -> None:
        await hub.deliver_raw(tenant.id, 10_000, b"")

    await on_server(server, relay)
    assert ch.planner.every == 1.0
