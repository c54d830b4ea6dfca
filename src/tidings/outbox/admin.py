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

from tidings.api.deps import OperatorDep
from tidings.errors import NotFound
from tidings.outbox import rows

if TYPE_CHECKING:
    from tidings.outbox.consumer import OutboxConsumer

router = APIRouter(prefix="/v1/admin/outbox", tags=["admin"])

RowId = Annotated[int, Query(ge=0, le=2**63 - 1)]


def _consumer(request: Request) -> OutboxConsumer:
    consumer: OutboxConsumer | None = getattr(request.app.state, "outbox", None)
    if consumer is None:
        raise NotFound(
            "The outbox consumer is off (TIDINGS_OUTBOX_URL is not set).", code="outbox_disabled"
        )
    return consumer


def _no_row(row_id: int) -> NotFound:
    return NotFound(f"No dead outbox row {row_id}.", code="outbox_row_not_found")


def _check_id(row_id: int) -> None:
    if not 1 <= row_id <= 2**63 - 1:
        raise _no_row(row_id)


@router.get("")
async def status(request: Request, _: OperatorDep) -> dict[str, Any]:
    consumer: OutboxConsumer | None = getattr(request.app.state, "outbox", None)
    if consumer is None:
        return {"enabled": False}
    return {
        "enabled": True,
        "listening": consumer.listening.is_set(),
        "lag_seconds": consumer.lag,
    }


@router.get("/dead")
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


@router.get("/dead/{row_id}")
async def get_dead(request: Request, row_id: int, _: OperatorDep) -> dict[str, Any]:
    _check_id(row_id)
    pool = await _consumer(request).pool()
    async with pool.acquire() as conn:
        found = await rows.get_dead(conn, row_id)
    if found is None:
        raise _no_row(row_id)
    return found.public()


@router.post("/dead/{row_id}/retry")
async def retry_dead(request: Request, row_id: int, _: OperatorDep) -> dict[str, Any]:
    _check_id(row_id)
    consumer = _consumer(request)
    pool = await consumer.pool()
    async with pool.acquire() as conn:
        if not await rows.retry_dead(conn, row_id):
            raise _no_row(row_id)
    consumer.wake()
    return {"id": row_id, "retried": True}


@router.delete("/dead/{row_id}")
async def discard_dead(request: Request, row_id: int, _: OperatorDep) -> dict[str, Any]:
    _check_id(row_id)
    pool = await _consumer(request).pool()
    async with pool.acquire() as conn:
        if not await rows.discard_dead(conn, row_id):
            raise _no_row(row_id)
    return {"id": row_id, "discarded": True}
