"""The rental business's rules, free of web and database code: the catalogue, the booking state
machine, and the validation of booking, customer and payment forms.

State machine (anything else is refused with :class:`ImpossibleMove`, a 409)::

    requested ──confirm──▶ confirmed ──complete──▶ completed
        │                     ├────no-show───▶ no_show
        └──────cancel─────────┴────cancel────▶ cancelled

``completed``, ``no_show`` and ``cancelled`` are final.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Final

from tidings.errors import Code, Conflict, ValidationFailed


@dataclass(frozen=True, slots=True)
class Item:
    slug: str
    name: str
    price_cents: int


CATALOGUE: Final[tuple[Item, ...]] = (
    Item("castle-xl", "Castle XL bounce house", 24900),
    Item("jungle-combo", "Jungle combo slide", 32900),
    Item("pirate-ship", "Pirate ship bouncer", 27900),
    Item("mini-bouncer", "Toddler mini bouncer", 12900),
    Item("water-slide", "Tropical water slide", 34900),
    Item("obstacle", "40 ft obstacle course", 44900),
)
ITEMS: Final[dict[str, Item]] = {item.slug: item for item in CATALOGUE}

STATUSES: Final = ("requested", "confirmed", "completed", "cancelled", "no_show")
FINAL: Final = frozenset({"completed", "cancelled", "no_show"})
STATUS_LABELS: Final = {
    "requested": "Requested",
    "confirmed": "Confirmed",
    "completed": "Completed",
    "cancelled": "Cancelled",
    "no_show": "No-show",
}


@dataclass(frozen=True, slots=True)
class Move:
    name: str  # as in URLs and forms
    label: str  # button text
    done: str  # "confirmed", for messages
    sources: frozenset[str]
    target: str
    notification: str


MOVES: Final[dict[str, Move]] = {
    m.name: m
    for m in (
        Move(
            "confirm",
            "Confirm",
            "confirmed",
            frozenset({"requested"}),
            "confirmed",
            "booking_confirmed",
        ),
        Move(
            "complete",
            "Mark completed",
            "marked completed",
            frozenset({"confirmed"}),
            "completed",
            "booking_completed",
        ),
        Move(
            "no-show",
            "Mark no-show",
            "marked as a no-show",
            frozenset({"confirmed"}),
            "no_show",
            "booking_no_show",
        ),
        Move(
            "cancel",
            "Cancel",
            "cancelled",
            frozenset({"requested", "confirmed"}),
            "cancelled",
            "booking_cancelled",
        ),
    )
}


class ImpossibleMove(Conflict):
    """A status change the state machine does not allow."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail, code=Code.IMPOSSIBLE_MOVE)


def moves_from(status: str) -> list[Move]:
    """The moves a booking in ``status`` may make, in button order."""
    return [m for m in MOVES.values() if status in m.sources]


def apply_move(booking_id: int, status: str, move_name: str) -> Move:
    """The move, or :class:`ImpossibleMove` with a message a person can act on."""
    move = MOVES.get(move_name)
    if move is None:
        raise ValidationFailed(
            f"{move_name!r} is not a booking move; use one of {', '.join(sorted(MOVES))}.",
            code=Code.UNKNOWN_MOVE,
        )
    if status in move.sources:
        return move
    label = STATUS_LABELS.get(status, status).lower()
    if status in FINAL:
        raise ImpossibleMove(
            f"Booking #{booking_id} is {label}, which is final: it cannot be {move.done}."
        )
    allowed = " or ".join(STATUS_LABELS[s].lower() for s in sorted(move.sources))
    hint = " Confirm it first." if status == "requested" else ""
    raise ImpossibleMove(
        f"Booking #{booking_id} is {label}: only {allowed} bookings can be {move.done}.{hint}"
    )


# -- forms ---------------------------------------------------------------------------------------


class FormErrors(ValidationFailed):
    """Field-by-field validation errors; ``fields`` maps a field name to its message."""

    def __init__(self, fields: dict[str, str]) -> None:
        first = next(iter(fields.values()), "The form is not valid.")
        super().__init__(first, code=Code.VALIDATION_FAILED, extra={"fields": fields})
        self.fields = fields


_EMAIL = re.compile(r"^[^@\s<>\"']{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,}\Z")
_PHONE = re.compile(r"^[0-9 +().\-]{0,40}\Z")
_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)\Z")
MAX_AHEAD_DAYS: Final = 366
OPENING: Final = time(7, 0)
CLOSING: Final = time(21, 0)


@dataclass(frozen=True, slots=True)
class CustomerIn:
    name: str
    email: str
    phone: str


@dataclass(frozen=True, slots=True)
class BookingIn:
    customer: CustomerIn
    item: Item
    event_date: date
    start_time: time
    hours: int
    address: str
    notes: str


@dataclass(frozen=True, slots=True)
class PaymentIn:
    amount_cents: int
    status: str
    method: str
    note: str


PAYMENT_METHODS: Final = {"card": "Card", "cash": "Cash", "bank": "Bank transfer"}


def _text(
    form: Mapping[str, str],
    name: str,
    errors: dict[str, str],
    *,
    label: str,
    max_len: int,
    required: bool = True,
) -> str:
    value = " ".join(str(form.get(name, "")).split())
    if required and not value:
        errors[name] = f"{label} is required."
    elif len(value) > max_len:
        errors[name] = f"{label} is at most {max_len} characters."
    return value


def whole_number(raw: str) -> int | None:
    """``"12"`` → 12; ``None`` for anything but ASCII digits (``str.isdigit`` also accepts
    ``"²"``, which ``int`` then refuses)."""
    text = raw.strip()
    return int(text) if re.fullmatch(r"[0-9]{1,12}", text) else None


def parse_customer(form: Mapping[str, str], errors: dict[str, str]) -> CustomerIn:
    name = _text(form, "name", errors, label="Name", max_len=100)
    email = _text(form, "email", errors, label="E-mail", max_len=254).lower()
    if email and "email" not in errors and not _EMAIL.match(email):
        errors["email"] = "E-mail does not look like an address (name@example.com)."
    phone = _text(form, "phone", errors, label="Phone", max_len=40, required=False)
    if phone and not _PHONE.match(phone):
        errors["phone"] = "Phone may contain digits, spaces and + ( ) . - only."
    return CustomerIn(name, email, phone)


def parse_when(
    form: Mapping[str, str], errors: dict[str, str], *, today: date
) -> tuple[date, time]:
    """The ``date`` and ``start`` fields (today up to a year ahead, within opening hours)."""
    event_date = today
    raw_date = str(form.get("date", "")).strip()
    try:
        event_date = date.fromisoformat(raw_date)
    except ValueError:
        errors["date"] = "Date is required (YYYY-MM-DD)." if not raw_date else "Date is not valid."
    else:
        if event_date < today:
            errors["date"] = "The date is in the past."
        elif event_date > today + timedelta(days=MAX_AHEAD_DAYS):
            errors["date"] = "We take bookings up to a year ahead."
    start = OPENING
    match = _TIME.match(str(form.get("start", "")).strip())
    if match is None:
        errors["start"] = "Start time is required (HH:MM)."
    else:
        start = time(int(match.group(1)), int(match.group(2)))
        if not OPENING <= start < CLOSING:
            errors["start"] = "We set up between 07:00 and 21:00."
    return event_date, start


def parse_reschedule(form: Mapping[str, str], *, today: date) -> tuple[date, time]:
    """A new date and start time for a booking, or :class:`FormErrors`."""
    errors: dict[str, str] = {}
    when = parse_when(form, errors, today=today)
    if errors:
        raise FormErrors(errors)
    return when


def check_reschedule(booking_id: int, status: str) -> None:
    """Only bookings still to happen (requested or confirmed) can be moved."""
    if status in FINAL:
        label = STATUS_LABELS.get(status, status).lower()
        raise ImpossibleMove(
            f"Booking #{booking_id} is {label}, which is final: it cannot be moved to another date."
        )


def parse_booking(form: Mapping[str, str], *, today: date) -> BookingIn:
    """A booking request from a form, or :class:`FormErrors` naming every bad field."""
    errors: dict[str, str] = {}
    customer = parse_customer(form, errors)
    item = ITEMS.get(str(form.get("item", "")))
    if item is None:
        errors["item"] = "Choose one of our inflatables."
    event_date, start = parse_when(form, errors, today=today)
    hours = whole_number(str(form.get("hours", ""))) or 0
    if not 2 <= hours <= 12:
        errors["hours"] = "Rental length is 2 to 12 hours."
    address = _text(form, "address", errors, label="Address", max_len=300)
    notes = str(form.get("notes", "")).strip()
    if len(notes) > 1000:
        errors["notes"] = "Notes are at most 1000 characters."
    if errors:
        raise FormErrors(errors)
    assert item is not None
    return BookingIn(customer, item, event_date, start, hours, address, notes)


def parse_money(raw: str) -> int | None:
    """``"249"``, ``"249.5"``, ``"$1,249.00"`` → cents; ``None`` when it is not an amount."""
    cleaned = raw.strip().replace("$", "").replace(",", "")
    if not re.fullmatch(r"\d{1,7}(\.\d{1,2})?", cleaned):
        return None
    try:
        return int(Decimal(cleaned) * 100)
    except InvalidOperation:  # pragma: no cover - the pattern already excludes it
        return None


def parse_payment(form: Mapping[str, str]) -> PaymentIn:
    errors: dict[str, str] = {}
    cents = parse_money(str(form.get("amount", "")))
    if cents is None or cents <= 0:
        errors["amount"] = "Amount is a positive number of dollars, e.g. 249.00."
    elif cents > 10_000_00:
        errors["amount"] = "Amounts above $10,000.00 are not accepted here."
    status = str(form.get("status", ""))
    if status not in ("received", "failed"):
        errors["status"] = "Say whether the payment was received or failed."
    method = str(form.get("method", ""))
    if method not in PAYMENT_METHODS:
        errors["method"] = "Choose card, cash or bank transfer."
    note = _text(form, "note", errors, label="Note", max_len=300, required=False)
    if errors:
        raise FormErrors(errors)
    assert cents is not None
    return PaymentIn(cents, status, method, note)


def money(cents: int) -> str:
    return f"${cents / 100:,.2f}"
