"""Every SDK call as data: method, path, body, which credential, whether it may be repeated.

Both clients (:mod:`._sync`, :mod:`._async`) run these same descriptions, so their surfaces
cannot drift apart: a method of either is one line that builds a :class:`Call` here and runs it.
The paths and bodies are those of ``src/tidings/api/*.py`` and ``src/tidings/channels/*.py``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar, cast
from urllib.parse import quote

from tidings.client._tokens import StreamToken, UserRef
from tidings.client._types import (
    ApiKey,
    FeedPage,
    MarkResult,
    Notification,
    Tenant,
    UnreadCount,
)

T = TypeVar("T")
Auth = Literal["key", "operator", "user", "none"]
FeedStatus = Literal["unread", "read", "archived", "snoozed", "all"]
ActorRef = str | Mapping[str, Any]
"""The user who caused a notification: their id, or ``{"id": …, "name": …}``."""


def _same(body: Any) -> Any:
    return body


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One HTTP request of the API and how to read its answer."""

    method: str
    path: str
    auth: Auth
    parse: Callable[[Any], T] = field(default=cast(Callable[[Any], T], _same))
    json: Any = None
    params: Mapping[str, str | int] | None = None
    user: UserRef | None = None
    idempotent: bool = True
    headers: Mapping[str, str] = field(default_factory=dict)


def _seg(value: str) -> str:
    """A path segment, percent-encoded (an id with ``/`` cannot reach another route)."""
    return quote(value, safe="")


def _notification(
    type: str,
    title: str,
    body: str,
    data: Mapping[str, Any] | None,
    link: str | None,
    audience: Mapping[str, Sequence[str]] | None,
    actor: ActorRef | None = None,
    group: str | None = None,
) -> dict[str, Any]:
    payload: dict[str, Any] = {"type": type, "title": title, "body": body, "data": dict(data or {})}
    if link is not None:
        payload["link"] = link
    if audience is not None:
        payload["audience"] = {k: list(v) for k, v in audience.items()}
    if actor is not None:
        payload["actor"] = {"id": actor} if isinstance(actor, str) else dict(actor)
    if group is not None:
        payload["group"] = group
    return payload


def publish(
    type: str,
    title: str,
    body: str,
    data: Mapping[str, Any] | None,
    link: str | None,
    audience: Mapping[str, Sequence[str]] | None,
    idempotency_key: str | None,
    actor: ActorRef | None = None,
    group: str | None = None,
) -> Call[Notification]:
    return Call(
        "POST",
        "/v1/notifications",
        "key",
        json=_notification(type, title, body, data, link, audience, actor, group),
        headers={"Idempotency-Key": idempotency_key or uuid.uuid4().hex},
    )


def _batch(body: Any) -> list[Notification]:
    return cast(list[Notification], body["notifications"])


def publish_batch(
    notifications: Sequence[Mapping[str, Any]], idempotency_key: str | None
) -> Call[list[Notification]]:
    return Call(
        "POST",
        "/v1/notifications/batch",
        "key",
        parse=_batch,
        json={"notifications": [dict(n) for n in notifications]},
        headers={"Idempotency-Key": idempotency_key or uuid.uuid4().hex},
    )


def mint_token(ref: UserRef, ttl: int | None, tenant: str | None = None) -> Call[StreamToken]:
    body: dict[str, Any] = {"user": ref.user, "roles": list(ref.roles)}
    if ref.email is not None:
        body["email"] = ref.email
    if ref.locale is not None:
        body["locale"] = ref.locale
    if ttl is not None:
        body["ttl"] = ttl
    if tenant is None:
        return Call("POST", "/v1/tokens", "key", parse=StreamToken.from_json, json=body)
    path = f"/v1/admin/tenants/{_seg(tenant)}/tokens"
    return Call("POST", path, "operator", parse=StreamToken.from_json, json=body)


def feed(
    ref: UserRef,
    status: FeedStatus,
    type: str | None,
    limit: int,
    cursor: str | None,
    grouped: bool = False,
) -> Call[FeedPage]:
    params: dict[str, str | int] = {"status": status, "limit": limit}
    if grouped:
        params["grouped"] = "true"
    if type is not None:
        params["type"] = type
    if cursor is not None:
        params["cursor"] = cursor
    return Call("GET", "/v1/feed", "user", params=params, user=ref)


def unread_count(ref: UserRef) -> Call[UnreadCount]:
    return Call("GET", "/v1/feed/unread-count", "user", user=ref)


def mark_read(
    ref: UserRef,
    ids: Sequence[int] | None,
    all: bool,
    up_to: int | None,
    groups: Sequence[str] | None = None,
) -> Call[MarkResult]:
    if [all, ids is not None, groups is not None].count(True) != 1:
        raise ValueError("pass either ids or all=True, or groups")
    body: dict[str, Any] = {"all": True} if all else {"ids": list(ids or ())}
    if groups is not None:
        body = {"groups": list(groups)}
    if up_to is not None:
        body["up_to"] = up_to
    return Call("POST", "/v1/feed/read", "user", json=body, user=ref)


def archive(ref: UserRef, ids: Sequence[int]) -> Call[MarkResult]:
    return Call("POST", "/v1/feed/archive", "user", json={"ids": list(ids)}, user=ref)


def mark_unread(ref: UserRef, ids: Sequence[int]) -> Call[MarkResult]:
    return Call("POST", "/v1/feed/unread", "user", json={"ids": list(ids)}, user=ref)


def unarchive(ref: UserRef, ids: Sequence[int]) -> Call[MarkResult]:
    return Call("POST", "/v1/feed/unarchive", "user", json={"ids": list(ids)}, user=ref)


def snooze(ref: UserRef, ids: Sequence[int], until: datetime) -> Call[MarkResult]:
    if until.tzinfo is None:
        raise ValueError("until needs a time zone (e.g. datetime.now(UTC) + timedelta(hours=1))")
    body = {"ids": list(ids), "until": until.isoformat()}
    return Call("POST", "/v1/feed/snooze", "user", json=body, user=ref)


def preferences(ref: UserRef) -> Call[dict[str, Any]]:
    return Call("GET", "/v1/preferences", "user", user=ref)


def set_preferences(ref: UserRef, prefs: Mapping[str, Any]) -> Call[dict[str, Any]]:
    return Call("PUT", "/v1/preferences", "user", json=dict(prefs), user=ref)


def tenant_preferences() -> Call[dict[str, Any]]:
    return Call("GET", "/v1/tenant/preferences", "key")


def set_tenant_preferences(prefs: Mapping[str, Any]) -> Call[dict[str, Any]]:
    return Call("PUT", "/v1/tenant/preferences", "key", json=dict(prefs))


def create_tenant(id: str, name: str) -> Call[Tenant]:
    body = {"id": id, "name": name}
    return Call("POST", "/v1/admin/tenants", "operator", json=body, idempotent=False)


def _tenants(body: Any) -> list[Tenant]:
    return cast(list[Tenant], body["tenants"])


def list_tenants() -> Call[list[Tenant]]:
    return Call("GET", "/v1/admin/tenants", "operator", parse=_tenants)


def create_key(tenant: str, name: str, scopes: Sequence[str] | None) -> Call[ApiKey]:
    body: dict[str, Any] = {"name": name}
    if scopes is not None:
        body["scopes"] = list(scopes)
    path = f"/v1/admin/tenants/{_seg(tenant)}/keys"
    return Call("POST", path, "operator", json=body, idempotent=False)


def _keys(body: Any) -> list[ApiKey]:
    return cast(list[ApiKey], body["keys"])


def list_keys(tenant: str) -> Call[list[ApiKey]]:
    return Call("GET", f"/v1/admin/tenants/{_seg(tenant)}/keys", "operator", parse=_keys)


def revoke_key(key_id: str) -> Call[ApiKey]:
    return Call("DELETE", f"/v1/admin/keys/{_seg(key_id)}", "operator")
