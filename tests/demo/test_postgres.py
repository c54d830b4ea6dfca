"""The demo on PostgreSQL: the same pages, actions and refusals as on SQLite."""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest

from tests.demo.helpers import csrf, form_token, sign_in, start_demo

pytestmark = pytest.mark.postgres


def test_demo_runs_on_postgresql(tmp_path: Path, postgres_url: str) -> None:
    server = start_demo(tmp_path, database_url=postgres_url)
    try:
        with httpx.Client(base_url=server.url, timeout=10) as customer:
            page = customer.get("/book/jump-joy")
            r = customer.post(
                "/book/jump-joy",
                data={
                    "form_token": form_token(page.text),
                    "item": "water-slide",
                    "date": (date.today() + timedelta(days=2)).isoformat(),
                    "start": "12:00",
                    "hours": "3",
                    "address": "9 Postgres Place",
                    "name": "Paula Gres",
                    "email": "paula@example.com",
                },
            )
            assert r.status_code == 303, r.text
        ann = sign_in(server.url, "ann")
        listing = ann.get("/demo/bookings?q=paula").text
        found = re.search(r'data-booking="(\d+)"', listing)
        assert found, listing
        booking = int(found.group(1))
        token = csrf(ann)
        r = ann.post(f"/demo/bookings/{booking}/move", data={"csrf": token, "move": "complete"})
        assert r.status_code == 409
        for move in ("confirm", "complete"):
            r = ann.post(f"/demo/bookings/{booking}/move", data={"csrf": token, "move": move})
            assert r.status_code == 303, r.text
        r = ann.post(
            f"/demo/bookings/{booking}/payments",
            data={"csrf": token, "amount": "349", "status": "received", "method": "card"},
        )
        assert r.status_code == 303, r.text
        for path in ("/demo", "/demo/customers", "/demo/payments", f"/demo/bookings/{booking}"):
            assert ann.get(path).status_code == 200, path
        feed = ann.get("/v1/feed?limit=4").json()["items"]
        assert [n["type"] for n in feed] == [
            "payment_received",
            "booking_completed",
            "booking_confirmed",
            "booking_created",
        ]
        assert all(n["data"]["booking_id"] == booking for n in feed)
        # Its reminder was armed when it was requested and disarmed when it was completed; a
        # completed booking cannot be moved.
        assert 'data-reminder="cancelled"' in ann.get(f"/demo/bookings/{booking}").text
        later = (date.today() + timedelta(days=3)).isoformat()
        r = ann.post(
            f"/demo/bookings/{booking}/reschedule",
            data={"csrf": token, "date": later, "start": "10:00"},
        )
        assert r.status_code == 409, r.text
        seeded = re.search(r'data-booking="(\d+)"', ann.get("/demo/bookings?status=requested").text)
        assert seeded
        r = ann.post(
            f"/demo/bookings/{seeded.group(1)}/reschedule",
            data={"csrf": token, "date": later, "start": "10:00"},
        )
        assert r.status_code == 303, r.text
        assert 'data-reminder="pending"' in ann.get(f"/demo/bookings/{seeded.group(1)}").text
        bob = sign_in(server.url, "bob")
        assert bob.get(f"/demo/bookings/{booking}").status_code == 404
    finally:
        server.stop()
