"""The user-facing channels API (stream token): preferences, push subscriptions, and the
one-click unsubscribe of digest e-mails (its signed token is the credential).

Every call with a stream token records the token's e-mail and roles for the channels (a user
who has an e-mail in their token gets digests without any other setup).
"""

from __future__ import annotations

import html
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import HTMLResponse

from tidings.api.contract import raises
from tidings.api.deps import UserDep
from tidings.channels import profiles, subscriptions, unsubscribe, webpush
from tidings.channels.preferences import ChannelSwitches, UserPreferences
from tidings.channels.runtime import Channels
from tidings.channels.schemas import (
    EndpointIn,
    PreferencesIn,
    PreferencesOut,
    PushKeyOut,
    RemovedOut,
    SubscriptionIn,
    SubscriptionOut,
    SubscriptionsOut,
)
from tidings.domain.inputs import MAX_SERIAL
from tidings.domain.principals import Principal
from tidings.errors import Code, NotFound, Unavailable
from tidings.store import tenants as tq

router = APIRouter(tags=["channels"])

OFF = raises(Code.CHANNELS_OFF, Code.STORE_UNAVAILABLE)
"""What every channels route may answer besides its own: channels not running, store down."""
GONE = raises(Code.CHANNELS_OFF, Code.STORE_UNAVAILABLE, Code.SUBSCRIPTION_NOT_FOUND)
UNSUBSCRIBE = raises(
    Code.CHANNELS_OFF, Code.STORE_UNAVAILABLE, Code.INVALID_UNSUBSCRIBE_TOKEN, Code.TENANT_NOT_FOUND
)


def get_channels(request: Request) -> Channels:
    channels: Channels | None = getattr(request.app.state, "channels", None)
    if channels is None:
        raise Unavailable("Channels are not running on this instance.", code=Code.CHANNELS_OFF)
    return channels


ChannelsDep = Annotated[Channels, Depends(get_channels)]


async def channel_user(principal: UserDep, channels: ChannelsDep) -> Principal:
    await channels.note_principal(principal)
    return principal


ChannelUserDep = Annotated[Principal, Depends(channel_user)]


async def preferences_view(channels: Channels, tenant: str, user: str) -> dict[str, Any]:
    async with channels.service.store.read() as conn:
        profile = await profiles.get(conn, tenant, user) or profiles.Profile(tenant, user)
        defaults = await profiles.tenant_prefs(conn, tenant)
    return {
        **profile.public(),
        "locale": profile.prefs.locale,
        "preferences": profile.prefs.model_dump(mode="json", exclude_none=True),
        "tenant_defaults": defaults.model_dump(mode="json", exclude_none=True),
        "effective": profile.effective(defaults).public(),
    }


@router.get("/v1/preferences", response_model=PreferencesOut, openapi_extra=OFF)
async def get_preferences(principal: ChannelUserDep, channels: ChannelsDep) -> dict[str, Any]:
    """The user's overrides, the tenant's defaults, and what is in effect per type."""
    return await preferences_view(channels, principal.tenant, principal.user)


@router.put("/v1/preferences", response_model=PreferencesOut, openapi_extra=OFF)
async def put_preferences(
    body: PreferencesIn, principal: ChannelUserDep, channels: ChannelsDep
) -> dict[str, Any]:
    """Replace the user's overrides (anything absent inherits the tenant's default)."""
    prefs = UserPreferences.model_validate(body.model_dump(exclude={"time_zone"}))
    async with channels.service.store.write() as conn:
        if "time_zone" in body.model_fields_set:
            await profiles.save(
                conn,
                principal.tenant,
                principal.user,
                now=channels.clock.now(),
                prefs=prefs,
                time_zone=body.time_zone,
            )
        else:
            await profiles.save(
                conn, principal.tenant, principal.user, now=channels.clock.now(), prefs=prefs
            )
    await channels.refresh_streams(principal.tenant, principal.user)
    return await preferences_view(channels, principal.tenant, principal.user)


# -- web push ------------------------------------------------------------------------------------


@router.get(
    "/v1/push/key",
    response_model=PushKeyOut,
    openapi_extra=raises(Code.CHANNELS_OFF, Code.PUSH_UNAVAILABLE),
)
async def push_key(channels: ChannelsDep) -> dict[str, Any]:
    """The VAPID public key, for ``pushManager.subscribe({applicationServerKey})``."""
    if channels.keys is None:
        raise Unavailable(
            "The push keys are not loaded yet; retry shortly.", code=Code.PUSH_UNAVAILABLE
        )
    return {"public_key": channels.keys.public}


@router.get("/v1/push/subscriptions", response_model=SubscriptionsOut, openapi_extra=OFF)
async def list_subscriptions(principal: ChannelUserDep, channels: ChannelsDep) -> dict[str, Any]:
    async with channels.service.store.read() as conn:
        found = await subscriptions.of_user(conn, principal.tenant, principal.user)
    return {"subscriptions": [s.public() for s in found]}


@router.post(
    "/v1/push/subscriptions",
    status_code=201,
    response_model=SubscriptionOut,
    responses={200: {"model": SubscriptionOut, "description": "Known already."}},
    openapi_extra=raises(
        Code.CHANNELS_OFF,
        Code.INVALID_SUBSCRIPTION,
        Code.TOO_MANY_SUBSCRIPTIONS,
        Code.STORE_UNAVAILABLE,
    ),
)
async def subscribe(
    body: SubscriptionIn,
    principal: ChannelUserDep,
    channels: ChannelsDep,
    request: Request,
    response: Response,
) -> dict[str, Any]:
    """Store this browser's subscription (201 new, 200 known). Checked before anything is
    stored: https endpoint on an accepted push service, valid P-256 key and auth secret."""
    webpush.check_subscription(body.endpoint, body.keys.p256dh, body.keys.auth, channels.rules)
    async with channels.service.store.write() as conn:
        saved, created = await subscriptions.save(
            conn,
            principal.tenant,
            principal.user,
            endpoint=body.endpoint,
            p256dh=body.keys.p256dh,
            auth=body.keys.auth,
            user_agent=request.headers.get("user-agent"),
            now=channels.clock.now(),
        )
    response.status_code = 201 if created else 200
    return saved.public()


@router.delete("/v1/push/subscriptions", response_model=RemovedOut, openapi_extra=GONE)
async def unsubscribe_endpoint(
    body: EndpointIn, principal: ChannelUserDep, channels: ChannelsDep
) -> dict[str, Any]:
    """Forget this browser's subscription (``{"endpoint": …}``), e.g. on sign-out."""
    async with channels.service.store.write() as conn:
        removed = await subscriptions.remove(
            conn, principal.tenant, principal.user, endpoint=body.endpoint
        )
    if not removed:
        raise NotFound("No such push subscription for this user.", code=Code.SUBSCRIPTION_NOT_FOUND)
    return {"removed": removed}


@router.delete(
    "/v1/push/subscriptions/{subscription_id}", response_model=RemovedOut, openapi_extra=GONE
)
async def unsubscribe_id(
    subscription_id: Annotated[int, Path(ge=1, le=MAX_SERIAL)],
    principal: ChannelUserDep,
    channels: ChannelsDep,
) -> dict[str, Any]:
    async with channels.service.store.write() as conn:
        removed = await subscriptions.remove(
            conn, principal.tenant, principal.user, subscription_id=subscription_id
        )
    if not removed:
        raise NotFound("No such push subscription for this user.", code=Code.SUBSCRIPTION_NOT_FOUND)
    return {"removed": removed}


# -- one-click unsubscribe (RFC 8058) -------------------------------------------------------------

TokenQuery = Annotated[str, Query(min_length=1, max_length=2000)]


def _page(title: str, message: str, form: str = "") -> HTMLResponse:
    return HTMLResponse(
        "<!doctype html><html><head><meta charset='utf-8'><title>"
        f"{html.escape(title)}</title></head><body style='font-family:system-ui;max-width:480px;"
        f"margin:40px auto'><h1>{html.escape(title)}</h1><p>{html.escape(message)}</p>{form}"
        "</body></html>"
    )


@router.get("/v1/unsubscribe", response_class=HTMLResponse, openapi_extra=UNSUBSCRIBE)
async def unsubscribe_page(token: TokenQuery, channels: ChannelsDep) -> HTMLResponse:
    """The link in the e-mail: asks to confirm (a GET changes nothing; link scanners follow
    links). Mail clients that support RFC 8058 POST directly."""
    tenant, user = unsubscribe.read_token(channels.service.secret, token)
    async with channels.service.store.read() as conn:
        name = (await tq.get_tenant(conn, tenant)).name
    action = html.escape(f"/v1/unsubscribe?token={token}", quote=True)
    form = (
        f"<form method='post' action='{action}'>"
        "<button type='submit' name='List-Unsubscribe' value='One-Click'>Unsubscribe</button>"
        "</form>"
    )
    return _page("Unsubscribe", f"Stop digest e-mails from {name} for {user}?", form)


@router.post("/v1/unsubscribe", response_class=HTMLResponse, openapi_extra=UNSUBSCRIBE)
async def unsubscribe_now(token: TokenQuery, channels: ChannelsDep) -> HTMLResponse:
    """One click: switch the user's e-mail channel off (``channels.email = false``)."""
    tenant, user = unsubscribe.read_token(channels.service.secret, token)
    async with channels.service.store.write() as conn:
        name = (await tq.get_tenant(conn, tenant)).name
        profile = await profiles.get(conn, tenant, user) or profiles.Profile(tenant, user)
        switches = ChannelSwitches(push=profile.prefs.channels.push, email=False)
        prefs = profile.prefs.model_copy(update={"channels": switches})
        await profiles.save(conn, tenant, user, now=channels.clock.now(), prefs=prefs)
    return _page("Unsubscribed", f"You will get no more digest e-mails from {name}.")
