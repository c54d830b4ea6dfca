"""The actor of a notification is never pushed or e-mailed about it (issue 10 item 1): the
planner skips them as a recipient; everyone else is planned as before."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.channels.conftest import PushService, bearer, token
from tests.support import ServerThread, Tenant, publish

pytestmark = pytest.mark.anyio


@pytest.fixture
def server(push_server: ServerThread) -> ServerThread:
    """The root ``tenant`` fixture builds on this server."""
    return push_server


async def test_the_actor_is_not_pushed_the_others_are(
    server: ServerThread, tenant: Tenant, push_service: PushService
) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        for user in ("ann", "bob"):
            device = push_service.device(f"{user}-phone")
            r = await client.post(
                f"{server.url}/v1/push/subscriptions",
                json=device.subscription(),
                headers=bearer(token(tenant, user, email_address=f"{user}@example.test")),
            )
            assert r.status_code == 201, r.text
        mine = await publish(client, tenant, "Payment recorded", actor={"id": "ann", "name": "Ann"})
        marker = await publish(client, tenant, "marker")
        pushed = await push_service.wait_for("bob-phone", 2)
        assert sorted(m["id"] for m in pushed) == [mine["id"], marker["id"]]
        [only] = await push_service.wait_for("ann-phone", 1)
        assert only["id"] == marker["id"], "ann is not pushed about her own action"
        log: dict[str, Any] = (
            await client.get(
                f"{server.url}/v1/notifications/{mine['id']}/deliveries", headers=tenant.auth
            )
        ).json()
        assert log["entries"], log
        assert {e["user"] for e in log["entries"]} == {"bob"}, log
