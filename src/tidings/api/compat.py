"""``POST /api/sse/broadcast``: the shape the booking backend's hooks already send.

``{"tenantId": 6, "notification": {"type", "title", "message", "link", "userId", …}}`` with an
API key. ``tenantId`` must be the key's tenant (403 otherwise). ``message`` becomes ``body``;
``link``/``url``/``actionUrl`` the link; ``userId`` (a number or a string), ``userIds`` (a list
of them) and ``roles`` (a list of strings) an audience; every other field of the notification is
kept under ``data``. A field of the wrong type is a 422, never guessed at (``"userIds": "12"`` is
not users ``1`` and ``2``). The user who caused it — ``actor`` ``{"id": 7, "name": "Ann"}`` or
``actorId`` (+ ``actorName``) — gets it already read (issue 10).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from pydantic import ConfigDict, Field, StrictInt, StrictStr, ValidationError

from tidings.api.contract import raises
from tidings.api.deps import KeyDep, ServiceDep, require_scope
from tidings.api.schemas import BroadcastOut
from tidings.domain.inputs import StrictModel
from tidings.domain.notifications import NewNotification
from tidings.errors import Code, Forbidden, ValidationFailed

router = APIRouter(tags=["compat"])

UserRef = StrictInt | StrictStr
"""A user id as the booking backend sends it: a number or a string (never a bool)."""


class CompatActor(StrictModel):
    model_config = ConfigDict(extra="forbid")

    id: UserRef
    name: StrictStr | None = None


class CompatNotification(StrictModel):
    """The notification as the booking backend's hooks send it. Typed fields are checked (a
    string is not a list of users; ``true`` is not a role); any other field is kept for
    ``data``."""

    model_config = ConfigDict(extra="allow")

    type: str | None = None
    title: str | None = None
    message: str | None = None
    body: str | None = None
    link: str | None = None
    url: str | None = None
    actionUrl: str | None = None  # the backend's field names, as it sends them
    userId: UserRef | None = None
    userIds: list[UserRef] | None = Field(default=None, max_length=1000)
    roles: list[StrictStr] | None = Field(default=None, max_length=100)
    data: dict[str, Any] | None = None
    actor: CompatActor | None = None
    actorId: UserRef | None = None
    actorName: StrictStr | None = None
    group: StrictStr | None = None  # collapse key (issue 10), e.g. "booking:42"

    def extra_fields(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class BroadcastIn(StrictModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    tenant_id: StrictInt | StrictStr = Field(alias="tenantId")
    notification: CompatNotification


def to_new(raw: CompatNotification) -> NewNotification:
    users = raw.userIds or ([raw.userId] if raw.userId is not None else [])
    roles = raw.roles or []
    audience = None
    if users or roles:
        audience = {"users": [str(u) for u in users], "roles": list(roles)}
    if raw.actor is not None and raw.actorId is not None:
        raise ValidationFailed("notification: send either actor or actorId, not both.")
    actor = None
    if raw.actor is not None:
        actor = {"id": str(raw.actor.id), "name": raw.actor.name}
    elif raw.actorId is not None:
        actor = {"id": str(raw.actorId), "name": raw.actorName}
    elif raw.actorName is not None:
        raise ValidationFailed("notification.actorName: needs actorId.")
    try:
        return NewNotification.model_validate(
            {
                "type": raw.type or "system",
                "title": raw.title or raw.message or "Notification",
                "body": raw.message or raw.body or "",
                "data": {**raw.extra_fields(), **(raw.data or {})},
                "link": raw.link or raw.url or raw.actionUrl,
                "audience": audience,
                "actor": actor,
                "group": raw.group,
            }
        )
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValidationFailed(f"notification.{where}: {first['msg']}") from error


@router.post(
    "/api/sse/broadcast",
    response_model=BroadcastOut,
    openapi_extra=raises(
        Code.WRONG_TENANT, Code.RATE_LIMITED, Code.TOO_MANY_TARGETS, Code.TENANT_NOT_FOUND
    ),
)
async def broadcast(
    body: BroadcastIn, key: KeyDep, service: ServiceDep, response: Response
) -> dict[str, Any]:
    require_scope(key, "publish")
    if str(body.tenant_id) != key.tenant:
        raise Forbidden("tenantId is not the tenant of this API key.", code=Code.WRONG_TENANT)
    new = to_new(body.notification)
    await service.rate_limit(key, items=[new])
    stored, _ = await service.publish(key.tenant, new)
    response.status_code = 200
    return {"success": True, "id": stored.seq, "notification": stored.public()}
