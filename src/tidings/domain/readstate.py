"""Read state of one user: a watermark plus receipts above it.

A notification ``seq`` is *read* for a user when a receipt marks it read, or — unless a receipt
marks it *unread* (mark unread, a snooze that ended) — when ``seq <= watermark`` or the user is
its actor; *archived* when a receipt marks it archived; *snoozed* while a receipt holds a
``snoozed_until`` (archived and snoozed notifications leave the inbox and the unread count).
Marking all read moves the watermark: one statement however many there are (plus clearing
the user's own *unread* marks below it, which their own actions made).
"""

from __future__ import annotations

from dataclasses import dataclass

UNREAD_DISPLAY_CAP = 99


@dataclass(frozen=True, slots=True)
class UnreadCount:
    """Unread count as inboxes show it: exact up to 99, then ``more``."""

    count: int
    more: bool

    @classmethod
    def from_probe(cls, counted: int) -> UnreadCount:
        """``counted`` comes from a query limited to ``UNREAD_DISPLAY_CAP + 1`` rows."""
        if counted > UNREAD_DISPLAY_CAP:
            return cls(UNREAD_DISPLAY_CAP, True)
        return cls(counted, False)

    def public(self) -> dict[str, int | bool]:
        return {"count": self.count, "more": self.more}
