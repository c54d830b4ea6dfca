"""``GET /sse/notifications``: the stream the original booking dashboard listens to, unchanged.

That dashboard's composable does ``eventSource.onmessage = (e) => JSON.parse(e.data)``, treats
``{"type": "connected"}`` and ``{"type": "ping"}`` as control messages and every other object as
a notification to unshift and toast. This route serves exactly that, from the same machinery as
``/v1/stream`` (the same subscriber, opening, replay, audience and mute rules, edge, limits):
only the bytes written are rewritten, by the subscriber's frame encoder hook (``encode``).

Wire (unnamed ``message`` events only, data one line of JSON):

- ``ready``/``reset`` → ``data: {"type":"connected"}`` (with its ``id:`` when it has one, so the
  browser's ``Last-Event-ID`` is the latest seq);
- ``notification`` → ``id: <seq>`` + ``data: {…the notification as the booking backend posts it,
  "id", "type", "title", "message", "link", "createdAt", "read": false}``;
- the ``: ping`` keep-alive → ``data: {"type":"ping"}``;
- ``read``/``archived`` (other tabs' read state), ``bye``/``expired`` → nothing (the dashboard
  has no such messages; the stream closes and the browser reconnects with ``Last-Event-ID``).

Authentication as ``/v1/stream``: a stream token as ``?token=`` or ``?access_token=`` (an
``EventSource`` sends no headers), ``Authorization: Bearer`` or the session cookie. Resume:
``Last-Event-ID`` (the browser's own reconnects) or ``?last_event_id=``.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Header, Query, Request

from tidings.api.contract import event_stream
from tidings.api.deps import ServiceDep, stream_principal
from tidings.api.stream import _resume
from tidings.delivery.stream import EventStream
from tidings.domain.principals import Principal
from tidings.errors import Code

router = APIRouter(tags=["compat"])

CONNECTED = b'data: {"type":"connected"}\n\n'
PING = b'data: {"type":"ping"}\n\n'


def legacy_frames(block: bytes) -> bytes:
    """Rewrite a block of whole ``/v1/stream`` frames into the dashboard's wire (module doc)."""
    if block.count(b"\n\n") == 1:
        return legacy_frame(block)
    return b"".join(legacy_frame(f + b"\n\n") for f in block.split(b"\n\n") if f)


@lru_cache(maxsize=256)
def legacy_frame(frame: bytes) -> bytes:
    """One frame. Pure, so cached: the hub offers the same bytes to every stream."""
    event_id: bytes | None = None
    event = b"message"
    data = b""
    for line in frame.split(b"\n"):
        if line.startswith(b"id: "):
            event_id = line[4:]
        elif line.startswith(b"event: "):
            event = line[7:]
        elif line.startswith(b"data: "):
            data = line[6:]
        elif line.startswith(b"retry: "):
            return frame
        elif line.startswith(b":"):
            return PING
    head = b"" if event_id is None else b"id: " + event_id + b"\n"
    if event in (b"ready", b"reset"):
        return head + CONNECTED
    if event == b"notification":
        return head + b"data: " + orjson.dumps(legacy_notification(orjson.loads(data))) + b"\n\n"
    return b""


def legacy_notification(public: dict[str, Any]) -> dict[str, Any]:
    """A stored notification (``Notification.public()``) in the shape the backend posts it:
    its extra fields (kept in ``data`` by ``POST /api/sse/broadcast``) at the top level."""
    data = public.get("data")
    out: dict[str, Any] = dict(data) if isinstance(data, dict) else {}
    out.update(
        id=public["id"],
        type=public["type"],
        title=public["title"],
        message=public["body"],
        link=public["link"],
        createdAt=public["created_at"],
        read=False,
    )
    return out


async def legacy_principal(
    request: Request,
    service: ServiceDep,
    token: Annotated[str | None, Query(max_length=4096)] = None,
    access_token: Annotated[str | None, Query(max_length=4096)] = None,
) -> Principal:
    """``?token=`` (the dashboard's name) or whatever ``/v1/stream`` accepts."""
    return await stream_principal(request, service, token or access_token)


@router.get(
    "/sse/notifications",
    response_model=None,
    openapi_extra=event_stream(Code.INVALID_EVENT_ID, Code.TOO_MANY_STREAMS, Code.SHUTTING_DOWN),
)
async def notifications(
    principal: Annotated[Principal, Depends(legacy_principal)],
    service: ServiceDep,
    last_event_id_header: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    last_event_id: Annotated[str | None, Query(max_length=20)] = None,
) -> EventStream:
    """The booking dashboard's stream: unnamed ``message`` events (see the module docstring)."""
    resume = _resume(last_event_id_header, last_event_id)
    sub = await service.hub.subscribe(principal)
    sub.encode = legacy_frames
    return EventStream(service, sub, resume)
