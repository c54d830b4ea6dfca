"""Request and response schemas of the HTTP API (separate ``…In`` / ``…Out`` models)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from pydantic.config import JsonDict

from tidings.domain.inputs import StoreInt, StrictModel
from tidings.domain.locales import LOCALE_PATTERN
from tidings.domain.notifications import NewNotification

GROUP_RE = r"^[a-z][a-z0-9_.:\-]*$"
"""A collapse key (issue 10), as :data:`tidings.domain.notifications.GROUP_PATTERN`."""


class Strict(StrictModel):
    """Request bodies: unknown fields refused, text storable (:class:`StrictModel`)."""

    model_config = ConfigDict(extra="forbid")


BATCH_MAX = 100


class BatchIn(Strict):
    notifications: list[NewNotification] = Field(min_length=1, max_length=BATCH_MAX)


class IdsIn(Strict):
    ids: list[int] = Field(min_length=1, max_length=500)


class SnoozeIn(Strict):
    """``until``: an ISO 8601 time with a zone, in the future (issue 10)."""

    ids: list[int] = Field(min_length=1, max_length=500)
    until: AwareDatetime


class ReadIn(Strict):
    ids: list[int] | None = Field(default=None, min_length=1, max_length=500)
    groups: list[Annotated[str, Field(min_length=1, max_length=128, pattern=GROUP_RE)]] | None = (
        Field(default=None, min_length=1, max_length=100, description="Collapse keys (issue 10).")
    )
    all: bool = False
    up_to: StoreInt | None = None


_ID: JsonDict = {"pattern": r"^[A-Za-z0-9_.@:+\-]+$"}
"""Documents (in /openapi.json) the id rule the service checks: 1-128 of A-Z a-z 0-9 _ . @ : + -"""


class TokenIn(Strict):
    user: str = Field(min_length=1, max_length=128, json_schema_extra=_ID)
    roles: list[str] = Field(
        default_factory=list, max_length=50, json_schema_extra={"items": {"type": "string", **_ID}}
    )
    email: str | None = Field(default=None, max_length=320)
    ttl: int | None = Field(default=None, ge=1)
    locale: str | None = Field(  # issue 10: the user's language (feed, push, digest)
        default=None, max_length=64, pattern=LOCALE_PATTERN, description="BCP 47, e.g. de-AT."
    )


class TenantIn(Strict):
    id: str = Field(
        min_length=1, max_length=63, json_schema_extra={"pattern": "^[a-z0-9][a-z0-9-]*$"}
    )
    name: str = Field(min_length=1, max_length=200)


class KeyIn(Strict):
    name: str = Field(default="default", min_length=1, max_length=200)
    scopes: list[str] = Field(
        default_factory=lambda: ["publish", "tokens"],
        max_length=10,
        json_schema_extra={
            "minItems": 1,
            "items": {"type": "string", "enum": ["publish", "tokens", "admin"]},
        },
    )


class SigningKeyIn(Strict):
    name: str = Field(default="default", min_length=1, max_length=200)


# -- responses: each is exactly the JSON a route answers (every field required, in the order the
# handler writes them), so declaring it as ``response_model`` documents the route and changes no
# byte of the answer. ``tests/test_contract.py`` checks the served answers against them.


class Out(BaseModel):
    """Base of the response models."""


class TokenOut(Out):
    token: str = Field(description="The stream token (a JWT).")
    expires_at: str = Field(description="RFC 3339, UTC.")
    tenant: str
    user: str


class UnreadOut(Out):
    count: int = Field(ge=0, le=99, description="Exact up to 99.")
    more: bool = Field(description="True when 100 or more are unread (count is then 99).")


class ActorOut(Out):
    id: str
    name: str | None


class TextOut(Out):
    """A notification's text in one locale."""

    title: str
    body: str


class NotificationOut(Out):
    """A stored notification; ``id`` is its per-tenant seq (the SSE ``id:``)."""

    id: int
    type: str
    title: str
    body: str
    data: dict[str, Any]
    link: str | None
    audience: dict[Literal["users", "roles"], list[str]] | None = Field(
        description="null: the whole tenant."
    )
    created_at: str
    actor: ActorOut | None = Field(description="Who caused it (read for them); null: nobody.")
    group: str | None = Field(default=None, description="Collapse key; null: its own card.")
    l10n: dict[str, TextOut] | None = Field(
        default=None,
        description="Rendered from the type's templates (docs/i18n.md): the text in each of its "
        "locales; title/body are the default locale's (the feed: the token's locale). Absent "
        "for a notification published with a title.",
    )


class FeedItemOut(NotificationOut):
    read: bool
    archived: bool
    snoozed_until: str | None = Field(description="RFC 3339, UTC, while snoozed; else null.")
    group_count: int | None = Field(
        default=None, description="grouped=true: items of its group this view admits."
    )
    group_unread: int | None = Field(
        default=None, description="grouped=true: how many of them are unread."
    )


class FeedOut(Out):
    items: list[FeedItemOut]
    next_cursor: str | None


class ReadOut(Out):
    unread: UnreadOut


class BatchOut(Out):
    notifications: list[NotificationOut]


class BroadcastOut(Out):
    success: bool
    id: int
    notification: NotificationOut


class TenantOut(Out):
    id: str
    name: str
    created_at: str


class TenantsOut(Out):
    tenants: list[TenantOut]


class KeyOut(Out):
    id: str
    tenant: str
    name: str
    scopes: list[str]
    created_at: str
    revoked_at: str | None


class NewKeyOut(KeyOut):
    key: str = Field(description="The whole API key: shown in this answer only.")


class KeysOut(Out):
    keys: list[KeyOut]


class SigningKeyOut(Out):
    kid: str
    tenant: str
    name: str
    created_at: str
    revoked_at: str | None


class NewSigningKeyOut(SigningKeyOut):
    secret: str = Field(description="The HS256 secret: shown in this answer only.")


class SigningKeysOut(Out):
    signing_keys: list[SigningKeyOut]


class RemovalOut(Out):
    """``DELETE /v1/admin/tenants/{id}``: rows removed per table, streams ended here."""

    tenant: str
    removed: dict[str, int]
    streams_closed: int


class UserRemovalOut(Out):
    """``DELETE /v1/admin/tenants/{id}/users/{user}``: rows removed per kind."""

    tenant: str
    user: str
    removed: dict[str, int]
    streams_closed: int


class HealthOut(Out):
    status: Literal["ok"]


class ReadyOut(Out):
    status: Literal["ready"]
    streams: int


# -- the data of the stream's events (GET /v1/stream, docs/protocol.md) --------------------------


class SnapshotEvent(Out):
    """``ready`` and ``reset``: the state a client starts from."""

    unread: UnreadOut
    latest_seq: int
    latest: list[FeedItemOut] = Field(description="Up to 5, newest first.")
    user: str = Field(description="Whose stream: notifications with this actor arrive read.")


class ReadEvent(Out):
    """``read``: ``ids`` marked read, or ``all`` up to ``up_to``."""

    ids: list[int] | None = None
    all: bool | None = None
    up_to: int | None = None
    unread: UnreadOut


class ArchivedEvent(Out):
    ids: list[int]
    unread: UnreadOut


class RestoredEvent(Out):
    """``unread`` and ``unarchived``: ``ids`` back in the inbox, ``items`` (up to 5) to show."""

    ids: list[int]
    items: list[FeedItemOut]
    unread: UnreadOut


class SnoozedEvent(Out):
    ids: list[int]
    until: str = Field(description="RFC 3339, UTC.")
    unread: UnreadOut


class UnsnoozedEvent(Out):
    """A snooze ended: ``ids`` are unread again (the client adds them to its count)."""

    ids: list[int]
    items: list[FeedItemOut]


class EndEvent(Out):
    """``expired`` (``token_expired``) or ``bye`` (``overflow``, ``shutdown``, ``gap``)."""

    reason: str
