"""Notifications as tidings stores and sends them.

Invariants:
- ``seq`` is the notification's per-tenant sequence number, assigned by the store inside the
  committing transaction; it is also the SSE ``id`` and the public ``id``.
- ``encode()`` gives one line of JSON (no raw newlines can appear: JSON escapes them), so a
  payload can never forge SSE framing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import orjson
from pydantic import ConfigDict, Field, field_validator, model_validator

from tidings.domain.inputs import JsonObject, StrictModel

TYPE_PATTERN = re.compile(r"^[a-z][a-z0-9_.]{0,63}\Z")

KNOWN_TYPES = (
    "booking_created",
    "booking_confirmed",
    "booking_cancelled",
    "booking_completed",
    "booking_no_show",
    "payment_received",
    "payment_failed",
    "reminder",
    "customer_created",
    "system",
)

_ID_PATTERN = r"^[A-Za-z0-9_.@:+\-]{1,128}\Z"

GROUP_PATTERN = re.compile(r"^[a-z][a-z0-9_.:\-]{0,127}\Z")
"""A collapse key (issue 10): like a type, plus ':' and '-' for an entity's id (``booking:42``)."""


class Audience(StrictModel):
    """Who may see a notification: listed users, members of listed roles, or both (union).

    ``None`` in place of an audience means the whole tenant.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    users: tuple[str, ...] = Field(default=(), max_length=1000)
    roles: tuple[str, ...] = Field(default=(), max_length=100)

    @field_validator("users", "roles")
    @classmethod
    def _ids(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            if not re.match(_ID_PATTERN, item):
                raise ValueError(f"{item!r} is not a valid id (1-128 of A-Z a-z 0-9 _ . @ : + -)")
        return tuple(dict.fromkeys(value))

    @model_validator(mode="after")
    def _not_empty(self) -> Audience:
        if not self.users and not self.roles:
            raise ValueError("an audience names at least one user or role; omit it for everyone")
        return self

    def admits(self, user: str, roles: frozenset[str]) -> bool:
        return user in self.users or not roles.isdisjoint(self.roles)

    def public(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        if self.users:
            out["users"] = list(self.users)
        if self.roles:
            out["roles"] = list(self.roles)
        return out


class Actor(StrictModel):
    """Who caused a notification (issue 10): that user gets it already read — in their feed,
    never counted unread, never toasted, pushed or e-mailed. ``name`` is for display."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=128)
    name: str | None = Field(default=None, max_length=200)

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not re.match(_ID_PATTERN, value):
            raise ValueError(f"{value!r} is not a valid id (1-128 of A-Z a-z 0-9 _ . @ : + -)")
        return value

    def public(self) -> dict[str, str | None]:
        return {"id": self.id, "name": self.name}


class NewNotification(StrictModel):
    """What a publisher sends. Size limits that depend on settings are checked by the service."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str = Field(min_length=1, max_length=64)
    title: str = Field(min_length=1, max_length=10_000)
    body: str = Field(default="", max_length=100_000)
    data: JsonObject = Field(default_factory=dict)
    link: str | None = Field(default=None, max_length=2048)
    audience: Audience | None = None
    actor: Actor | None = None
    group: str | None = Field(default=None, min_length=1, max_length=128)

    @field_validator("group")
    @classmethod
    def _group(cls, value: str | None) -> str | None:
        if value is not None and not GROUP_PATTERN.match(value):
            raise ValueError(
                "group is 1-128 of lower-case letters, digits, '_', '.', ':' and '-', "
                "starting with a letter"
            )
        return value

    @field_validator("type")
    @classmethod
    def _type(cls, value: str) -> str:
        if not TYPE_PATTERN.match(value):
            raise ValueError(
                "type is lower-case letters, digits, '_' and '.', starting with a letter"
            )
        return value

    @field_validator("title")
    @classmethod
    def _title(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("title must not be blank")
        return value

    @field_validator("link")
    @classmethod
    def _link(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not is_safe_link(value):
            raise ValueError("link must be an http(s) URL or a path starting with '/'")
        return value

    def fingerprint(self) -> bytes:
        """Canonical bytes of the request, to tell an honest retry from a reused key. Without a
        group they are what they were before groups existed (a retry across the upgrade)."""
        dumped = self.model_dump(mode="json")
        if dumped.get("group") is None:
            del dumped["group"]
        return orjson.dumps(dumped, option=orjson.OPT_SORT_KEYS)


def is_safe_link(value: str) -> bool:
    """True for ``http(s)://…`` and for same-site paths (``/x``, not ``//host``)."""
    if any(ord(ch) < 0x21 for ch in value):
        return False
    if value.startswith("/"):
        return not value.startswith("//") and not value.startswith("/\\")
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


@dataclass(frozen=True, slots=True)
class Notification:
    """A stored notification. ``seq`` is its per-tenant position and public id."""

    tenant: str
    seq: int
    type: str
    title: str
    body: str
    data: dict[str, Any]
    link: str | None
    audience: Audience | None
    created_at: datetime
    actor: Actor | None = None
    group: str | None = None  # collapse key (issue 10): one card per group in the bell and feed
    _encoded: list[bytes] = field(default_factory=list, compare=False, repr=False)

    def visible_to(self, user: str, roles: frozenset[str]) -> bool:
        return self.audience is None or self.audience.admits(user, roles)

    def by(self, user: str) -> bool:
        """Whether ``user`` caused this notification (its actor): theirs is read already."""
        return self.actor is not None and self.actor.id == user

    def public(self) -> dict[str, Any]:
        return {
            "id": self.seq,
            "type": self.type,
            "title": self.title,
            "body": self.body,
            "data": self.data,
            "link": self.link,
            "audience": self.audience.public() if self.audience else None,
            "created_at": format_time(self.created_at),
            "actor": self.actor.public() if self.actor else None,
            "group": self.group,
        }

    def encode(self) -> bytes:
        """One-line JSON of :meth:`public`, computed once per notification."""
        if not self._encoded:
            self._encoded.append(orjson.dumps(self.public()))
        return self._encoded[0]


def format_time(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def utcnow() -> datetime:
    return datetime.now(UTC)
