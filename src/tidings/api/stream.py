"""``GET /v1/stream``: the SSE stream of DESIGN.md's wire protocol."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query

from tidings.api.contract import raises
from tidings.api.deps import ServiceDep, StreamUserDep
from tidings.delivery.stream import EventStream
from tidings.domain.inputs import parse_int
from tidings.errors import BadRequest, Code

router = APIRouter(tags=["stream"])


def _resume(header: str | None, query: str | None) -> int | None:
    raw = header if header not in (None, "") else query
    if raw in (None, ""):
        return None
    assert raw is not None
    seq = parse_int(raw)
    if seq is None:
        raise BadRequest(
            "Last-Event-ID must be a non-negative integer seq (ASCII digits, at most 2^63-1).",
            code=Code.INVALID_EVENT_ID,
        )
    return seq


@router.get(
    "/v1/stream",
    response_model=None,
    openapi_extra=raises(Code.INVALID_EVENT_ID, Code.TOO_MANY_STREAMS, Code.SHUTTING_DOWN),
)
async def stream(
    principal: StreamUserDep,
    service: ServiceDep,
    last_event_id_header: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    last_event_id: Annotated[str | None, Query(max_length=20)] = None,
) -> EventStream:
    """Open a stream. Resume with ``Last-Event-ID`` (header) or ``?last_event_id=``."""
    resume = _resume(last_event_id_header, last_event_id)
    sub = await service.hub.subscribe(principal)
    return EventStream(service, sub, resume)
