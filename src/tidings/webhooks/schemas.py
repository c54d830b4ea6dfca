"""Request and response models of the webhook routes."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tidings.webhooks.catalogue import MAX_URL


class EndpointIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=MAX_URL, description="http(s) URL to POST to.")
    event_types: list[str] = Field(
        min_length=1, max_length=32, description="Types from the catalogue (docs/webhooks.md)."
    )
    description: str | None = Field(None, max_length=300)
    enabled: bool = True


class EndpointPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(None, min_length=1, max_length=MAX_URL)
    event_types: list[str] | None = Field(None, min_length=1, max_length=32)
    description: str | None = Field(None, max_length=300)
    enabled: bool | None = None


class EndpointOut(BaseModel):
    id: str
    url: str
    event_types: list[str]
    description: str | None
    enabled: bool
    disabled_reason: str | None = Field(
        description="`failing` (disabled automatically), `disabled` (by a request) or null."
    )
    failures: int = Field(description="Consecutive failed attempts (0 after a success).")
    created_at: str
    updated_at: str


class EndpointCreated(EndpointOut):
    secret: str = Field(description="`whsec_…`: the signing secret, shown only here.")


class EndpointsOut(BaseModel):
    endpoints: list[EndpointOut]


class RemovedOut(BaseModel):
    id: str
    removed: bool


class LogEntryOut(BaseModel):
    id: int
    endpoint_id: str
    event_id: str | None
    kind: str = Field(description="`attempt`, `gave_up` or `disabled`.")
    ok: bool | None
    status: int | None
    error: str | None
    attempt: int | None
    duration_ms: int | None
    at: str


class LogOut(BaseModel):
    entries: list[LogEntryOut]
    next_before: int | None


class EventOut(BaseModel):
    id: str = Field(description="The `webhook-id` it is (re)sent with.")
    type: str
    created_at: str
    payload: dict[str, Any]


class EventsOut(BaseModel):
    events: list[EventOut]


class ReplayIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    endpoint_id: str | None = Field(None, min_length=1, max_length=40)


class ReplayedOut(BaseModel):
    event_id: str
    queued: list[str] = Field(description="The endpoints it was queued to.")
