"""When the seeded history happened: each seeded booking's steps (taken, status moves, payments)
at believable wall-clock times of its business, spread over the two weeks before the seed ran.

Invariants:
- every step is in the past (at most ``now`` minus a minute): one that would lie ahead (a
  booking for next week taken "tomorrow") happened earlier today instead;
- a booking's steps keep their order: taken, then its moves in order; payments follow its
  confirmation (or its request, when it was never confirmed);
- :func:`timeline` returns the whole history in time order, so replaying it in that order makes
  the tenant's sequence numbers and the notifications' ``created_at`` rise together.

The times are derived from the booking's position, not drawn at random: the same seed on the
same day gives the same history (tests can rely on it), and no two bookings share a minute.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

# (customer index, item, days from today, start, hours, address, moves, payments)
SeedBooking = tuple[int, str, int, str, int, str, tuple[str, ...], tuple[tuple[int, str], ...]]
Kind = Literal["create", "move", "pay"]


@dataclass(frozen=True, slots=True)
class Step:
    """One change of the seeded history: ``kind`` of the tenant's ``booking``-th seed booking
    (``index``: which of its moves or payments), at ``at`` (UTC)."""

    at: datetime
    booking: int
    kind: Kind
    index: int = 0


def _local(day: date, clock: time, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, clock, tzinfo=zone)


def _booking_steps(
    i: int, booking: SeedBooking, *, today: date, zone: ZoneInfo
) -> list[tuple[datetime, Kind, int]]:
    _, _, days, start, hours, _, moves, paid = booking
    event_day = today + timedelta(days=days)
    starts = _local(event_day, time.fromisoformat(start), zone)
    lead = 4 + (i * 5) % 6  # taken 4 to 9 days before the event
    taken = _local(event_day - timedelta(days=lead), time(8, 0), zone) + timedelta(
        minutes=(i * 97) % 600  # between 08:00 and 17:59
    )
    steps: list[tuple[datetime, Kind, int]] = [(taken, "create", 0)]
    at = confirmed = taken
    for k, move in enumerate(moves):
        if move == "confirm":
            at = confirmed = at + timedelta(minutes=20 + (i * 53) % 120)
        elif move == "complete":
            at = starts + timedelta(hours=hours, minutes=15 + (i * 7) % 40)
        elif move == "no-show":
            at = starts + timedelta(minutes=30 + (i * 11) % 25)
        else:  # cancel: the customer calls the next day
            at = at + timedelta(days=1, minutes=(i * 71) % 240)
        steps.append((at, "move", k))
    for j in range(len(paid)):
        # The next business morning, or within two hours when the event comes first.
        morning = _local(confirmed.date() + timedelta(days=1), time(9, 0), zone)
        at = morning + timedelta(minutes=(i * 31 + j * 17) % 480)
        if at >= starts:
            at = confirmed + timedelta(hours=2, minutes=j * 5)
        steps.append((at, "pay", j))
    return steps


def timeline(
    bookings: Sequence[SeedBooking], *, today: date, zone: ZoneInfo, now: datetime
) -> list[Step]:
    """Every step of the seeded ``bookings`` in time order (see the module's invariants)."""
    latest = now - timedelta(minutes=1)
    ordered: list[tuple[datetime, int, int, Kind, int]] = []
    for i, booking in enumerate(bookings):
        earlier = None
        for position, (at, kind, index) in enumerate(
            _booking_steps(i, booking, today=today, zone=zone)
        ):
            when = at.astimezone(UTC)
            if when > latest:  # would lie ahead: it happened earlier today instead
                when = latest - timedelta(minutes=5 + (i * 37) % 180 - position * 4)
            if earlier is not None and when < earlier:
                when = earlier + timedelta(minutes=1)
            when = earlier = min(when, latest)
            ordered.append((when, i, position, kind, index))
    ordered.sort(key=lambda step: (step[0], step[1], step[2]))
    return [Step(at, i, kind, index) for at, i, _, kind, index in ordered]
