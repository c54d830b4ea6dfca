"""``GET /v1/stream``: the SSE stream of DESIGN.md's wire protocol.

On the edge protocol (``tidings serve``) a plain stream request is opened below the framework
(:mod:`tidings.api.opener`, read by :func:`plain_request` exactly as these dependencies read
it); this route answers every other one (every refusal included), documents the endpoint in
the OpenAPI document, and is the whole path under plain uvicorn."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query
from starlette.datastructures import QueryParams
from starlette.requests import cookie_parser

from tidings import auth
from tidings.api.contract import raises
from tidings.api.deps import COOKIE, ServiceDep, StreamUserDep
from tidings.delivery.stream import EventStream
from tidings.domain.inputs import parse_int
from tidings.errors import BadRequest, Code

router = APIRouter(tags=["stream"])
TOKEN_MAX = 4096  # the longest ?access_token= / ?token= the routes accept (Query max_length)
RESUME_MAX = 20  # the longest ?last_event_id=


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
    last_event_id: Annotated[str | None, Query(max_length=RESUME_MAX)] = None,
) -> EventStream:
    """Open a stream. Resume with ``Last-Event-ID`` (header) or ``?last_event_id=``."""
    resume = _resume(last_event_id_header, last_event_id)
    sub = await service.hub.subscribe(principal)
    return EventStream(service, sub, resume)


def plain_request(
    raw_headers: list[tuple[bytes, bytes]], query_string: bytes, *, legacy: bool = False
) -> tuple[str, int | None] | None:
    """The stream token and resume point of a ``GET /v1/stream`` (``legacy``:
    ``/sse/notifications``, which also takes ``?token=``) read exactly as the routes'
    dependencies read them (:func:`tidings.api.deps.stream_principal`, :func:`_resume`), for
    the edge opener (``tidings.api.opener``). ``None`` for anything but a well-formed request
    with a stream token (no token, an API key, a bad ``Last-Event-ID``, a parameter too
    long…): the route answers those, so every error is the route's own, byte for byte."""
    given: list[str | None] = []
    resume_query = None
    if query_string:  # most streams send none: no parse
        query = QueryParams(query_string)
        names = ("token", "access_token") if legacy else ("access_token",)
        given = [query.get(name) for name in names]
        resume_query = query.get("last_event_id")
    if any(v is not None and len(v) > TOKEN_MAX for v in given) or (
        resume_query is not None and len(resume_query) > RESUME_MAX
    ):
        return None  # the route's validation answers 422
    authorization = cookie = last_event_id = None  # the first of each, as Headers.get
    for name, value in raw_headers:
        if name == b"authorization":
            if authorization is None:
                authorization = value.decode("latin-1")
        elif name == b"cookie":
            if cookie is None:
                cookie = value.decode("latin-1")
        elif name == b"last-event-id" and last_event_id is None:
            last_event_id = value.decode("latin-1")
    token = next((v for v in given if v), None)
    if token is None:
        if authorization:
            scheme, _, credentials = authorization.partition(" ")
            if scheme.lower() != "bearer" or not credentials.strip():
                return None
            token = credentials.strip()
        else:
            token = cookie_parser(cookie).get(COOKIE) if cookie else None
    if not token or not auth.looks_like_jwt(token):
        return None
    try:
        resume = _resume(last_event_id, resume_query)
    except BadRequest:
        return None
    return token, resume
