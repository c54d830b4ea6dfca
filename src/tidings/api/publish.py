"""``POST /v1/notifications`` and its batch form (API key with the ``publish`` scope)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Response

from tidings.api.deps import KeyDep, ServiceDep, require_scope
from tidings.api.schemas import BatchIn
from tidings.domain.notifications import NewNotification

router = APIRouter(prefix="/v1/notifications", tags=["publish"])

IdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", min_length=1, max_length=200, pattern=r"^[\x21-\x7e]+$"),
]


@router.post("", status_code=201)
async def publish(
    body: NewNotification,
    key: KeyDep,
    service: ServiceDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> dict[str, Any]:
    """Store and deliver one notification. 201 when new, 200 for a repeated Idempotency-Key."""
    require_scope(key, "publish")
    await service.rate_limit(key, items=[body])
    stored, created = await service.publish(key.tenant, body, idempotency_key=idempotency_key)
    response.status_code = 201 if created else 200
    return stored.public()


@router.post("/batch", status_code=201)
async def publish_batch(
    body: BatchIn,
    key: KeyDep,
    service: ServiceDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> dict[str, Any]:
    """Up to 100 notifications in one transaction: all are stored, or none."""
    require_scope(key, "publish")
    await service.rate_limit(key, items=body.notifications)
    results = await service.publish_many(
        key.tenant, body.notifications, idempotency_key=idempotency_key
    )
    response.status_code = 201 if any(created for _, created in results) else 200
    return {"notifications": [n.public() for n, _ in results]}
