"""The preferences pages of the demo, linked from the bell's panel (``preferences-url``):

- ``/demo/preferences`` — the signed-in user's own: per type and channel on/off, master
  switches for push and e-mail, digest cadence and hour, quiet hours, time zone.
- ``/demo/preferences/business`` — owners only: the business's defaults, its critical types
  (always shown in-app), its time zone and the reminder lead time.

The demo runs in-process, so it does what ``PUT /v1/preferences`` and
``PUT /v1/tenant/preferences`` do without HTTP (and without the admin API key the latter needs):
it calls the same :class:`~tidings.channels.service.ChannelsService` operations as the API
(``preferences_view``, ``save_preferences`` — which also records the user's e-mail and roles like
the API's ``channel_user`` dependency — ``tenant_prefs`` and ``set_tenant_prefs``, each applying
the change to open streams). Bad input is refused before anything is written (422, the form
again with what was sent and what is wrong).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from tidings.channels.api import get_service
from tidings.channels.preferences import CHANNELS, TenantPreferences, UserPreferences
from tidings.channels.service import ChannelsService
from tidings.demo import prefsform
from tidings.demo.domain import FormErrors
from tidings.demo.pages import UserDep, form_of
from tidings.demo.sessions import DemoUser
from tidings.demo.templating import DemoRoute, redirect, render
from tidings.domain.notifications import utcnow
from tidings.domain.principals import Principal
from tidings.errors import Code, Forbidden

router = APIRouter(prefix="/demo", route_class=DemoRoute, include_in_schema=False)


def principal_of(user: DemoUser) -> Principal:
    """The principal the demo's stream tokens carry for ``user``."""
    return Principal(
        user.tenant,
        user.user_id,
        frozenset({user.role}),
        utcnow() + timedelta(minutes=5),
        user.email,
    )


def _page(
    request: Request,
    user: DemoUser,
    scope: str,
    tenant: TenantPreferences,
    types: list[str],
    values: dict[str, str],
    *,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    """``scope``: ``mine`` or ``business``; ``values``: the form's fields as shown."""
    context: dict[str, Any] = {
        "nav": "preferences",
        "scope": scope,
        "is_owner": user.role == "owner",
        "types": [(name, prefsform.label(name)) for name in types],
        "channels": [(c, prefsform.CHANNEL_LABELS[c]) for c in CHANNELS],
        "critical": set(tenant.critical_types),
        "tenant_prefs": tenant,
        "values": values,
        "zones": prefsform.zone_choices(),
        "cadences": prefsform.CADENCES,
        "errors": errors or {},
        "error": f"Nothing was saved. {next(iter(errors.values()))}" if errors else None,
    }
    return render(request, "preferences.html", context, status=status, user=user)


# -- the user's own ----------------------------------------------------------------------------


async def _mine(
    channels: ChannelsService, user: DemoUser
) -> tuple[UserPreferences, str | None, TenantPreferences]:
    view = await channels.preferences_view(user.tenant, user.user_id)
    return (
        UserPreferences.model_validate(view["preferences"]),
        view["time_zone"],
        TenantPreferences.model_validate(view["tenant_defaults"]),
    )


@router.get("/preferences")
async def my_preferences(request: Request, user: UserDep) -> Response:
    channels = get_service(request)
    prefs, zone, tenant = await _mine(channels, user)
    types = prefsform.type_names(prefs, tenant)
    values = prefsform.user_values(prefs, tenant, zone, types)
    return _page(request, user, "mine", tenant, types, values)


@router.post("/preferences")
async def save_my_preferences(request: Request, user: UserDep) -> Response:
    channels = get_service(request)
    form = await form_of(request, user)
    current, _, tenant = await _mine(channels, user)
    types = prefsform.type_names(current, tenant)
    try:
        prefs, zone = prefsform.parse_user(form, types, current, tenant)
    except FormErrors as error:
        return _page(request, user, "mine", tenant, types, form, errors=error.fields, status=422)
    # The e-mail is noted after the preferences: a digest never sees it with the old cadence.
    await channels.save_preferences(
        user.tenant, user.user_id, prefs, time_zone=zone, then_note=principal_of(user)
    )
    return redirect("/demo/preferences", "Your notification preferences are saved.")


# -- the business's defaults (owners) ----------------------------------------------------------


def _owner(user: DemoUser) -> None:
    if user.role != "owner":
        raise Forbidden(
            "Only an owner can see and change the business's notification defaults.",
            code=Code.OWNER_ONLY,
        )


@router.get("/preferences/business")
async def business_preferences(request: Request, user: UserDep) -> Response:
    _owner(user)
    tenant = await get_service(request).tenant_prefs(user.tenant)
    types = prefsform.type_names(tenant)
    values = prefsform.tenant_values(tenant, types)
    return _page(request, user, "business", tenant, types, values)


@router.post("/preferences/business")
async def save_business_preferences(request: Request, user: UserDep) -> Response:
    _owner(user)
    channels = get_service(request)
    form = await form_of(request, user)
    current = await channels.tenant_prefs(user.tenant)
    types = prefsform.type_names(current)
    try:
        prefs = prefsform.parse_tenant(form, types)
    except FormErrors as error:
        return _page(
            request, user, "business", current, types, form, errors=error.fields, status=422
        )
    await channels.set_tenant_prefs(user.tenant, prefs)
    return redirect("/demo/preferences/business", "The business's notification defaults are saved.")
