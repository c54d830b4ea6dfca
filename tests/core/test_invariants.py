"""Direct, fast tests of rules that the end-to-end suites only see from afar.

- Audience roles are filtered in SQL: the feed, the unread count and the ``ready`` snapshot
  (invariant 4's within-tenant twin: a role-targeted notification reaches only that role).
- *Mark all read* moves the watermark every time, not only the first.
- Graceful shutdown goes through the production path: ``Server.handle_exit`` tells the hub,
  every open stream gets ``bye``, and the server's thread ends within a bound.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import (
    ServerThread,
    Stream,
    StreamClosed,
    create_tenant,
    make_settings,
    open_service,
    publish,
)
from tidings.config import Settings
from tidings.domain.notifications import Audience, NewNotification
from tidings.domain.principals import Principal
from tidings.service import Tidings

pytestmark = pytest.mark.anyio

TENANT = "jump-joy"


def who(user: str, *roles: str) -> Principal:
    return Principal(TENANT, user, frozenset(roles), datetime.now(UTC) + timedelta(hours=1))


async def titles_seen(service: Tidings, principal: Principal) -> dict[str, Any]:
    """What ``principal`` is shown, through each read path of the service."""
    feed, _ = await service.feed(principal, status="all", type_=None, before=None, limit=50)
    unread = await service.feed(principal, status="unread", type_=None, before=None, limit=50)
    snapshot = await service.snapshot(principal)
    return {
        "feed": [i.notification.title for i in feed],
        "unread_feed": [i.notification.title for i in unread[0]],
        "count": (await service.unread(principal)).count,
        "snapshot": [item["title"] for item in snapshot["latest"]],
        "snapshot_count": snapshot["unread"]["count"],
    }


async def test_role_targeted_rows_reach_only_that_role(settings: Settings) -> None:
    async with open_service(settings) as service:
        await service.create_tenant(TENANT, TENANT)
        for title, audience in [
            ("everyone", None),
            ("staff only", Audience(roles=("staff",))),
            ("for ana", Audience(users=("ana",))),
        ]:
            await service.publish(
                TENANT, NewNotification(type="system", title=title, audience=audience)
            )
        both = ["staff only", "everyone"]
        assert await titles_seen(service, who("sam", "staff")) == {
            "feed": both,
            "unread_feed": both,
            "count": 2,
            "snapshot": both,
            "snapshot_count": 2,
        }
        for outsider in (who("ben", "driver"), who("ben")):  # another role, and none
            assert await titles_seen(service, outsider) == {
                "feed": ["everyone"],
                "unread_feed": ["everyone"],
                "count": 1,
                "snapshot": ["everyone"],
                "snapshot_count": 1,
            }
        seen = await titles_seen(service, who("ana", "driver"))
        assert seen["feed"] == ["for ana", "everyone"] and seen["count"] == 2


async def test_feed_count_and_snapshot_never_show_another_tenant(settings: Settings) -> None:
    """Invariant 4 at the service level: same user id, same role, another tenant."""
    async with open_service(settings) as service:
        await service.create_tenant(TENANT, TENANT)
        await service.create_tenant("bounce-bros", "bounce-bros")
        await service.publish(TENANT, NewNotification(type="system", title="ours"))
        for title, audience in [
            ("theirs", None),
            ("their staff", Audience(roles=("staff",))),
            ("their ana", Audience(users=("ana",))),
        ]:
            new = NewNotification(type="system", title=title, audience=audience)
            await service.publish("bounce-bros", new)
        seen = await titles_seen(service, who("ana", "staff"))
        assert seen == {
            "feed": ["ours"],
            "unread_feed": ["ours"],
            "count": 1,
            "snapshot": ["ours"],
            "snapshot_count": 1,
        }
        assert (await service.snapshot(who("ana")))["latest_seq"] == 1


async def test_every_mark_all_read_moves_the_watermark(settings: Settings) -> None:
    async with open_service(settings) as service:
        await service.create_tenant(TENANT, TENANT)
        ana = who("ana")
        for round_ in range(3):
            for n in range(round_ + 1):
                await service.publish(TENANT, NewNotification(type="system", title=f"{round_}.{n}"))
            assert (await service.unread(ana)).count == round_ + 1
            after = await service.mark_all_read(ana, None)
            assert after.count == 0, f"mark-all-read #{round_ + 1} left {after.count} unread"
            assert (await service.unread(ana)).count == 0
            assert (await service.snapshot(ana))["unread"]["count"] == 0
        # an explicit up_to marks only up to it, and never moves the watermark back
        await service.publish(TENANT, NewNotification(type="system", title="late"))
        await service.mark_all_read(ana, 2)
        assert (await service.unread(ana)).count == 1


async def test_handle_exit_says_bye_to_open_streams_and_the_server_ends(tmp_path: Path) -> None:
    srv = ServerThread(make_settings(str(tmp_path))).start()
    try:
        tenant = create_tenant(srv.url, TENANT)
        streams = [Stream(srv.url, tenant.token(f"u{i}")) for i in range(3)]
        for s in streams:
            await s.__aenter__()
            await s.next_event("ready")
        async with httpx.AsyncClient(timeout=10) as client:
            await publish(client, tenant, "before")
        started = time.monotonic()
        # The production path: what `tidings serve` does on SIGTERM (asserts the thread ended).
        srv.stop(within=4)
        took = time.monotonic() - started
        for s in streams:
            assert (await s.next_event("notification")).data["title"] == "before"
            bye = await s.next_event("bye", timeout=2)
            assert bye.data == {"reason": "shutdown"}
            with pytest.raises(StreamClosed):  # and then the stream ends
                await s.next(timeout=2)
        # uvicorn's graceful timeout is 5 s: ending sooner shows no stream held it open
        assert took < 4, took
    finally:
        for s in streams:
            await s.close()
        if srv.thread.is_alive():
            srv.stop()
