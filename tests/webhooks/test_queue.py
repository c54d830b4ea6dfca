"""The queue at the store level (no worker, no server): what is recorded, in which order, and
in whose transaction."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import select

from tests.support import open_service
from tidings.config import Settings
from tidings.domain.notifications import NewNotification
from tidings.domain.principals import Principal
from tidings.hooks import Hooks
from tidings.webhooks import queue
from tidings.webhooks.manage import Webhooks
from tidings.webhooks.tables import webhook_deliveries, webhook_events

pytestmark = pytest.mark.anyio


async def _queued(webhooks: Webhooks) -> list[tuple[str, dict[str, Any]]]:
    """(type, data) of each queued delivery, in delivery order."""
    async with webhooks.store.read() as conn:
        rows = await conn.execute(
            select(webhook_events.c.type, webhook_events.c.body)
            .join(webhook_deliveries, webhook_deliveries.c.event_id == webhook_events.c.id)
            .order_by(webhook_deliveries.c.id)
        )
        return [(r.type, orjson.loads(r.body)["data"]) for r in rows]


async def test_created_comes_before_what_happened_to_it(settings: Settings) -> None:
    """The tailer has not run: a read event first makes the pending created events."""
    async with open_service(settings) as service:
        webhooks = Webhooks(
            service.store, settings.model_copy(update={"webhook_allow_networks": "127.0.0.0/8"})
        )
        service.plug([Hooks(on_event=[webhooks.on_event])])
        await service.create_tenant("acme", "Acme")
        await service.publish("acme", NewNotification(type="system", title="before"))
        types = ["notification.created", "notification.read"]
        await webhooks.add("acme", url="http://127.0.0.1:9/h", event_types=types)
        one, _ = await service.publish("acme", NewNotification(type="system", title="one"))
        two, _ = await service.publish("acme", NewNotification(type="system", title="two"))
        ann = Principal(
            tenant="acme",
            user="ann",
            roles=frozenset(),
            expires_at=datetime.now(UTC) + timedelta(hours=1),
        )
        await service.mark_read(ann, [one.seq])
        queued = await _queued(webhooks)
        assert [t for t, _ in queued] == [*types[:1], *types]  # "before" is not sent
        created = [d["notification"] for t, d in queued if t == "notification.created"]
        assert [n["id"] for n in created] == [one.seq, two.seq]
        assert queued[2][1]["user"] == "ann" and queued[2][1]["ids"] == [one.seq]
        async with service.store.write() as conn:  # the tailer has nothing left to do
            assert await queue.tail_in(conn, "acme", datetime.now(UTC)) == (0, False)


async def test_an_event_in_a_rolled_back_transaction_is_not_queued(settings: Settings) -> None:
    async with open_service(settings) as service:
        webhooks = Webhooks(service.store, settings)
        service.plug([Hooks(on_event=[webhooks.on_event])])
        await service.create_tenant("acme", "Acme")
        await webhooks.add("acme", url="https://example.com/h", event_types=["push.sent"])

        class Boom(Exception):
            pass

        async def rolled_back() -> None:
            async with service.store.write() as conn:
                await service.emit("acme", "push.sent", {"user": "ann"}, conn)
                raise Boom

        with pytest.raises(Boom):
            await rolled_back()
        assert await _queued(webhooks) == []
        async with service.store.write() as conn:
            await service.emit("acme", "push.sent", {"user": "ann"}, conn)
        assert [t for t, _ in await _queued(webhooks)] == ["push.sent"]
