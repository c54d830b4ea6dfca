"""``POST /api/sse/broadcast``: the shape the booking backend's hooks already send.

``{"tenantId": 6, "notification": {"type", "title", "message", "link", "userId", …}}`` with an
API key. ``tenantId`` must be the key's tenant (403 otherwise). ``message`` becomes ``body``;
``link``/``url``/``actionUrl`` the link; ``userId``/``userIds`` an audience; every other field of
the notification is kept under ``data``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tidings.api.deps import KeyDep, ServiceDep, require_scope
from tidings.domain.notifications import NewNotification
from tidings.errors import Forbidden, ValidationFailed

router = APIRouter(tags=["compat"])

_MAPPED = {
    "type",
    "title",
    "message",
    "body",
    "link",
    "url",
    "actionUrl",
    "userId",
    "userIds",
    "roles",
    "data",
}


class BroadcastIn(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    tenant_id: int | str = Field(alias="tenantId")
    notification: dict[str, Any]


def to_new(raw: dict[str, Any]) -> NewNotification:
    data = raw.get("data") if isinstance(raw.get("data"), dict) else {}
    extra = {k: v for k, v in raw.items() if k not in _MAPPED}
    users = raw.get("userIds") or ([raw["userId"]] if raw.get("userId") is not None else [])
    roles = raw.get("roles") or []
    audience = None
    if users or roles:
        audience = {"users": [str(u) for u in users], "roles": [str(r) for r in roles]}
    try:
        return NewNotification.model_validate(
            {
                "type": raw.get("type") or "system",
                "title": raw.get("title") or raw.get("message") or "Notification",
                "body": raw.get("message") or raw.get("body") or "",
                "data": {**extra, **(data or {})},
                "link": raw.get("link") or raw.get("url") or raw.get("actionUrl"),
                "audience": audience,
            }
        )
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValidationFailed(f"notification.{where}: {first['msg']}") from error


@router.post("/api/sse/broadcast")
async def broadcast(
    body: BroadcastIn, key: KeyDep, service: ServiceDep, response: Response
) -> dict[str, Any]:
    require_scope(key, "publish")
    if str(body.tenant_id) != key.tenant:
        raise Forbidden("tenantId is not the tenant of this API key.", code="wrong_tenant")
    new = to_new(body.notification)
    await service.rate_limit(key, items=[new])
    stored, _ = await service.publish(key.tenant, new)
    response.status_code = 200
    return {"success": True, "id": stored.seq, "notification": stored.public()}
