"""The event catalogue and what an endpoint may be: its types and its URL.

Event types are a closed set (:data:`EVENT_TYPES`); an endpoint subscribes to some of them. An
endpoint's URL is ``http(s)://host[:port]/path`` without credentials or fragment, at most
:data:`MAX_URL` characters; a host that is an IP address (or ``localhost``) must be one the
delivery may reach (public, or in ``TIDINGS_WEBHOOK_ALLOW_NETWORKS``). Names are resolved again
at each connection (:class:`tidings.channels.egress.GuardedBackend`), which is the decisive check.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from urllib.parse import urlsplit

from tidings.channels.egress import AddressPolicy
from tidings.errors import Code, ValidationFailed

EVENT_TYPES: tuple[str, ...] = (
    "notification.created",
    "notification.read",
    "notification.unread",
    "notification.archived",
    "notification.unarchived",
    "notification.snoozed",
    "push.sent",
    "push.failed",
    "push.gave_up",
    "digest.sent",
    "reminder.fired",
)
KNOWN = frozenset(EVENT_TYPES)
MAX_URL = 2048


def check_types(types: Iterable[str]) -> list[str]:
    """The subscribed types, in catalogue order; 422 ``unknown_event_type`` for any other."""
    wanted = set(types)
    unknown = sorted(wanted - KNOWN)
    if unknown:
        raise ValidationFailed(
            f"Unknown event types: {', '.join(unknown)}.",
            code=Code.UNKNOWN_EVENT_TYPE,
            extra={"unknown": unknown, "known": list(EVENT_TYPES)},
        )
    if not wanted:
        raise ValidationFailed("Subscribe to at least one event type.")
    return [t for t in EVENT_TYPES if t in wanted]


def _bad(reason: str) -> ValidationFailed:
    return ValidationFailed(f"Invalid webhook URL: {reason}.", code=Code.INVALID_WEBHOOK_URL)


def check_url(url: str, policy: AddressPolicy) -> str:
    if len(url) > MAX_URL:
        raise _bad(f"longer than {MAX_URL} characters")
    if any(ord(c) <= 32 or ord(c) == 127 for c in url):
        raise _bad("spaces or control characters")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise _bad("the scheme must be http or https")
    if parts.username is not None or parts.password is not None:
        raise _bad("credentials in the URL")
    if parts.fragment:
        raise _bad("a fragment (#…)")
    host = parts.hostname
    if not host:
        raise _bad("no host")
    try:
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        raise _bad("the port is not valid") from None
    if host == "localhost" or host.endswith(".localhost"):
        host = "127.0.0.1"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return url  # a name: checked when connecting
    if not policy.permits(address):
        raise _bad("not a public address (see TIDINGS_WEBHOOK_ALLOW_NETWORKS)")
    return url
