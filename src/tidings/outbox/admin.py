"""Operator routes of the outbox (``TIDINGS_OPERATOR_KEY``): the rows moved aside.

- ``GET /v1/admin/outbox``: is the consumer on, listening, and how far behind (seconds).
- ``GET /v1/admin/outbox/dead?tenant=&after=&limit=``: dead rows in id order, with errors.
- ``POST /v1/admin/outbox/dead/{id}/retry``: put the row back into ``tidings_outbox`` (same id,
  so the same idempotency key); it is published after the rows already published.
- ``DELETE /v1/admin/outbox/dead/{id}``: drop it for good.

Without ``TIDINGS_OUTBOX_URL`` the dead-row routes answer 404 ``outbox_disabled``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from tidings.api.contract import raises
from tidings.api.deps import OperatorDep
from tidings.errors import Code, NotFound
from tidings.outbox import rows

if TYPE_CHECKING:
    from tidings.outbox.consumer import OutboxConsumer

router = APIRouter(prefix="/v1/admin/outbox", tags=["admin"])

RowId = Annotated[int, Query(ge=0, le=2**63 - 1)]


class OutboxStatusOut(BaseModel):
    """Whether the consumer runs; ``listening`` and ``lag_seconds`` only when it does."""

    enabled: bool
    listening: bool | None = None
    lag_seconds: float | None = None


class DeadRowOut(BaseModel):
    """A row moved aside: the host's payload as inserted, and why it was refused."""

    id: int
    tenant: str
    payload: Any
    created_at: str
    failed_at: str
    error: str


class DeadRowsOut(BaseModel):
    dead: list[DeadRowOut]
    next_after: int | None


class RetriedOut(BaseModel):
    id: int
    retried: bool


class DiscardedOut(BaseModel):
    id: int
    discarded: bool


_MISSING = raises(Code.OUTBOX_DISABLED, Code.OUTBOX_ROW_NOT_FOUND, Code.OUTBOX_UNAVAILABLE)


def _consumer(request: Request) -> OutboxConsumer:
    consumer: OutboxConsumer | None = getattr(request.app.state, "outbox", None)
    if consumer is None:
        raise NotFound(
            "The outbox consumer is off (TIDINGS_OUTBOX_URL is not set).", code=Code.OUTBOX_DISABLED
        )
    return consumer


def _no_row(row_id: int) -> NotFound:
    return NotFound(f"No dead outbox row {row_id}.", code=Code.OUTBOX_ROW_NOT_FOUND)


def _check_id(row_id: int) -> None:
    if not 1 <= row_id <= 2**63 - 1:
        raise _no_row(row_id)


@router.get("", response_model=OutboxStatusOut, response_model_exclude_none=True)
async def status(request: Request, _: OperatorDep) -> dict[str, Any]:
    consumer: OutboxConsumer | None = getattr(request.app.state, "outbox", None)
    if consumer is None:
        return {"enabled": False}
    return {
        "enabled": True,
        "listening": consumer.listening.is_set(),
        "lag_seconds": consumer.lag,
    }


@router.get(
    "/dead",
    response_model=DeadRowsOut,
    openapi_extra=raises(Code.OUTBOX_DISABLED, Code.OUTBOX_UNAVAILABLE),
)
async def list_dead(
    request: Request,
    _: OperatorDep,
    tenant: Annotated[str | None, Query(max_length=200)] = None,
    after: RowId = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    """Dead rows after ``after`` (an id), oldest first; ``next_after`` pages on."""
    pool = await _consumer(request).pool()
    async with pool.acquire() as conn:
        found = await rows.list_dead(conn, tenant=tenant, after=after, limit=limit)
    return {
        "dead": [row.public() for row in found],
        "next_after": found[-1].id if len(found) == limit else None,
    }


@router.get("/dead/{row_id}", response_model=DeadRowOut, openapi_extra=_MISSING)
async def get_dead(request: Request, row_id: int, _: OperatorDep) -> dict[str, Any]:
    _check_id(row_id)
    pool = await _consumer(request).pool()
    async with pool.acquire() as conn:
        found = await rows.get_dead(conn, row_id)
    if found is None:
        raise _no_row(row_id)
    return found.public()


@router.post("/dead/{row_id}/retry", response_model=RetriedOut, openapi_extra=_MISSING)
async def retry_dead(request: Request, row_id: int, _: OperatorDep) -> dict[str, Any]:
    _check_id(row_id)
    consumer = _consumer(request)
    pool = await consumer.pool()
    async with pool.acquire() as conn:
        if not await rows.retry_dead(conn, row_id):
            raise _no_row(row_id)
    consumer.wake()
    return {"id": row_id, "retried": True}


@router.delete("/dead/{row_id}", response_model=DiscardedOut, openapi_extra=_MISSING)
async def discard_dead(request: Request, row_id: int, _: OperatorDep) -> dict[str, Any]:
    _check_id(row_id)
    pool = await _consumer(request).pool()
    async with pool.acquire() as conn:
        if not await rows.discard_dead(conn, row_id):
            raise _no_row(row_id)
    return {"id": row_id, "discarded": True}
