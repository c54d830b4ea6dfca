"""``POST /v1/notifications`` and its batch form (API key with the ``publish`` scope).

An ``Idempotency-Key`` is stored as is (``notifications.idempotency_key``, 200 characters); a
batch stores ``<key>#<index>`` per item, so a batch's key is shorter by the longest suffix
(``#99``): at most 197 characters. Longer keys are refused (422) before anything is stored.

The answer is the notification's one-line JSON, the same bytes the hub sends to streams
(``Notification.encode``, computed once per notification), not a second encoding per request.

What a request does once accepted is :func:`answer_one` / :func:`answer_batch`, shared with
:mod:`tidings.api.fastpublish`, which takes the routes' ordinary requests ahead of FastAPI's
router; the routes below declare them (OpenAPI) and answer everything else.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Response
from pydantic import BaseModel

from tidings.api.contract import raises
from tidings.api.deps import KeyDep, ServiceDep, require_scope
from tidings.api.schemas import BATCH_MAX, BatchIn, BatchOut, NotificationOut
from tidings.domain.notifications import NewNotification
from tidings.domain.principals import KeyPrincipal
from tidings.errors import Code
from tidings.service import Tidings

router = APIRouter(prefix="/v1/notifications", tags=["publish"])

KEY_COLUMN = 200  # notifications.idempotency_key
BATCH_KEY_MAX = KEY_COLUMN - len(f"#{BATCH_MAX - 1}")


def _key_header(max_length: int) -> Any:
    return Header(
        alias="Idempotency-Key", min_length=1, max_length=max_length, pattern=r"^[\x21-\x7e]+$"
    )


IdempotencyKey = Annotated[str | None, _key_header(KEY_COLUMN)]
BatchIdempotencyKey = Annotated[str | None, _key_header(BATCH_KEY_MAX)]


PUBLISH_CODES = (
    Code.RATE_LIMITED,
    Code.TOO_MANY_TARGETS,
    Code.IDEMPOTENCY_KEY_MISMATCH,
    Code.TENANT_NOT_FOUND,
)


def _answers(model: type[BaseModel]) -> dict[int | str, dict[str, Any]]:
    """The answer's model (the handler writes the bytes itself): 201 new, 200 a repeat."""
    return {
        201: {"model": model, "description": "Stored."},
        200: {"model": model, "description": "Stored before (a repeated Idempotency-Key)."},
    }


def _json(content: bytes, created: bool) -> Response:
    return Response(content, status_code=201 if created else 200, media_type="application/json")


async def answer_one(
    service: Tidings, key: KeyPrincipal, body: NewNotification, idempotency_key: str | None
) -> tuple[bytes, bool]:
    """One notification, once the request is accepted: the answer's bytes, and True if new."""
    require_scope(key, "publish")
    await service.rate_limit(key, items=[body])
    stored, created = await service.publish(key.tenant, body, idempotency_key=idempotency_key)
    return stored.encode(), created


async def answer_batch(
    service: Tidings, key: KeyPrincipal, body: BatchIn, idempotency_key: str | None
) -> tuple[bytes, bool]:
    """A batch, once the request is accepted: the answer's bytes, and True if any is new."""
    require_scope(key, "publish")
    await service.rate_limit(key, items=body.notifications)
    results = await service.publish_many(
        key.tenant, body.notifications, idempotency_key=idempotency_key
    )
    items = b",".join(n.encode() for n, _ in results)
    return b'{"notifications":[' + items + b"]}", any(created for _, created in results)


@router.post(
    "",
    status_code=201,
    response_model=None,
    responses=_answers(NotificationOut),
    openapi_extra=raises(*PUBLISH_CODES),
)
async def publish(
    body: NewNotification,
    key: KeyDep,
    service: ServiceDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Store and deliver one notification. 201 when new, 200 for a repeated Idempotency-Key."""
    return _json(*await answer_one(service, key, body, idempotency_key))


@router.post(
    "/batch",
    status_code=201,
    response_model=None,
    responses=_answers(BatchOut),
    openapi_extra=raises(*PUBLISH_CODES),
)
async def publish_batch(
    body: BatchIn,
    key: KeyDep,
    service: ServiceDep,
    idempotency_key: BatchIdempotencyKey = None,
) -> Response:
    """Up to 100 notifications in one transaction: all are stored, or none."""
    return _json(*await answer_batch(service, key, body, idempotency_key))
