"""Notification preferences: per type and channel on/off, digest cadence, quiet hours, zone.

Channels are ``in_app``, ``push`` and ``email``. For a notification of type ``T`` on channel
``C`` and one user:

1. ``C`` is ``in_app`` and the tenant marked ``T`` critical → **on**, whatever was switched.
2. The master switch ``channels[C]`` (push and e-mail only): the user's, else the tenant's,
   else on. Off means off for every type.
3. The type switch ``types[T][C]``: the user's, else the tenant's, else on.

A channel is on when both 2 and 3 are. Digest, quiet hours and time zone are the user's own
value, else the tenant's, else daily at 18:00 local, no quiet hours, UTC. Quiet hours hold back
push only (in-app and the digest are not interruptions). Types are open-ended dotted names, so
any syntactically valid type may carry switches; an unknown *channel* is refused.
"""

from __future__ import annotations

import functools
import zoneinfo
from dataclasses import dataclass
from datetime import datetime, time
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    field_validator,
    model_validator,
)

from tidings.channels.catalogue import LOCALE_PATTERN, resolve
from tidings.domain.notifications import KNOWN_TYPES, TYPE_PATTERN

Channel = Literal["in_app", "push", "email"]
CHANNELS: tuple[Channel, ...] = ("in_app", "push", "email")
Cadence = Literal["off", "hourly", "daily"]
_HHMM = r"^([01]\d|2[0-3]):[0-5]\d$"

NOTHING_MUTED: frozenset[str] = frozenset()
"""Shared by every user who mutes nothing (an empty frozenset is not a singleton: 216 bytes)."""


@functools.cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def check_zone(name: str) -> str:
    """``name`` when it is an IANA time zone (``Europe/Berlin``, ``UTC``), else ``ValueError``."""
    if name not in _zones():
        raise ValueError(f"{name!r} is not an IANA time zone (for example 'Europe/Berlin')")
    return name


def check_type(name: str) -> str:
    if not TYPE_PATTERN.match(name):
        raise ValueError(
            f"{name!r} is not a notification type: lower-case letters, digits, '_' and '.', "
            "starting with a letter, at most 64 characters"
        )
    return name


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TypeSwitches(_Strict):
    """On/off per channel for one type; ``null`` or absent inherits."""

    in_app: StrictBool | None = None
    push: StrictBool | None = None
    email: StrictBool | None = None


class ChannelSwitches(_Strict):
    """Master switches. ``in_app`` has none: switch types off one by one instead."""

    push: StrictBool | None = None
    email: StrictBool | None = None


class Digest(_Strict):
    cadence: Cadence = "daily"
    hour: StrictInt = Field(18, ge=0, le=23, description="Local hour of the daily digest.")


class QuietHours(_Strict):
    """A local time window without push; ``start`` > ``end`` wraps midnight."""

    enabled: StrictBool = True
    start: str = Field("22:00", pattern=_HHMM)
    end: str = Field("07:00", pattern=_HHMM)

    @model_validator(mode="after")
    def _window(self) -> QuietHours:
        if self.enabled and self.start == self.end:
            raise ValueError("quiet hours need start != end")
        return self

    def contains(self, local: time) -> bool:
        if not self.enabled:
            return False
        start, end = _minutes(self.start), _minutes(self.end)
        now = local.hour * 60 + local.minute
        return start <= now < end if start < end else (now >= start or now < end)


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


class UserPreferences(_Strict):
    """A user's overrides. Anything absent inherits the tenant's default."""

    channels: ChannelSwitches = Field(default_factory=ChannelSwitches)
    types: dict[str, TypeSwitches] = Field(default_factory=dict, max_length=200)
    digest: Digest | None = None
    quiet_hours: QuietHours | None = None
    locale: str | None = Field(
        None,
        pattern=LOCALE_PATTERN,
        description="BCP 47 language tag for e-mail digests (en, de, es; others fall back).",
    )

    @field_validator("types")
    @classmethod
    def _type_names(cls, value: dict[str, TypeSwitches]) -> dict[str, TypeSwitches]:
        for name in value:
            check_type(name)
        return value


class TenantPreferences(UserPreferences):
    """Tenant defaults, the types that are always shown in-app, and tenant settings."""

    time_zone: str = "UTC"
    critical_types: tuple[str, ...] = Field(default=(), max_length=100)
    reminder_lead_hours: float = Field(24.0, gt=0, le=24 * 60)

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return check_zone(value)

    @field_validator("critical_types")
    @classmethod
    def _critical(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(check_type(name) for name in value))


@dataclass(frozen=True, slots=True)
class Effective:
    """One user's preferences resolved against the tenant's."""

    user: UserPreferences
    tenant: TenantPreferences
    user_zone: str | None = None

    def critical(self, type_: str) -> bool:
        return type_ in self.tenant.critical_types

    def allows(self, type_: str, channel: Channel) -> bool:
        if channel == "in_app":
            return self.critical(type_) or self._type_switch(type_, channel)
        return self.master(channel) and self._type_switch(type_, channel)

    def master(self, channel: Literal["push", "email"]) -> bool:
        mine = getattr(self.user.channels, channel)
        if mine is not None:
            return bool(mine)
        theirs = getattr(self.tenant.channels, channel)
        return True if theirs is None else bool(theirs)

    def _type_switch(self, type_: str, channel: Channel) -> bool:
        for layer in (self.user.types, self.tenant.types):
            switches = layer.get(type_)
            if switches is not None and getattr(switches, channel) is not None:
                return bool(getattr(switches, channel))
        return True

    def muted_types(self) -> frozenset[str]:
        """Types this user does not get in-app (critical types never are)."""
        named = set(self.user.types) | set(self.tenant.types)
        muted = [t for t in named if not self.allows(t, "in_app")]
        return frozenset(muted) if muted else NOTHING_MUTED

    @property
    def digest(self) -> Digest:
        return self.user.digest or self.tenant.digest or Digest()

    @property
    def locale(self) -> str:
        """The supported locale of the user's e-mails: theirs, else the tenant's, else en."""
        return resolve(self.user.locale or self.tenant.locale)

    @property
    def quiet_hours(self) -> QuietHours | None:
        chosen = self.user.quiet_hours or self.tenant.quiet_hours
        return chosen if chosen is not None and chosen.enabled else None

    @property
    def zone_name(self) -> str:
        return self.user_zone or self.tenant.time_zone

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.zone_name)

    def quiet_at(self, moment: datetime) -> bool:
        window = self.quiet_hours
        return window is not None and window.contains(moment.astimezone(self.zone).time())

    def public(self) -> dict[str, Any]:
        """The resolved view a settings page shows: every known or mentioned type."""
        names = sorted(set(KNOWN_TYPES) | set(self.user.types) | set(self.tenant.types))
        return {
            "channels": {"push": self.master("push"), "email": self.master("email")},
            "types": {
                name: {
                    **{channel: self.allows(name, channel) for channel in CHANNELS},
                    "critical": self.critical(name),
                }
                for name in names
            },
            "digest": self.digest.model_dump(),
            "quiet_hours": self.quiet_hours.model_dump() if self.quiet_hours else None,
            "time_zone": self.zone_name,
            "locale": self.locale,
        }
