"""A booking never exists without its notification, nor a notification without its booking:
each demo action and its publish commit in one transaction, or neither does."""

from __future__ import annotations

from collections.abc import Coroutine
from dataclasses import replace
from datetime import date, time, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from tests.demo.helpers import demo_settings, form_token, run_with_service, start_demo
from tidings.demo import actions
from tidings.demo.domain import ITEMS, BookingIn, CustomerIn, PaymentIn
from tidings.demo.seed import seed
from tidings.errors import ValidationFailed

NAME = "Bartholomew Maximilian Fitzgerald-Montgomery of the Seventh Bouncy Castle"  # 73 chars


def test_when_the_publish_fails_the_booking_is_not_stored(tmp_path: Path) -> None:
    # Titles longer than 60 characters are refused by the publish path, after the booking row
    # was inserted in the same transaction.
    server = start_demo(tmp_path, max_title_chars=60)
    try:
        before = server.sql(
            "SELECT (SELECT count(*) FROM bookings), (SELECT count(*) FROM customers), "
            "(SELECT last_seq FROM tenants WHERE id = 'jump-joy'), "
            "(SELECT count(*) FROM scheduled_reminders)"
        )
        with httpx.Client(base_url=server.url, timeout=10) as customer:
            page = customer.get("/book/jump-joy")
            r = customer.post(
                "/book/jump-joy",
                data={
                    "form_token": form_token(page.text),
                    "item": "castle-xl",
                    "date": (date.today() + timedelta(days=3)).isoformat(),
                    "start": "10:00",
                    "hours": "4",
                    "address": "1 Long Name Road",
                    "name": NAME,
                    "email": "bart@example.com",
                },
            )
        assert r.status_code == 422
        assert "title is longer than 60 characters" in r.text
        after = server.sql(  # the reminder armed before the publish is gone with it
            "SELECT (SELECT count(*) FROM bookings), (SELECT count(*) FROM customers), "
            "(SELECT last_seq FROM tenants WHERE id = 'jump-joy'), "
            "(SELECT count(*) FROM scheduled_reminders)"
        )
        assert after == before
        assert server.sql("SELECT count(*) FROM customers WHERE email = 'bart@example.com'") == [
            (0,)
        ]
    finally:
        server.stop()


def _booking() -> BookingIn:
    return BookingIn(
        customer=CustomerIn("Rita Rollback", "rita@example.com", ""),
        item=ITEMS["castle-xl"],
        event_date=date.today() + timedelta(days=5),
        start_time=time(10, 0),
        hours=4,
        address="2 Atomic Avenue",
        notes="",
    )


async def _fail_on(service: Any, table: str) -> None:
    async with service.store.write() as conn:
        await conn.execute(
            text(
                f"CREATE TRIGGER fail_{table} BEFORE INSERT ON {table} "
                "BEGIN SELECT RAISE(ABORT, 'simulated failure'); END"
            )
        )


async def _state(service: Any) -> dict[str, Any]:
    async with service.store.read() as conn:
        rows = {}
        for name, query in {
            "bookings": "SELECT count(*) FROM bookings",
            "customers": "SELECT count(*) FROM customers",
            "notifications": "SELECT count(*) FROM notifications",
            "payments": "SELECT count(*) FROM payments",
            "statuses": "SELECT group_concat(status, ',') FROM "
            "(SELECT status FROM bookings ORDER BY id)",
            "seq": "SELECT last_seq FROM tenants WHERE id = 'jump-joy'",
        }.items():
            rows[name] = (await conn.execute(text(query))).scalar_one()
        return rows


@pytest.mark.parametrize("step", ["create", "move", "payment"])
def test_when_storing_the_change_fails_after_the_publish_nothing_is_stored(
    tmp_path: Path, step: str
) -> None:
    """The history row (or payment row) is written after the notification, in the same
    transaction; if it fails, the notification that was already inserted rolls back too."""

    async def scenario(service: Any) -> tuple[dict[str, Any], dict[str, Any], BaseException]:
        await seed(service)
        async with service.store.read() as conn:
            booking = (
                (
                    await conn.execute(
                        text(
                            "SELECT id FROM bookings "
                            "WHERE tenant_id = 'jump-joy' AND status = 'requested'"
                        )
                    )
                )
                .scalars()
                .first()
            )
        await _fail_on(service, "payments" if step == "payment" else "booking_events")
        before = await _state(service)
        attempt: Coroutine[Any, Any, object]
        if step == "create":
            attempt = actions.create_booking(
                service, "jump-joy", _booking(), actor="t", source="staff"
            )
        elif step == "move":
            attempt = actions.move_booking(service, "jump-joy", booking, "confirm", actor="t")
        else:
            attempt = actions.record_payment(
                service, "jump-joy", booking, PaymentIn(1000, "received", "cash", ""), actor="t"
            )
        with pytest.raises(IntegrityError) as caught:
            await attempt
        return before, await _state(service), caught.value

    before, after, error = run_with_service(demo_settings(tmp_path), scenario)
    assert "simulated failure" in str(error)
    assert after == before


def test_the_publish_validation_runs_inside_the_transaction(tmp_path: Path) -> None:
    async def scenario(service: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        await seed(service)
        before = await _state(service)
        long_name = replace(_booking(), customer=CustomerIn("x" * 300, "x@example.com", ""))
        with pytest.raises(ValidationFailed):
            await actions.create_booking(service, "jump-joy", long_name, actor="t", source="staff")
        return before, await _state(service)

    before, after = run_with_service(demo_settings(tmp_path), scenario)
    assert after == before
