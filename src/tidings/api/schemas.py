"""Request and response schemas of the HTTP API (separate ``…In`` / ``…Out`` models)."""

from __future__ import annotations

from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from tidings.domain.inputs import StoreInt, StrictModel
from tidings.domain.notifications import NewNotification


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
    all: bool = False
    up_to: StoreInt | None = None


class TokenIn(Strict):
    user: str = Field(min_length=1, max_length=128)
    roles: list[str] = Field(default_factory=list, max_length=50)
    email: str | None = Field(default=None, max_length=320)
    ttl: int | None = Field(default=None, ge=1)


class TenantIn(Strict):
    id: str = Field(min_length=1, max_length=63)
    name: str = Field(min_length=1, max_length=200)


class KeyIn(Strict):
    name: str = Field(default="default", min_length=1, max_length=200)
    scopes: list[str] = Field(default_factory=lambda: ["publish", "tokens"], max_length=10)


class SigningKeyIn(Strict):
    name: str = Field(default="default", min_length=1, max_length=200)


class TokenOut(BaseModel):
    token: str
    expires_at: str
    tenant: str
    user: str


class UnreadOut(BaseModel):
    count: int
    more: bool


class FeedOut(BaseModel):
    items: list[dict[str, Any]]
    next_cursor: str | None
