"""Notifications as tidings stores and sends them.

Invariants:
- ``seq`` is the notification's per-tenant sequence number, assigned by the store inside the
  committing transaction; it is also the SSE ``id`` and the public ``id``.
- ``encode()`` gives one line of JSON (no raw newlines can appear: JSON escapes them), so a
  payload can never forge SSE framing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import orjson
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

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

_ID = re.compile(r"^[A-Za-z0-9_.@:+\-]{1,128}\Z")
"""A user or role id (an audience's, an actor's)."""

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
            if not _ID.match(item):
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
        if not _ID.match(value):
            raise ValueError(f"{value!r} is not a valid id (1-128 of A-Z a-z 0-9 _ . @ : + -)")
        return value

    def public(self) -> dict[str, str | None]:
        return {"id": self.id, "name": self.name}


class NewNotification(StrictModel):
    """What a publisher sends. Size limits that depend on settings are checked by the service."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str = Field(min_length=1, max_length=64)
    # Absent (or ""): rendered from the tenant's template for ``type`` (issue 10 item 5).
    title: str = Field(default="", max_length=10_000)
    body: str = Field(default="", max_length=100_000)
    data: JsonObject = Field(default_factory=dict)
    link: str | None = Field(default=None, max_length=2048)
    audience: Audience | None = None
    actor: Actor | None = None
    group: str | None = Field(default=None, min_length=1, max_length=128)

    # Set by the service's template hook (never by a request): the text in the type's other
    # locales, and the fingerprint of the request as sent (a retry matches whatever the
    # templates rendered).
    _l10n: dict[str, dict[str, str]] | None = PrivateAttr(default=None)
    _sent: bytes | None = PrivateAttr(default=None)

    @property
    def l10n(self) -> dict[str, dict[str, str]] | None:
        # ``self._l10n`` goes through ``BaseModel.__getattr__``; read once per stored item.
        private = self.__pydantic_private__
        return None if private is None else private.get("_l10n")

    def rendered(self, title: str, body: str, l10n: dict[str, dict[str, str]]) -> NewNotification:
        """This request with the text its templates made (``l10n``: every locale's)."""
        out = self.model_copy(update={"title": title, "body": body})
        out._l10n = l10n or None
        out._sent = self.fingerprint()
        return out

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
        if value and not value.strip():
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
        if self._sent is not None:
            return self._sent
        dumped = self.model_dump(mode="json")
        if dumped.get("group") is None:
            del dumped["group"]
        return orjson.dumps(dumped, option=orjson.OPT_SORT_KEYS)


def _private_defaults(model: type[BaseModel]) -> Callable[[BaseModel, Any], None]:
    """A ``model_post_init`` doing what pydantic's ``init_private_attributes`` does for
    ``model``'s private attributes — each set to its default in a fresh dict, unless already
    set — without its per-attribute default resolution (a third of validating an item of a
    batch). Only for plain, immutable defaults (no factories): they are shared."""
    defaults: dict[str, Any] = {}
    for name, attribute in model.__private_attributes__.items():
        if attribute.default_factory is not None or not isinstance(
            attribute.default, str | bytes | int | type(None)
        ):
            raise TypeError(f"{model.__name__}.{name}: not a plain immutable default")
        defaults[name] = attribute.default

    def post_init(self: BaseModel, context: Any, /) -> None:
        if getattr(self, "__pydantic_private__", None) is None:
            object.__setattr__(self, "__pydantic_private__", dict(defaults))

    return post_init


NewNotification.model_post_init = _private_defaults(NewNotification)  # type: ignore[method-assign]

_CONTROL_OR_SPACE = re.compile(r"[\x00-\x20]")


def is_safe_link(value: str) -> bool:
    """True for ``http(s)://…`` and for same-site paths (``/x``, not ``//host``)."""
    if _CONTROL_OR_SPACE.search(value):
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
    l10n: dict[str, dict[str, str]] | None = None  # {locale: {title, body}} from templates
    _encoded: list[bytes] = field(default_factory=list, compare=False, repr=False)

    def visible_to(self, user: str, roles: frozenset[str]) -> bool:
        return self.audience is None or self.audience.admits(user, roles)

    def by(self, user: str) -> bool:
        """Whether ``user`` caused this notification (its actor): theirs is read already."""
        return self.actor is not None and self.actor.id == user

    def public(self) -> dict[str, Any]:
        out = self._public()
        if self.l10n:  # only then: a plain notification's bytes are what they always were
            out["l10n"] = self.l10n
        return out

    def _public(self) -> dict[str, Any]:
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
    """``moment`` as ISO 8601 in UTC with microseconds and ``Z``. The last moment formatted is
    remembered: every notification of a commit group shares one ``created_at`` object."""
    global _last_formatted
    last = _last_formatted
    if moment is last[0]:
        return last[1]
    given = moment
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    text = moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    _last_formatted = (given, text)  # one tuple, replaced whole
    return text


_last_formatted: tuple[datetime | None, str] = (None, "")


def utcnow() -> datetime:
    return datetime.now(UTC)
