"""The preferences forms of the demo, free of web and database code: what the forms show, and the
channels' preference models built from what they send.

A form cannot say "inherit", so the user's form stores an override only where the user chose
something other than what the business's defaults give: a switch left as the business has it
keeps following the business (if the owner changes the default later, it changes for the user
too). Critical types are always on in-app; their in-app box is locked, and whatever override
the user had for it is kept as it is.

Checkboxes are named ``<type>.<channel>`` (``booking_cancelled.push``), ``<type>.critical``,
``channel.push`` / ``channel.email``; then ``digest.cadence``, ``digest.hour``,
``quiet.enabled``, ``quiet.start``, ``quiet.end``, ``time_zone`` and (business)
``reminder_lead_hours``. A box that is ticked sends ``on``; one that is not sends nothing.

Invalid input raises :class:`~tidings.demo.domain.FormErrors` naming every bad field; nothing is
built from it (and so nothing is stored).
"""

from __future__ import annotations

import functools
import math
import re
import zoneinfo
from collections.abc import Iterable, Mapping
from typing import Final, Literal, TypeVar

from pydantic import ValidationError

from tidings.channels.preferences import (
    CHANNELS,
    Channel,
    ChannelSwitches,
    Digest,
    QuietHours,
    TenantPreferences,
    TypeSwitches,
    UserPreferences,
    check_zone,
)
from tidings.demo.domain import FormErrors
from tidings.domain.notifications import KNOWN_TYPES

# The ten known types, plus the one only the demo publishes.
DEMO_TYPES: Final = (*KNOWN_TYPES, "booking_rescheduled")
LABELS: Final = {
    "booking_created": "New booking",
    "booking_confirmed": "Booking confirmed",
    "booking_cancelled": "Booking cancelled",
    "booking_completed": "Booking completed",
    "booking_no_show": "No-show",
    "booking_rescheduled": "Booking moved",
    "payment_received": "Payment received",
    "payment_failed": "Payment failed",
    "reminder": "Booking reminder",
    "customer_created": "New customer",
    "system": "System message",
}
CHANNEL_LABELS: Final = {"in_app": "In the app", "push": "Push", "email": "E-mail digest"}
CADENCES: Final = ("off", "hourly", "daily")
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d\Z")
ON = "on"


def label(type_: str) -> str:
    return LABELS.get(type_, type_.replace("_", " ").replace(".", " · ").capitalize())


def type_names(*layers: UserPreferences) -> list[str]:
    """The demo's types first, then any other type a layer has switches for or marks
    critical (set through the API), so that saving a form never drops it."""
    named = {name for layer in layers for name in layer.types}
    for layer in layers:
        if isinstance(layer, TenantPreferences):
            named.update(layer.critical_types)
    return [*DEMO_TYPES, *sorted(named - set(DEMO_TYPES))]


@functools.cache
def zone_choices() -> tuple[str, ...]:
    """IANA zones for a select: ``Area/City`` names and ``UTC`` (no legacy aliases)."""
    legacy = ("Etc/", "posix/", "right/", "SystemV/", "US/", "Canada/", "Mexico/", "Brazil/")
    names = {z for z in zoneinfo.available_timezones() if "/" in z and not z.startswith(legacy)}
    return ("UTC", *sorted(names))


def type_switch(type_: str, channel: Channel, *layers: UserPreferences) -> bool:
    """The first layer's switch for ``type_`` on ``channel`` that is set, else on."""
    for layer in layers:
        switches = layer.types.get(type_)
        if switches is not None and getattr(switches, channel) is not None:
            return bool(getattr(switches, channel))
    return True


def _master(channel: Literal["push", "email"], *layers: UserPreferences) -> bool:
    for layer in layers:
        value = getattr(layer.channels, channel)
        if value is not None:
            return bool(value)
    return True


# -- what the forms show -------------------------------------------------------------------------


def _common_values(
    types: Iterable[str],
    layers: tuple[UserPreferences, ...],
    digest: Digest,
    quiet: QuietHours | None,
) -> dict[str, str]:
    values: dict[str, str] = {}
    for name in types:
        for channel in CHANNELS:
            if type_switch(name, channel, *layers):
                values[f"{name}.{channel}"] = ON
    for master in ("push", "email"):
        if _master(master, *layers):
            values[f"channel.{master}"] = ON
    values["digest.cadence"] = digest.cadence
    values["digest.hour"] = str(digest.hour)
    shown = quiet or QuietHours()
    values["quiet.start"], values["quiet.end"] = shown.start, shown.end
    if quiet is not None:
        values["quiet.enabled"] = ON
    return values


def _enabled(quiet: QuietHours | None) -> QuietHours | None:
    return quiet if quiet is not None and quiet.enabled else None


def user_values(
    user: UserPreferences, tenant: TenantPreferences, zone: str | None, types: Iterable[str]
) -> dict[str, str]:
    """The user's form as their preferences resolve now (their overrides over the business's)."""
    digest = user.digest or tenant.digest or Digest()
    quiet = _enabled(user.quiet_hours or tenant.quiet_hours)
    values = _common_values(types, (user, tenant), digest, quiet)
    values["time_zone"] = zone or ""
    return values


def tenant_values(tenant: TenantPreferences, types: Iterable[str]) -> dict[str, str]:
    """The business's defaults form."""
    values = _common_values(
        types, (tenant,), tenant.digest or Digest(), _enabled(tenant.quiet_hours)
    )
    for name in tenant.critical_types:
        values[f"{name}.critical"] = ON
    values["time_zone"] = tenant.time_zone
    values["reminder_lead_hours"] = f"{tenant.reminder_lead_hours:g}"
    return values


# -- what the forms send -------------------------------------------------------------------------


def _digest(form: Mapping[str, str], errors: dict[str, str]) -> Digest:
    cadence = form.get("digest.cadence", "")
    if cadence not in CADENCES:
        errors["digest.cadence"] = "Choose how often the digest comes: off, hourly or daily."
        cadence = "daily"
    raw = form.get("digest.hour", "").strip()
    if not re.fullmatch(r"[0-9]{1,2}", raw) or not 0 <= int(raw) <= 23:
        errors["digest.hour"] = f"The digest hour is a whole hour from 0 to 23, not {raw[:20]!r}."
        raw = "18"
    return Digest(cadence=cadence, hour=int(raw))


def _quiet(form: Mapping[str, str], errors: dict[str, str]) -> QuietHours | None:
    if form.get("quiet.enabled") != ON:
        return None
    start, end = form.get("quiet.start", "").strip(), form.get("quiet.end", "").strip()
    for key, value in (("quiet.start", start), ("quiet.end", end)):
        if not _HHMM.match(value):
            errors[key] = f"Quiet hours are times like 22:00, not {value[:20]!r}."
    if "quiet.start" in errors or "quiet.end" in errors:
        return None
    if start == end:
        errors["quiet.end"] = "Quiet hours need an end different from their start."
        return None
    return QuietHours(start=start, end=end)


def _zone(form: Mapping[str, str], errors: dict[str, str], *, required: bool) -> str | None:
    raw = form.get("time_zone", "").strip()
    if not raw:
        if required:
            errors["time_zone"] = "Choose the business's time zone."
        return None
    try:
        return check_zone(raw)
    except ValueError:
        errors["time_zone"] = (
            f"{raw[:60]!r} is not a time zone we know; choose one from the list "
            "(for example Europe/Berlin or America/Chicago)."
        )
        return None


M = TypeVar("M", bound=UserPreferences)


def _build(model: type[M], fields: dict[str, object]) -> M:
    """The model, or FormErrors: the checks above should have caught everything already."""
    try:
        return model.model_validate(fields)
    except ValidationError as error:  # pragma: no cover - defence in depth
        first = error.errors()[0]
        raise FormErrors({"form": f"{first['loc']}: {first['msg']}"}) from error


def parse_user(
    form: Mapping[str, str],
    types: Iterable[str],
    current: UserPreferences,
    tenant: TenantPreferences,
) -> tuple[UserPreferences, str | None]:
    """The user's new overrides and zone (``None``: the business's), or FormErrors."""
    errors: dict[str, str] = {}
    switches: dict[str, TypeSwitches] = {}
    for name in types:
        chosen: dict[str, bool] = {}
        for channel in CHANNELS:
            if channel == "in_app" and name in tenant.critical_types:
                kept = current.types.get(name)
                if kept is not None and kept.in_app is not None:
                    chosen[channel] = kept.in_app
                continue
            on = form.get(f"{name}.{channel}") == ON
            if on != type_switch(name, channel, tenant):
                chosen[channel] = on
        if chosen:
            switches[name] = TypeSwitches.model_validate(chosen)
    masters: dict[str, bool] = {}
    for master in ("push", "email"):
        on = form.get(f"channel.{master}") == ON
        if on != _master(master, tenant):
            masters[master] = on
    digest = _digest(form, errors)
    quiet = _quiet(form, errors)
    zone = _zone(form, errors, required=False)
    if errors:
        raise FormErrors(errors)
    inherited_quiet = _enabled(tenant.quiet_hours)
    if quiet == inherited_quiet:
        quiet_override: QuietHours | None = None
    elif quiet is None:  # the business has quiet hours; this user wants none
        quiet_override = QuietHours(enabled=False)
    else:
        quiet_override = quiet
    fields: dict[str, object] = {
        "channels": ChannelSwitches.model_validate(masters),
        "types": switches,
        "digest": None if digest == (tenant.digest or Digest()) else digest,
        "quiet_hours": quiet_override,
    }
    return _build(UserPreferences, fields), zone


def _lead_hours(form: Mapping[str, str], errors: dict[str, str]) -> float:
    raw = form.get("reminder_lead_hours", "").strip()
    try:
        hours = float(raw)
    except ValueError:
        hours = math.nan
    if not math.isfinite(hours) or not 0 < hours <= 24 * 60:
        errors["reminder_lead_hours"] = (
            f"Reminders go out between a few minutes and 60 days (1440 hours) before a booking; "
            f"{raw[:20]!r} is not a number of hours in that range."
        )
        return 24.0
    return hours


def parse_tenant(form: Mapping[str, str], types: Iterable[str]) -> TenantPreferences:
    """The business's new defaults, critical types, zone and reminder lead, or FormErrors."""
    errors: dict[str, str] = {}
    names = list(types)
    switches: dict[str, TypeSwitches] = {}
    for name in names:
        off = {c: False for c in CHANNELS if form.get(f"{name}.{c}") != ON}
        if off:
            switches[name] = TypeSwitches.model_validate(off)
    masters = {m: False for m in ("push", "email") if form.get(f"channel.{m}") != ON}
    digest = _digest(form, errors)
    quiet = _quiet(form, errors)
    zone = _zone(form, errors, required=True)
    lead = _lead_hours(form, errors)
    if errors:
        raise FormErrors(errors)
    fields: dict[str, object] = {
        "channels": ChannelSwitches.model_validate(masters),
        "types": switches,
        "digest": None if digest == Digest() else digest,
        "quiet_hours": quiet,
        "time_zone": zone,
        "critical_types": tuple(n for n in names if form.get(f"{n}.critical") == ON),
        "reminder_lead_hours": lead,
    }
    return _build(TenantPreferences, fields)
