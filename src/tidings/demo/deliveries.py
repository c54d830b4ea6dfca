"""A notification's detail page in the demo, in the owner's words (its title, what kind of news
it is, when in the business's time zone, who was told), with what happened to it outside the
app behind a "Where it was sent" disclosure: the channels' delivery log
(``deliverylog.for_notification``), summed up per channel in words ("pushed to 2 devices · in
digest at 18:00 UTC · push skipped (quiet hours)") and listed entry by entry.

The log is append-only: the state of one delivery is its latest entry per (channel, user,
target) — :func:`deliverylog.summarize` counts those, :func:`describe` names them. The in-app
channel is not logged (the feed and read receipts are its record).

Tenant scoping as everywhere in the demo: the tenant is the signed-in user's, and a
notification the user may not see (another audience) reads as not found.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from starlette.responses import Response

from tidings.api.deps import ServiceDep
from tidings.channels import deliverylog
from tidings.demo import queries
from tidings.demo.pages import UserDep
from tidings.demo.templating import DemoRoute, render
from tidings.errors import Code, NotFound
from tidings.store import notifications as nq

router = APIRouter(prefix="/demo", route_class=DemoRoute, include_in_schema=False)

NotificationId = Annotated[int, Path(ge=1, le=2**62)]

REASONS = {
    "preference": "switched off",
    "quiet_hours": "quiet hours",
    "live_stream": "was online",
    "already_read": "already read",
    "stale": "too old",
    "retrying": "retrying",
    "gone": "device gone",
    "gave_up": "gave up",
    "refused": "refused",
    "queue_full": "queue full",
}


def _n(count: int, one: str, many: str | None = None) -> str:
    return f"{count} {one if count == 1 else (many or one + 's')}"


def _reasons(entries: Sequence[dict[str, Any]]) -> str:
    counts = Counter(REASONS.get(e["reason"] or "", e["reason"] or "no reason") for e in entries)
    return ", ".join(name if n == 1 else f"{name}: {n}" for name, n in counts.items())


def _digest(when: object) -> str:
    text = str(when or "")
    if text.startswith("daily at "):
        return f"in digest at {text.removeprefix('daily at ')}"
    if text.startswith("hourly"):
        return "in the hourly digest"
    return "in a digest" if not text else f"in digest ({text})"


def latest(entries: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The current state of each delivery: its latest entry per (channel, user, target)."""
    found: dict[tuple[Any, Any, Any], dict[str, Any]] = {}
    for item in entries:
        found[(item["channel"], item["user"], item["target"])] = item
    return list(found.values())


def describe(entries: Sequence[dict[str, Any]]) -> list[str]:
    """Each channel's deliveries in a few words, push first; ``[]`` when nothing was logged."""
    summary = deliverylog.summarize(list(entries))
    now = latest(entries)
    push = [e for e in now if e["channel"] == "push"]
    email = [e for e in now if e["channel"] == "email"]
    parts: list[str] = []
    if summary["push"]["sent"]:
        parts.append(f"pushed to {_n(summary['push']['sent'], 'device')}")
    if summary["push"]["queued"]:
        parts.append(f"push queued for {_n(summary['push']['queued'], 'device')}")
    for status, words in (("failed", "push failed"), ("skipped", "push skipped")):
        mine = [e for e in push if e["status"] == status]
        if mine:
            parts.append(f"{words} ({_reasons(mine)})")
    if summary["email"]["sent"]:
        parts.append(f"e-mailed in {_n(summary['email']['sent'], 'digest')}")
    queued = Counter(
        _digest((e["detail"] or {}).get("digest")) for e in email if e["status"] == "queued"
    )
    for words, count in queued.items():
        parts.append(words if count == 1 else f"{words} for {count} people")
    for status, words in (("failed", "e-mail failed"), ("skipped", "not e-mailed")):
        mine = [e for e in email if e["status"] == status]
        if mine:
            parts.append(f"{words} ({_reasons(mine)})")
    return parts


def _safe_link(link: str) -> bool:
    """A path on this site or an http(s) URL — never ``javascript:`` and the like."""
    if link.startswith("/"):
        return not link.startswith("//") and "\\" not in link
    return link.startswith(("https://", "http://"))


def open_label(link: str | None) -> str:
    """The words on the button that follows the notification's link."""
    if link and link.startswith("/demo/bookings/"):
        return "Open the booking"
    if link and link.startswith("/demo/customers"):
        return "Open customers"
    return "Open"


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@router.get("/notifications/{notification_id}")
async def notification(
    request: Request, notification_id: NotificationId, user: UserDep, service: ServiceDep
) -> Response:
    async with service.store.read() as conn:
        found = await nq.get(conn, user.tenant, notification_id)
        if found is None or not found.visible_to(user.user_id, frozenset({user.role})):
            raise NotFound(
                f"There is no notification #{notification_id}.", code=Code.NOTIFICATION_NOT_FOUND
            )
        entries = await deliverylog.for_notification(conn, user.tenant, notification_id)
        names = await queries.user_names(conn, user.tenant)
    link = found.link if found.link and _safe_link(found.link) else None
    context = {
        "nav": "notifications",
        "note": found,
        "link": link,
        "open_label": open_label(link),
        "names": names,
        "summary": describe(entries),
        "entries": [{**e, "at": _at(e["at"])} for e in entries],
    }
    return render(request, "notification.html", context, user=user)
