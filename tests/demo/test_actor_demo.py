"""The demo passes the signed-in user as the actor (issue 10 item 1): what Sam does lands read
in Sam's own feed and count, and unread for the rest of the team."""

from __future__ import annotations

from tests.demo.helpers import DemoServer, csrf, sign_in


def test_a_staff_members_own_action_is_read_for_them_only(demo: DemoServer) -> None:
    sam, lee = sign_in(demo.url, "sam"), sign_in(demo.url, "lee")
    requested = demo.sql(
        "SELECT id FROM bookings WHERE tenant_id = 'jump-joy' AND status = 'requested' "
        "ORDER BY id LIMIT 1"
    )[0][0]
    counts = {c: c.get("/v1/feed/unread-count").json()["count"] for c in (sam, lee)}
    token = csrf(sam, f"/demo/bookings/{requested}")
    r = sam.post(f"/demo/bookings/{requested}/move", data={"csrf": token, "move": "confirm"})
    assert r.status_code == 303, r.text
    [mine] = sam.get("/v1/feed", params={"limit": 1}).json()["items"]
    assert mine["title"] == f"Booking #{requested} confirmed"
    assert mine["actor"]["name"] == "Sam Shaw" and mine["read"] is True
    [theirs] = lee.get("/v1/feed", params={"limit": 1}).json()["items"]
    assert theirs["id"] == mine["id"] and theirs["read"] is False
    assert sam.get("/v1/feed/unread-count").json()["count"] == counts[sam]
    assert lee.get("/v1/feed/unread-count").json()["count"] == min(99, counts[lee] + 1)
