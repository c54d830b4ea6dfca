"""The channels' API for host backends (API key): tenant defaults, users' contact data,
reminders and the delivery log. The tenant is always the key's."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Path

from tidings.api.contract import raises
from tidings.api.deps import KeyDep, require_scope
from tidings.channels import deliverylog, profiles, reminders
from tidings.channels._sql import KEEP, Keep
from tidings.channels.api import ChannelsDep
from tidings.channels.preferences import TenantPreferences, UserPreferences
from tidings.channels.schemas import (
    CancelledReminderOut,
    DeliveriesOut,
    ProfileOut,
    ReminderIn,
    ReminderOut,
    UserIn,
    UserOut,
)
from tidings.errors import Code, NotFound
from tidings.store import notifications as nq

router = APIRouter(tags=["channels-admin"])

OFF = raises(Code.CHANNELS_OFF, Code.STORE_UNAVAILABLE)
MISSING = raises(Code.CHANNELS_OFF, Code.STORE_UNAVAILABLE, Code.REMINDER_NOT_FOUND)

UserPath = Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.@:+\-]+$")
KeyPath = Path(min_length=1, max_length=180, pattern=r"^[A-Za-z0-9_.:@+\-]+$")


@router.get("/v1/tenant/preferences", response_model=dict[str, Any], openapi_extra=OFF)
async def get_tenant_preferences(key: KeyDep, channels: ChannelsDep) -> dict[str, Any]:
    require_scope(key, "admin")
    async with channels.service.store.read() as conn:
        prefs = await profiles.tenant_prefs(conn, key.tenant)
    return prefs.model_dump(mode="json", exclude_none=True)


@router.put("/v1/tenant/preferences", response_model=dict[str, Any], openapi_extra=OFF)
async def put_tenant_preferences(
    body: TenantPreferences, key: KeyDep, channels: ChannelsDep
) -> dict[str, Any]:
    """Replace the tenant's defaults, critical types and reminder lead (hours)."""
    require_scope(key, "admin")
    async with channels.service.store.write() as conn:
        await profiles.set_tenant_prefs(conn, key.tenant, body, now=channels.clock.now())
    await channels.refresh_streams(key.tenant)
    return body.model_dump(mode="json", exclude_none=True)


@router.get(
    "/v1/users/{user}",
    response_model=UserOut,
    openapi_extra=raises(Code.CHANNELS_OFF, Code.STORE_UNAVAILABLE, Code.USER_NOT_FOUND),
)
async def get_user(user: str = UserPath, *, key: KeyDep, channels: ChannelsDep) -> dict[str, Any]:
    require_scope(key, "admin")
    async with channels.service.store.read() as conn:
        found = await profiles.get(conn, key.tenant, user)
    if found is None:
        raise NotFound(f"No channel data for user {user!r}.", code=Code.USER_NOT_FOUND)
    prefs = found.prefs.model_dump(mode="json", exclude_none=True)
    return {**found.public(), "locale": found.prefs.locale, "preferences": prefs}


@router.put("/v1/users/{user}", response_model=ProfileOut, openapi_extra=OFF)
async def put_user(
    body: UserIn, user: str = UserPath, *, key: KeyDep, channels: ChannelsDep
) -> dict[str, Any]:
    """Set a user's e-mail, time zone, roles and locale (those sent; ``null`` clears e-mail,
    zone or locale). The locale is the user's ``locale`` preference, the rest of it unchanged."""
    require_scope(key, "admin")
    sent = body.model_fields_set
    async with channels.service.store.write() as conn:
        prefs: UserPreferences | Keep = KEEP
        if "locale" in sent:
            stored = await profiles.get(conn, key.tenant, user)
            mine = stored.prefs if stored is not None else UserPreferences()
            prefs = mine.model_copy(update={"locale": body.locale})
        saved = await profiles.save(
            conn,
            key.tenant,
            user,
            now=channels.clock.now(),
            email=body.email if "email" in sent else KEEP,
            time_zone=body.time_zone if "time_zone" in sent else KEEP,
            roles=body.roles if "roles" in sent and body.roles is not None else KEEP,
            prefs=prefs,
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
    new = reminders.notification(
        title=body.title, body=body.body, link=body.link, data=body.data, audience=body.audience
    )
    channels.service.check_limits(new)
    await channels.service.rate_limit(key, items=[new])
    async with channels.service.store.write() as conn:
        armed = await reminders.schedule(
            conn,
            key.tenant,
            body.key,
            due_at=body.due_at,
            now=channels.clock.now(),
            title=body.title,
            body=body.body,
            link=body.link,
            data=body.data,
            audience=body.audience,
            max_pending=channels.settings.max_pending_reminders,
        )
    return armed.public()


@router.get("/v1/reminders/{reminder_key}", response_model=ReminderOut, openapi_extra=MISSING)
async def get_reminder(
    reminder_key: str = KeyPath, *, key: KeyDep, channels: ChannelsDep
) -> dict[str, Any]:
    require_scope(key, "publish")
    async with channels.service.store.read() as conn:
        found = await reminders.get(conn, key.tenant, reminder_key)
    if found is None:
        raise NotFound(f"No reminder {reminder_key!r}.", code=Code.REMINDER_NOT_FOUND)
    return found.public()


@router.delete(
    "/v1/reminders/{reminder_key}", response_model=CancelledReminderOut, openapi_extra=MISSING
)
async def cancel_reminder(
    reminder_key: str = KeyPath, *, key: KeyDep, channels: ChannelsDep
) -> dict[str, Any]:
    """Cancel a pending reminder. 404 when there is no such key; a sent one stays sent."""
    require_scope(key, "publish")
    async with channels.service.store.write() as conn:
        cancelled = await reminders.cancel(conn, key.tenant, reminder_key, now=channels.clock.now())
        found = await reminders.get(conn, key.tenant, reminder_key)
    if found is None:
        raise NotFound(f"No reminder {reminder_key!r}.", code=Code.REMINDER_NOT_FOUND)
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
    async with channels.service.store.read() as conn:
        if await nq.get(conn, key.tenant, notification_id) is None:
            raise NotFound(
                f"No notification with id {notification_id}.", code=Code.NOTIFICATION_NOT_FOUND
            )
        entries = await deliverylog.for_notification(conn, key.tenant, notification_id)
    return {"id": notification_id, "summary": deliverylog.summarize(entries), "entries": entries}
