"""The rental rules without a server: the booking state machine and form validation."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from tidings.demo.domain import (
    MOVES,
    STATUSES,
    FormErrors,
    ImpossibleMove,
    apply_move,
    moves_from,
    parse_booking,
    parse_money,
    parse_payment,
)
from tidings.errors import ValidationFailed

ALLOWED = {
    ("requested", "confirm"): "confirmed",
    ("requested", "cancel"): "cancelled",
    ("confirmed", "complete"): "completed",
    ("confirmed", "no-show"): "no_show",
    ("confirmed", "cancel"): "cancelled",
}


@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("move", sorted(MOVES))
def test_state_machine_allows_exactly_the_listed_moves(status: str, move: str) -> None:
    if (status, move) in ALLOWED:
        assert apply_move(7, status, move).target == ALLOWED[(status, move)]
    else:
        with pytest.raises(ImpossibleMove) as caught:
            apply_move(7, status, move)
        assert caught.value.status == 409
        assert caught.value.code == "impossible_move"
        assert "Booking #7" in caught.value.detail


def test_refusals_say_why_and_what_to_do() -> None:
    with pytest.raises(
        ImpossibleMove, match=r"is cancelled, which is final: it cannot be confirmed"
    ):
        apply_move(3, "cancelled", "confirm")
    with pytest.raises(
        ImpossibleMove, match=r"only confirmed bookings can be marked completed\. Confirm it first"
    ):
        apply_move(3, "requested", "complete")
    with pytest.raises(ValidationFailed, match="not a booking move"):
        apply_move(3, "requested", "teleport")


def test_final_statuses_offer_no_moves() -> None:
    assert [m.name for m in moves_from("requested")] == ["confirm", "cancel"]
    assert [m.name for m in moves_from("confirmed")] == ["complete", "no-show", "cancel"]
    for final in ("completed", "cancelled", "no_show"):
        assert moves_from(final) == []


TODAY = date(2026, 11, 25)
GOOD = {
    "item": "castle-xl",
    "date": "2026-12-05",
    "start": "10:00",
    "hours": "4",
    "address": "1 Party Lane",
    "name": "  Rosa   Diaz ",
    "email": "Rosa@Example.com",
    "phone": "+1 512 555 0100",
    "notes": "Gate code 1234",
}


def test_a_good_booking_form_is_parsed_and_normalized() -> None:
    booking = parse_booking(GOOD, today=TODAY)
    assert booking.customer.name == "Rosa Diaz"
    assert booking.customer.email == "rosa@example.com"
    assert booking.item.slug == "castle-xl"
    assert booking.event_date == date(2026, 12, 5)
    assert booking.hours == 4


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("item", "rocket", "Choose one of our inflatables"),
        ("date", "", "Date is required"),
        ("date", "2026-02-30", "Date is not valid"),
        ("date", (TODAY - timedelta(days=1)).isoformat(), "in the past"),
        ("date", (TODAY + timedelta(days=400)).isoformat(), "up to a year ahead"),
        ("start", "25:00", "Start time is required"),
        ("start", "05:30", "between 07:00 and 21:00"),
        ("hours", "1", "2 to 12 hours"),
        ("hours", "x", "2 to 12 hours"),
        ("address", " ", "Address is required"),
        ("name", "", "Name is required"),
        ("name", "x" * 101, "at most 100"),
        ("email", "not-an-address", "does not look like an address"),
        ("email", "<script>@x.io", "does not look like an address"),
        ("phone", "call me maybe", "digits, spaces"),
        ("notes", "n" * 1001, "at most 1000"),
    ],
)
def test_bad_booking_fields_are_named(field: str, value: str, message: str) -> None:
    with pytest.raises(FormErrors) as caught:
        parse_booking({**GOOD, field: value}, today=TODAY)
    assert set(caught.value.fields) == {field}
    assert message in caught.value.fields[field]
    assert caught.value.status == 422


def test_every_missing_field_is_reported_at_once() -> None:
    with pytest.raises(FormErrors) as caught:
        parse_booking({}, today=TODAY)
    assert set(caught.value.fields) >= {
        "item",
        "date",
        "start",
        "hours",
        "address",
        "name",
        "email",
    }


def test_money_and_payments() -> None:
    assert parse_money("249") == 24900
    assert parse_money("$1,249.50") == 124950
    for bad in ("", "-5", "1.234", "abc", "1e3"):
        assert parse_money(bad) is None
    assert (
        parse_payment({"amount": "120", "status": "failed", "method": "card"}).amount_cents == 12000
    )
    with pytest.raises(FormErrors) as caught:
        parse_payment({"amount": "0", "status": "lost", "method": "gold"})
    assert set(caught.value.fields) == {"amount", "status", "method"}
