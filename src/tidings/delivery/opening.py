"""A stream's opening (``ready``/``reset``, and the replay after ``Last-Event-ID``).

:func:`from_memory` answers the common connect from what the hub keeps
(:mod:`tidings.delivery.recent`): the tenant's latest seq and ring, and the user's view; a view
not in memory is read from the store in ONE read transaction of two statements built once
(:func:`tidings.store.snapshot.snapshot`). It gives up (``None``) when only the store can
answer: a resume beyond the ring, or ahead of what this instance has seen (committed
elsewhere, not yet announced here). :func:`from_store` is then the answer, as before the hub
kept anything: one read transaction for the latest seq, the snapshot and the oldest retained
seq; the replay follows from the store in pages.

Both run after the stream's subscriber is registered (invariant 3): every seq above the
opening's ``sent`` reaches the stream live, every seq up to it was replayed or is older than
the resume point.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from tidings.delivery import sse
from tidings.delivery.recent import SNAPSHOT_SIZE, View
from tidings.domain.readstate import UnreadCount
from tidings.store import notifications as nq
from tidings.store import snapshot as sq

if TYPE_CHECKING:
    from tidings.delivery.hub import Hub, Subscriber
    from tidings.store import Store


@dataclass(frozen=True, slots=True)
class Opening:
    data: bytes  # the ready/reset frame, and the frames replayed from memory
    sent: int  # the highest seq the opening accounts for
    replayed: int = 0  # notification frames in ``data``
    replay_to: int | None = None  # the store replays ``sent < seq <= replay_to`` next


def _probe(count: UnreadCount) -> int:
    return count.count + 1 if count.more else count.count


async def _view(hub: Hub, store: Store, sub: Subscriber) -> tuple[View, int]:
    """The user's view and the seq it is exact at: from memory, else from the store."""
    p = sub.principal
    state = hub.tenant_state(p.tenant)
    assert state is not None, "the subscriber is registered: its tenant is served"
    views = state.views
    if hub.views_trusted:
        view = views.get(p.user, p.roles, sub.muted)
        if view is not None and view.roll(state.ring, state.last, p.user):
            return view, state.last
    begun, upto = views.epoch, state.last
    async with store.read() as conn:
        count, items = await sq.snapshot(
            conn, p.tenant, p.user, p.roles, sub.muted, upto=upto, size=SNAPSHOT_SIZE
        )
    view = View.of(upto, p.roles, sub.muted, _probe(count), items)
    if hub.views_trusted:
        views.put(p.user, view, begun)
    return view, upto


async def from_memory(
    hub: Hub, store: Store, sub: Subscriber, resume: int | None, *, replay_limit: int
) -> Opening | None:
    """The opening without a ``latest_seq`` query or a replay query; ``None``: ask the store."""
    p = sub.principal
    state = hub.tenant_state(p.tenant)
    if state is None:
        return None
    last = state.last
    if resume is not None and resume > last:
        return None  # perhaps committed elsewhere and not yet announced here: the store knows
    if resume is None or resume == last or last - resume > replay_limit:
        view, at = await _view(hub, store, sub)
        event = "reset" if resume is not None and resume != last else "ready"
        return Opening(sse.frame(event, view.ready(at, p.user), at), at)
    if not state.ring.covers(resume):
        return None
    view, at = await _view(hub, store, sub)
    if not state.ring.covers(resume):  # the ring moved past it during the read (rare)
        return None
    frames = [
        e.frame
        for e in state.ring.since(resume)
        if e.seq <= at and e.visible(p.user, p.roles, sub.muted)
    ]
    return Opening(sse.frame("ready", view.ready(at, p.user)) + b"".join(frames), at, len(frames))


async def from_store(
    store: Store, sub: Subscriber, resume: int | None, *, replay_limit: int
) -> Opening:
    """The opening as the store alone gives it (one read transaction); the replay, if any,
    is left to the caller (``replay_to``)."""
    p = sub.principal
    async with store.read() as conn:
        latest = await nq.latest_seq(conn, p.tenant)
        count, items = await sq.snapshot(
            conn, p.tenant, p.user, p.roles, sub.muted, upto=latest, size=SNAPSHOT_SIZE
        )
        replayable = resume is not None and resume < latest <= resume + replay_limit
        oldest = await nq.oldest_seq(conn, p.tenant) if replayable else None
    data = View.of(latest, p.roles, sub.muted, _probe(count), items).ready(latest, p.user)
    if resume is None or resume == latest:
        return Opening(sse.frame("ready", data, latest), latest)
    assert resume is not None
    if not replayable or oldest is None or resume + 1 < oldest:
        return Opening(sse.frame("reset", data, latest), latest)
    return Opening(sse.frame("ready", data), resume, replay_to=latest)
