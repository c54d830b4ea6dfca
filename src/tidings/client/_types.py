"""The shapes of tidings' answers, as ``TypedDict`` (at run time they are plain dicts)."""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict

__all__ = [
    "Actor",
    "ApiKey",
    "Audience",
    "FeedItem",
    "FeedPage",
    "MarkResult",
    "Notification",
    "Tenant",
    "UnreadCount",
]


class Audience(TypedDict, total=False):
    """Who may see a notification: listed ``users`` and/or ``roles``; absent = whole tenant."""

    users: list[str]
    roles: list[str]


class Actor(TypedDict):
    """Who caused a notification: they get it already read (never counted, pushed, e-mailed)."""

    id: str
    name: str | None


class Notification(TypedDict):
    """A stored notification; ``id`` is its per-tenant seq (the SSE ``id:``)."""

    id: int
    type: str
    title: str
    body: str
    data: dict[str, Any]
    link: str | None
    audience: Audience | None
    created_at: str
    actor: Actor | None
    group: str | None  # collapse key (issue 10): one card per group


class FeedItem(Notification):
    """A notification as one user sees it in the feed (``snoozed_until``: ISO time or None)."""

    read: bool
    archived: bool
    snoozed_until: str | None
    group_count: NotRequired[int | None]  # feed(grouped=True): items of its group
    group_unread: NotRequired[int | None]  # feed(grouped=True): how many unread


class FeedPage(TypedDict):
    """Newest first; pass ``next_cursor`` back as ``cursor`` for the next page (``None``: end)."""

    items: list[FeedItem]
    next_cursor: str | None


class UnreadCount(TypedDict):
    """``count`` unread; ``more`` when the count was capped."""

    count: int
    more: bool


class MarkResult(TypedDict):
    """The user's unread count after a mark read / unread / archive / unarchive / snooze."""

    unread: UnreadCount


class Tenant(TypedDict):
    id: str
    name: str
    created_at: str


class ApiKey(TypedDict):
    """An API key; ``key`` (the secret) only in the answer that created it."""

    id: str
    tenant: str
    name: str
    scopes: list[str]
    created_at: str
    revoked_at: str | None
    key: NotRequired[str]
