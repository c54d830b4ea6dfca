"""Request bodies and response models of the channels API (the handlers build the answers
from the domain types; the ``…Out`` models state their exact shape)."""

from __future__ import annotations

import re
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from tidings.channels.catalogue import LOCALE_PATTERN
from tidings.channels.preferences import UserPreferences, check_zone
from tidings.domain.inputs import JsonObject, StrictModel
from tidings.domain.notifications import Audience

_ROLE = re.compile(r"^[A-Za-z0-9_.@:+\-]{1,128}\Z")


class _Strict(StrictModel):
    """Unknown fields refused; text storable (no NUL, no lone surrogate)."""

    model_config = ConfigDict(extra="forbid")


class PreferencesIn(UserPreferences):
    """``PUT /v1/preferences``: the user's overrides (replaced as a whole) and, when given, the
    user's time zone (absent: unchanged; ``null``: the tenant's)."""

    time_zone: str | None = None

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        return None if value is None else check_zone(value)


class UserIn(_Strict):
    """``PUT /v1/users/{user}``: only the fields sent change; ``null`` clears e-mail or zone."""

    email: str | None = Field(default=None, max_length=320, pattern=r"^[^@\s]{1,64}@[^@\s]{1,255}$")
    time_zone: str | None = None
    roles: list[str] | None = Field(default=None, max_length=50)
    # i18n: the digest's language, kept as the user's ``locale`` preference (null: the tenant's)
    locale: str | None = Field(default=None, pattern=LOCALE_PATTERN)

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        return None if value is None else check_zone(value)

    @field_validator("roles")
    @classmethod
    def _roles(cls, value: list[str] | None) -> list[str] | None:
        for role in value or []:
            if not _ROLE.match(role):
                raise ValueError(f"role {role!r} is not a valid name")
        return value


class SubscriptionKeys(_Strict):
    p256dh: str = Field(min_length=1, max_length=200)
    auth: str = Field(min_length=1, max_length=100)


class SubscriptionIn(_Strict):
    """``PushSubscription.toJSON()`` as a browser gives it."""

    endpoint: str = Field(min_length=1, max_length=2048)
    keys: SubscriptionKeys
    expirationTime: int | None = None


class EndpointIn(_Strict):
    endpoint: str = Field(min_length=1, max_length=2048)


class ReminderIn(_Strict):
    """``POST /v1/reminders``: arm (or re-arm) the reminder ``key``."""

    key: str = Field(min_length=1, max_length=180, pattern=r"^[A-Za-z0-9_.:@+\-]+$")
    due_at: AwareDatetime
    title: str = Field(min_length=1, max_length=10_000)
    body: str = Field(default="", max_length=100_000)
    link: str | None = Field(default=None, max_length=2048)
    data: JsonObject = Field(default_factory=dict)
    audience: Audience | None = None


# -- responses (the exact JSON the routes answer; documented in /openapi.json) --------------------


class ProfileOut(BaseModel):
    user: str
    email: str | None
    time_zone: str | None
    roles: list[str]
    locale: str | None = Field(None, description="The user's own locale (digest e-mails).")


class UserOut(ProfileOut):
    preferences: dict[str, Any] = Field(description="The user's overrides.")


class EffectiveOut(BaseModel):
    channels: dict[str, bool]
    types: dict[str, dict[str, bool]] = Field(
        description="Per type: in_app, push, email, critical."
    )
    digest: dict[str, Any]
    quiet_hours: dict[str, Any] | None
    time_zone: str
    locale: str = Field("en", description="The digest e-mail's locale in effect.")


class PreferencesOut(ProfileOut):
    preferences: dict[str, Any] = Field(description="The user's overrides.")
    tenant_defaults: dict[str, Any]
    effective: EffectiveOut


class PushKeyOut(BaseModel):
    public_key: str = Field(description="The VAPID public key (applicationServerKey).")


class SubscriptionOut(BaseModel):
    id: int
    push_service: str
    user_agent: str | None
    created_at: str
    last_success_at: str | None


class SubscriptionsOut(BaseModel):
    subscriptions: list[SubscriptionOut]


class RemovedOut(BaseModel):
    removed: int


class ReminderOut(BaseModel):
    key: str
    due_at: str
    state: str
    notification_id: int | None
    notification: dict[str, Any]
    error: str | None


class CancelledReminderOut(ReminderOut):
    cancelled: bool


class DeliveryOut(BaseModel):
    channel: str
    status: str
    user: str | None
    target: str | None
    reason: str | None
    detail: dict[str, Any] | None = Field(description="Channel-specific facts (JSON).")
    at: str


class DeliveriesOut(BaseModel):
    id: int
    summary: dict[str, dict[str, Any]]
    entries: list[DeliveryOut]


# -- the digest's strings per tenant (issue 10 item 5, PUT /v1/tenant/messages/{locale}) --------


class MessagesIn(_Strict):
    messages: dict[str, str] = Field(
        max_length=300,
        description="Catalogue key → the tenant's string (placeholders as in English, e.g. "
        "{count}, {tenant}); {} removes the locale's overrides.",
    )


class MessagesOut(BaseModel):
    locale: str
    messages: dict[str, str]


class CatalogueOut(BaseModel):
    overrides: dict[str, dict[str, str]] = Field(description="The tenant's, per locale.")
    catalogue: dict[str, dict[str, str]] = Field(description="The shipped strings per locale.")
