"""Booking reminders from the demo: a booking taken on the staff form or the widget arms exactly
one reminder in its own transaction, moving it re-arms it, cancelling disarms it; with the
injected clock moved past due, the reminder is published once and is on the feed, and a
cancelled booking gets none. Time is a ManualClock: nothing here waits a day."""

from __future__ import annotations

import asyncio
import time as clock_time
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.demo.helpers import DemoServer, csrf, demo_settings, form_token, sign_in
from tidings.channels.clock import ManualClock

START = "11:00"
ZONE = ZoneInfo("America/Chicago")  # Jump Joy's (seeded): booking times are Austin's


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime.now(UTC))


@pytest.fixture
def demo(tmp_path: Path, clock: ManualClock) -> Iterator[DemoServer]:
    server = DemoServer(demo_settings(tmp_path, reminder_interval=0.05))
    server.app.state.channels_clock = clock
    server.start()
    try:
        yield server
    finally:
        server.stop()


def day(ahead: int) -> date:
    return datetime.now(ZONE).date() + timedelta(days=ahead)


def booking_fields(ahead: int, email: str) -> dict[str, str]:
    return {
        "item": "castle-xl",
        "date": day(ahead).isoformat(),
        "start": START,
        "hours": "4",
        "address": "12 Reminder Road",
        "name": "Rhea Minder",
        "email": email,
    }


def take_booking(client: httpx.Client, ahead: int, email: str) -> int:
    """Staff form: POST /demo/bookings. Returns the new booking's id."""
    r = client.post(
        "/demo/bookings",
        data={"csrf": csrf(client, "/demo/bookings/new"), **booking_fields(ahead, email)},
    )
    assert r.status_code == 303, r.text
    return int(r.headers["location"].rsplit("/", 1)[1])


def request_booking(demo: DemoServer, ahead: int, email: str) -> int:
    """The public widget: POST /book/jump-joy. Returns the new booking's id."""
    with httpx.Client(base_url=demo.url, timeout=10) as customer:
        token = form_token(customer.get("/book/jump-joy").text)
        r = customer.post(
            "/book/jump-joy", data={"form_token": token, **booking_fields(ahead, email)}
        )
    assert r.status_code == 303, r.text
    rows = demo.sql(
        "SELECT b.id FROM bookings b JOIN customers c ON c.id = b.customer_id WHERE c.email = ?",
        email,
    )
    return int(rows[-1][0])


def reminders(demo: DemoServer) -> dict[str, tuple[str, datetime, int | None]]:
    rows = demo.sql(
        "SELECT key, state, due_at, seq FROM scheduled_reminders WHERE tenant_id = 'jump-joy'"
    )
    return {
        key: (state, datetime.fromisoformat(str(due)).replace(tzinfo=UTC), seq)
        for key, state, due, seq in rows
    }


def due_for(ahead: int, start: str = START) -> datetime:
    """24 h (the default lead) before the booking starts, in the business's zone."""
    starts = datetime.combine(day(ahead), datetime.strptime(start, "%H:%M").time(), tzinfo=ZONE)
    return (starts - timedelta(hours=24)).astimezone(UTC)


def move(client: httpx.Client, booking: int, name: str) -> None:
    r = client.post(
        f"/demo/bookings/{booking}/move",
        data={
            "csrf": csrf(client, f"/demo/bookings/{booking}"),
            "move": name,
            "confirm": "yes",  # cancelling asks for it; the other moves ignore it
        },
    )
    assert r.status_code == 303, r.text


def reminder_feed(client: httpx.Client) -> list[dict[str, Any]]:
    r = client.get("/v1/feed", params={"type": "reminder", "limit": 100})
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


def wait_for(check: Any, timeout: float = 5.0) -> Any:
    deadline = clock_time.monotonic() + timeout
    while clock_time.monotonic() < deadline:
        value = check()
        if value:
            return value
        clock_time.sleep(0.05)
    raise AssertionError("timed out")


def test_bookings_arm_move_and_disarm_their_one_reminder(demo: DemoServer) -> None:
    assert reminders(demo) == {}  # the seeded history arms nothing
    with closing(sign_in(demo.url, "ann")) as ann:
        staff = take_booking(ann, 10, "rhea@example.com")
        assert reminders(demo) == {f"booking:{staff}": ("pending", due_for(10), None)}
        page = ann.get(f"/demo/bookings/{staff}").text
        assert 'data-reminder="pending"' in page

        widget = request_booking(demo, 12, "wim@example.com")
        assert len(reminders(demo)) == 2
        assert reminders(demo)[f"booking:{widget}"] == ("pending", due_for(12), None)

        # Moving the booking re-arms the same reminder for the new time (still one per booking)
        # and announces the move.
        r = ann.post(
            f"/demo/bookings/{widget}/reschedule",
            data={
                "csrf": csrf(ann, f"/demo/bookings/{widget}"),
                "date": day(14).isoformat(),
                "start": "09:30",
            },
        )
        assert r.status_code == 303, r.text
        assert reminders(demo)[f"booking:{widget}"] == ("pending", due_for(14, "09:30"), None)
        assert len(reminders(demo)) == 2
        moved = ann.get("/v1/feed", params={"type": "booking_rescheduled"}).json()["items"]
        assert [n["data"]["booking_id"] for n in moved] == [widget]

        # A bad move changes nothing: the booking and its reminder stay as they are.
        r = ann.post(
            f"/demo/bookings/{widget}/reschedule",
            data={"csrf": csrf(ann, f"/demo/bookings/{widget}"), "date": "2001-01-01"},
        )
        assert r.status_code == 422
        assert "The date is in the past." in r.text
        assert reminders(demo)[f"booking:{widget}"] == ("pending", due_for(14, "09:30"), None)

        move(ann, staff, "cancel")
        assert reminders(demo)[f"booking:{staff}"][0] == "cancelled"
        move(ann, widget, "confirm")  # confirming keeps it armed
        assert reminders(demo)[f"booking:{widget}"][0] == "pending"
        move(ann, widget, "complete")
        assert reminders(demo)[f"booking:{widget}"][0] == "cancelled"
        r = ann.post(  # a final booking cannot be moved (and nothing is re-armed)
            f"/demo/bookings/{widget}/reschedule",
            data={
                "csrf": csrf(ann, f"/demo/bookings/{widget}"),
                "date": day(20).isoformat(),
                "start": "10:00",
            },
        )
        assert r.status_code == 409
        assert "final" in r.text
        assert reminders(demo)[f"booking:{widget}"][0] == "cancelled"


def test_a_due_reminder_is_published_once_and_a_cancelled_booking_gets_none(
    demo: DemoServer, clock: ManualClock
) -> None:
    with closing(sign_in(demo.url, "ann")) as ann:
        kept = take_booking(ann, 10, "kim@example.com")
        dropped = take_booking(ann, 10, "dan@example.com")
        move(ann, dropped, "cancel")
        before = int(demo.sql("SELECT last_seq FROM tenants WHERE id = 'jump-joy'")[0][0])
        channels = demo.app.state.channels
        # A tick run by hand on the server: nothing is due yet, so it publishes nothing.
        future = asyncio.run_coroutine_threadsafe(channels.reminders_tick(), channels.loop)
        assert future.result(timeout=10) == 0
        assert reminder_feed(ann) == []

        clock.set(due_for(10) + timedelta(minutes=1))
        (item,) = wait_for(lambda: reminder_feed(ann))
        assert item["data"]["booking_id"] == kept
        assert item["title"].startswith(f"Reminder: booking #{kept} starts ")
        assert item["link"] == f"/demo/bookings/{kept}"
        assert item["audience"] == {"roles": ["owner", "staff"]}

        # More ticks, and a tick run by hand on the server, publish nothing more.
        clock.advance(timedelta(days=2))
        future = asyncio.run_coroutine_threadsafe(channels.reminders_tick(), channels.loop)
        assert future.result(timeout=10) == 0
        assert [n["id"] for n in reminder_feed(ann)] == [item["id"]]
        assert int(demo.sql("SELECT last_seq FROM tenants WHERE id = 'jump-joy'")[0][0]) == (
            before + 1
        )
        state = reminders(demo)
        assert state[f"booking:{kept}"][0] == "done"
        assert state[f"booking:{kept}"][2] == item["id"]
        assert state[f"booking:{dropped}"][0] == "cancelled"
        assert 'data-reminder="done"' in ann.get(f"/demo/bookings/{kept}").text
