"""SSE framing, in this one module.

Invariants: ``data`` is always one line of JSON (JSON escapes newlines), event names come from
the closed set :data:`EVENTS`, and ids are integers, so no payload can forge framing.
"""

from __future__ import annotations

from typing import Any

import orjson

EPHEMERAL = frozenset({"read", "archived", "unread", "unarchived", "snoozed", "unsnoozed"})
"""Per-user read-state events (no id): the service sends them, the broker relays them."""
EVENTS = frozenset({"ready", "reset", "notification", "expired", "bye"}) | EPHEMERAL
PING = b": ping\n\n"


def frame(event: str, data: bytes | dict[str, Any], event_id: int | None = None) -> bytes:
    """One SSE event. ``data`` is JSON bytes (one line) or an object to encode."""
    if event not in EVENTS:
        raise ValueError(f"unknown SSE event {event!r}")
    payload = data if isinstance(data, bytes) else orjson.dumps(data)
    if b"\n" in payload or b"\r" in payload:
        raise ValueError("SSE data must be one line")
    head = b"" if event_id is None else b"id: %d\n" % event_id
    return head + b"event: " + event.encode() + b"\ndata: " + payload + b"\n\n"


def notification_frame(seq: int, payload: bytes) -> bytes:
    """The hot-path frame: built once per notification per instance."""
    return b"id: %d\nevent: notification\ndata: %s\n\n" % (seq, payload)


def retry(ms: int) -> bytes:
    return b"retry: %d\n\n" % ms
