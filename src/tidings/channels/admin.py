"""The channels' API for host backends (API key): tenant defaults, users' contact data,
reminders and the delivery log. The tenant is always the key's."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Path

from tidings.api.contract import raises
from tidings.api.deps import KeyDep, require_scope
from tidings.channels._sql import KEEP
from tidings.channels.api import ChannelsDep
from tidings.channels.catalogue import CATALOGUES
from tidings.channels.preferences import TenantPreferences
from tidings.channels.schemas import (
    CancelledReminderOut,
    CatalogueOut,
    DeliveriesOut,
    MessagesIn,
    MessagesOut,
    ProfileOut,
    ReminderIn,
    ReminderOut,
    UserIn,
    UserOut,
)
from tidings.domain.locales import LOCALE_PATTERN
from tidings.errors import Code

router = APIRouter(tags=["channels-admin"])

OFF = raises(Code.CHANNELS_OFF, Code.STORE_UNAVAILABLE)
MISSING = raises(Code.CHANNELS_OFF, Code.STORE_UNAVAILABLE, Code.REMINDER_NOT_FOUND)

UserPath = Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.@:+\-]+$")
KeyPath = Path(min_length=1, max_length=180, pattern=r"^[A-Za-z0-9_.:@+\-]+$")


@router.get("/v1/tenant/preferences", response_model=dict[str, Any], openapi_extra=OFF)
async def get_tenant_preferences(key: KeyDep, channels: ChannelsDep) -> dict[str, Any]:
    require_scope(key, "admin")
    prefs = await channels.tenant_prefs(key.tenant)
    return prefs.model_dump(mode="json", exclude_none=True)


@router.put("/v1/tenant/preferences", response_model=dict[str, Any], openapi_extra=OFF)
async def put_tenant_preferences(
    body: TenantPreferences, key: KeyDep, channels: ChannelsDep
) -> dict[str, Any]:
    """Replace the tenant's defaults, critical types and reminder lead (hours)."""
    require_scope(key, "admin")
    await channels.set_tenant_prefs(key.tenant, body)
    return body.model_dump(mode="json", exclude_none=True)


LocalePath = Path(min_length=2, max_length=64, pattern=LOCALE_PATTERN)


@router.get("/v1/tenant/messages", response_model=CatalogueOut, openapi_extra=OFF)
async def get_messages(key: KeyDep, channels: ChannelsDep) -> dict[str, Any]:
    """The digest e-mail's strings: the shipped catalogue and the tenant's overrides."""
    require_scope(key, "admin")
    return {"overrides": await channels.messages(key.tenant), "catalogue": CATALOGUES}


@router.put("/v1/tenant/messages/{locale}", response_model=MessagesOut, openapi_extra=OFF)
async def put_messages(
    body: MessagesIn, key: KeyDep, channels: ChannelsDep, locale: str = LocalePath
) -> dict[str, Any]:
    """Replace the tenant's strings of the digest e-mail for ``locale`` (any BCP 47 tag: a
    language the catalogue lacks falls back to English key by key); ``{}`` removes them."""
    require_scope(key, "admin")
    tag = await channels.set_messages(key.tenant, locale, body.messages)
    return {"locale": tag, "messages": body.messages}


@router.get(
    "/v1/users/{user}",
    response_model=UserOut,
    openapi_extra=raises(Code.CHANNELS_OFF, Code.STORE_UNAVAILABLE, Code.USER_NOT_FOUND),
)
async def get_user(user: str = UserPath, *, key: KeyDep, channels: ChannelsDep) -> dict[str, Any]:
    require_scope(key, "admin")
    found = await channels.user(key.tenant, user)
    return {
        **found.public(),
        "locale": found.prefs.locale,
        "preferences": found.prefs.model_dump(mode="json", exclude_none=True),
    }


@router.put("/v1/users/{user}", response_model=ProfileOut, openapi_extra=OFF)
async def put_user(
    body: UserIn, user: str = UserPath, *, key: KeyDep, channels: ChannelsDep
) -> dict[str, Any]:
    """Set a user's e-mail, time zone, roles and locale (those sent; ``null`` clears e-mail,
    zone or locale). The locale is the user's ``locale`` preference, the rest of it unchanged."""
    require_scope(key, "admin")
    sent = body.model_fields_set
    saved = await channels.save_user(
        key.tenant,
        user,
        email=body.email if "email" in sent else KEEP,
        time_zone=body.time_zone if "time_zone" in sent else KEEP,
        roles=body.roles if "roles" in sent and body.roles is not None else KEEP,
        locale=body.locale if "locale" in sent else KEEP,
    )
    return {**saved.public(), "locale": saved.prefs.locale}


@router.post(
    "/v1/reminders",
    status_code=201,
    response_model=ReminderOut,
    openapi_extra=raises(
        Code.CHANNELS_OFF,
        Code.STORE_UNAVAILABLE,
        Code.RATE_LIMITED,
        Code.TOO_MANY_TARGETS,
        Code.TOO_MANY_REMINDERS,
        Code.TENANT_NOT_FOUND,
    ),
)
async def schedule_reminder(body: ReminderIn, key: KeyDep, channels: ChannelsDep) -> dict[str, Any]:
    """Arm (or re-arm) a reminder: one ``reminder`` notification at ``due_at``, exactly once.

    Charged to the key's publish rate limit like the publish it stands for (429 beyond), and
    refused with 409 ``too_many_reminders`` when the tenant has ``TIDINGS_MAX_PENDING_REMINDERS``
    pending already (nothing stored)."""
    require_scope(key, "publish")
    armed = await channels.schedule_reminder(key, body)
    return armed.public()


@router.get("/v1/reminders/{reminder_key}", response_model=ReminderOut, openapi_extra=MISSING)
async def get_reminder(
    reminder_key: str = KeyPath, *, key: KeyDep, channels: ChannelsDep
) -> dict[str, Any]:
    require_scope(key, "publish")
    found = await channels.reminder(key.tenant, reminder_key)
    return found.public()


@router.delete(
    "/v1/reminders/{reminder_key}", response_model=CancelledReminderOut, openapi_extra=MISSING
)
async def cancel_reminder(
    reminder_key: str = KeyPath, *, key: KeyDep, channels: ChannelsDep
) -> dict[str, Any]:
    """Cancel a pending reminder. 404 when there is no such key; a sent one stays sent."""
    require_scope(key, "publish")
    found, cancelled = await channels.cancel_reminder(key.tenant, reminder_key)
    return {**found.public(), "cancelled": cancelled}


@router.get(
    "/v1/notifications/{notification_id}/deliveries",
    response_model=DeliveriesOut,
    openapi_extra=raises(Code.CHANNELS_OFF, Code.STORE_UNAVAILABLE, Code.NOTIFICATION_NOT_FOUND),
)
async def deliveries(
    notification_id: int = Path(ge=1, le=2**62), *, key: KeyDep, channels: ChannelsDep
) -> dict[str, Any]:
    """Per channel and recipient: queued, sent, failed (reason), skipped (reason)."""
    require_scope(key, "admin")
    return await channels.deliveries(key.tenant, notification_id)
