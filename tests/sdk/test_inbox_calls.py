"""The SDK's inbox calls (issue 10): actor on publish, mark unread, unarchive, snooze — the
same surface on both clients, against a live server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.sdk.both import Clients
from tests.support import ServerThread, Tenant
from tidings.client import ApiError


def test_actor_and_inbox_states(live: ServerThread, fresh: Tenant, make: Clients) -> None:
    client = make(live.url, api_key=fresh.key)
    mine = client.publish("system", "Ann confirmed #7", actor={"id": "ann", "name": "Ann"})
    assert mine["actor"] == {"id": "ann", "name": "Ann"}
    client.publish("system", "by id only", actor="ann")
    client.publish_batch([{"type": "system", "title": "b", "actor": {"id": "bob"}}])
    assert client.unread_count("ann") == {"count": 1, "more": False}
    assert [(n["id"], n["read"]) for n in client.feed("ann")["items"]] == [
        (3, False),
        (2, True),
        (1, True),
    ]
    assert client.mark_unread("ann", [1]) == {"unread": {"count": 2, "more": False}}
    assert client.archive("ann", [1])["unread"]["count"] == 1
    assert client.unarchive("ann", [1])["unread"]["count"] == 1
    until = datetime.now(UTC) + timedelta(hours=2)
    assert client.snooze("ann", [3], until)["unread"]["count"] == 0
    [snoozed] = client.feed("ann", status="snoozed")["items"]
    assert snoozed["id"] == 3 and snoozed["snoozed_until"] is not None
    with pytest.raises(ApiError) as caught:
        client.snooze("ann", [3], datetime.now(UTC) - timedelta(hours=1))
    assert caught.value.status == 422
    with pytest.raises(ValueError, match="time zone"):
        client.snooze("ann", [3], datetime(2030, 1, 1))
    with pytest.raises(ApiError) as caught:
        client.mark_unread("ann", [99])
    assert caught.value.status == 404


def test_group_on_publish_and_mark_read_by_group(
    live: ServerThread, fresh: Tenant, make: Clients
) -> None:
    client = make(live.url, api_key=fresh.key)
    first = client.publish("system", "Booking #42 created", group="booking:42")
    assert first["group"] == "booking:42"
    client.publish("system", "Booking #42 paid", group="booking:42")
    client.publish("system", "other")
    assert client.unread_count("ann") == {"count": 3, "more": False}
    cards = client.feed("ann", grouped=True)["items"]
    assert [(c["title"], c.get("group_count"), c.get("group_unread")) for c in cards] == [
        ("other", 1, 1),
        ("Booking #42 paid", 2, 2),
    ]
    assert client.mark_read("ann", groups=["booking:42"])["unread"] == {"count": 1, "more": False}
    with pytest.raises(ApiError) as caught:
        client.mark_read("ann", groups=["booking:7"])
    assert caught.value.status == 404
    with pytest.raises(ValueError, match="either ids or all=True, or groups"):
        client.mark_read("ann", [1], groups=["booking:42"])
