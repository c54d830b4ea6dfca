"""Reading ``GET /v1/stream`` (DESIGN.md, wire protocol): the line decoder and the resume state
that both ``subscribe`` flavours share.

Invariants of :class:`Resume`: a ``notification`` is yielded at most once and in increasing
``id`` order (one at or below the last yielded id is dropped), and every reconnect sends the
last yielded id as ``Last-Event-ID``, so nothing between two connections is missed while the
server's retention covers it; when it does not, the server sends ``reset`` and the resume point
moves to the ``reset``'s seq (refetch the feed then).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

__all__ = ["Decoder", "Event", "Resume", "parse_sse"]


@dataclass(frozen=True, slots=True)
class Event:
    """One stream event: ``event`` (``ready``, ``reset``, ``notification``, ``read``,
    ``archived``, ``unread``, ``unarchived``, ``snoozed``, ``unsnoozed``, ``expired``,
    ``bye``), its JSON ``data``, and ``id``, the notification's seq (also on
    ``ready``/``reset``: the latest seq), else ``None``."""

    event: str
    data: Any
    id: int | None = None


class Decoder:
    """Feed it lines (without their newline); it returns ``(event, data, id)`` at each blank
    line that ends an event with data. Comments (``: ping``) are skipped; ``retry`` is kept."""

    def __init__(self) -> None:
        self.retry_ms: int | None = None
        self._event = "message"
        self._data: list[str] = []
        self._id: str | None = None

    def feed(self, line: str) -> tuple[str, str, str | None] | None:
        if line == "":
            done = (self._event, "\n".join(self._data), self._id) if self._data else None
            self._event, self._data, self._id = "message", [], None
            return done
        if line.startswith(":"):
            return None
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            self._event = value
        elif field == "data":
            self._data.append(value)
        elif field == "id":
            self._id = value
        elif field == "retry" and value.isdigit():
            self.retry_ms = int(value)
        return None


async def parse_sse(lines: AsyncIterator[str]) -> AsyncIterator[tuple[str, str, str | None]]:
    """Parse SSE lines into ``(event, data, id)``; comments and ``retry`` are skipped."""
    decoder = Decoder()
    async for line in lines:
        if (done := decoder.feed(line)) is not None:
            yield done


class Resume:
    """Where a subscription is, across its connections (see the module docstring)."""

    def __init__(self, last_event_id: int | None) -> None:
        self.last_event_id = last_event_id
        self.failures = 0  # connection attempts since the last ``ready``/``reset``
        self.renew = False  # the token expired or was refused: get a new one

    def headers(self, token: str | None) -> dict[str, str]:
        headers = {"Accept": "text/event-stream"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if self.last_event_id is not None:
            headers["Last-Event-ID"] = str(self.last_event_id)
        return headers

    def accept(self, name: str, raw: str, ident: str | None) -> Event | None:
        """The event to yield for one decoded frame, or ``None`` for a duplicate."""
        data = json.loads(raw) if raw else None
        seq = int(ident) if ident and ident.isdigit() else None
        if name == "notification":
            if seq is not None and self.last_event_id is not None and seq <= self.last_event_id:
                return None
            if seq is not None:
                self.last_event_id = seq
        elif name in ("ready", "reset"):
            self.failures = 0
            if seq is not None and (name == "reset" or self.last_event_id is None):
                self.last_event_id = seq
        elif name == "expired":
            self.renew = True
        return Event(name, data, seq)
