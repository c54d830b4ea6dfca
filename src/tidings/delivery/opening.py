"""A stream's opening (``ready``/``reset``, and the replay after ``Last-Event-ID``).

:func:`from_memory` answers the common connect from what the hub keeps
(:mod:`tidings.delivery.recent`): the tenant's latest seq and ring, and the user's view; a view
not in memory is read from the store in ONE read transaction of two statements built once
(:func:`tidings.store.snapshot.snapshot`). It gives up (``None``) when only the store can
answer: a resume beyond the ring (once its older part was read, ``Hub.warm``), or ahead of
what this instance has seen while the store has more (committed elsewhere, not yet announced
here). A resume ahead of everything committed (the store's latest seqs read once per batch) is
``reset`` here. :func:`from_store` is then the answer, as before the hub
kept anything: one read transaction for the latest seq, the snapshot and the oldest retained
seq; the replay follows from the store in pages.

:func:`open_many` is :func:`from_memory` for a batch (the streams the edge opener,
``tidings.api.opener``, took in one loop iteration): the views the hub does not keep are read
in ONE read transaction for the whole batch, and a tenant without any notification (``last``
0) needs none at all (every view of it is empty, exactly).

Both run after the stream's subscriber is registered (invariant 3): every seq above the
opening's ``sent`` reaches the stream live, every seq up to it was replayed or is older than
the resume point.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tidings.delivery import sse
from tidings.delivery.recent import SNAPSHOT_SIZE, View
from tidings.domain.readstate import UnreadCount
from tidings.store import notifications as nq
from tidings.store import snapshot as sq

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from tidings.delivery.hub import Hub, Subscriber, _Tenant
    from tidings.store import Store
    from tidings.store.readstate import FeedItem


@dataclass(frozen=True, slots=True)
class Opening:
    data: bytes  # the ready/reset frame, and the frames replayed from memory
    sent: int  # the highest seq the opening accounts for
    replayed: int = 0  # notification frames in ``data``
    replay_to: int | None = None  # the store replays ``sent < seq <= replay_to`` next


def _probe(count: UnreadCount) -> int:
    return count.count + 1 if count.more else count.count


@dataclass(slots=True)
class _Want:
    """One stream of a batch: its opening needs its user's view, exact at ``at`` (the hub's
    ``last`` when the batch was classified, so ``resume <= at`` unless ``ahead``)."""

    sub: Subscriber
    resume: int | None
    state: _Tenant
    at: int = 0  # the seq the view is exact at
    view: View | None = None
    begun: int = 0  # ``views.epoch`` when its store read began
    ahead: bool = False  # resumes past everything committed: ``reset``


def _from_memory(hub: Hub, sub: Subscriber, state: _Tenant) -> tuple[View, int] | None:
    """The user's view from what the hub keeps, rolled to ``last``; ``None``: read the store."""
    p = sub.principal
    if state.last == 0:  # the tenant has no notification at all: every view is empty (exact)
        view = View.of(0, p.roles, sub.muted, 0, [])
        if hub.views_trusted:
            state.views.put(p.user, view, state.views.epoch)
        return view, 0
    if hub.views_trusted:
        kept = state.views.get(p.user, p.roles, sub.muted)
        if kept is not None and kept.roll(state.ring, state.last, p.user):
            return kept, state.last
    return None


async def _read_views(hub: Hub, store: Store, misses: list[_Want]) -> None:
    """The views of ``misses`` from the store: ONE read transaction for the whole batch, two
    statements (built once) per user, each bounded by the seq its stream opens at; each
    notification the batch's views share is built (and encoded) once. On SQLite
    in a file the transaction runs on the store's reader thread, in ONE hand-off for the whole
    batch (``Store.run_read``): a reconnect storm after the ring moved past the users' views
    reads every view this way (docs/performance.md, session 10)."""
    for want in misses:
        want.at, want.begun = want.state.last, want.state.views.epoch
    # What each read asks, taken here on the loop: the reader thread touches no live object,
    # and each view is kept with the muted types it was read with.
    asks = [
        (w.sub.principal.tenant, w.sub.principal.user, w.sub.principal.roles, w.sub.muted, w.at)
        for w in misses
    ]
    known: sq.Known = {}  # the batch's users mostly share their latest few: each built once
    if store.writes_in_thread:  # SQLite in a file: the whole batch in one hand-off

        def read_all(conn: Connection) -> list[tuple[UnreadCount, list[FeedItem]]]:
            return [sq.snapshot_sync(conn, ask, size=SNAPSHOT_SIZE, known=known) for ask in asks]

        snapshots = await store.run_read(read_all)
    else:
        async with store.read() as conn:
            if store.dialect == "postgresql":  # the whole batch in one statement
                snapshots = await sq.snapshot_many(conn, asks, size=SNAPSHOT_SIZE, known=known)
            else:
                snapshots = [
                    await sq.snapshot(
                        conn, tenant, user, roles, muted, upto=at, size=SNAPSHOT_SIZE, known=known
                    )
                    for tenant, user, roles, muted, at in asks
                ]
    for want, ask, (count, items) in zip(misses, asks, snapshots, strict=True):
        _, _, roles, muted, at = ask
        want.view = View.of(at, roles, muted, _probe(count), items)
    if hub.views_trusted:
        for want in misses:
            assert want.view is not None
            want.state.views.put(want.sub.principal.user, want.view, want.begun)


async def from_memory(
    hub: Hub, store: Store, sub: Subscriber, resume: int | None, *, replay_limit: int
) -> Opening | None:
    """The opening without a ``latest_seq`` query or a replay query; ``None``: ask the store."""
    return (await open_many(hub, store, [(sub, resume)], replay_limit=replay_limit))[0]


async def open_many(
    hub: Hub,
    store: Store,
    streams: Sequence[tuple[Subscriber, int | None]],
    *,
    replay_limit: int,
) -> list[Opening | None]:
    """:func:`from_memory` for a batch of streams (registered, their ``muted`` set): the views
    the hub does not keep are read in ONE read transaction for the whole batch
    (:func:`_read_views`). ``None`` for a stream only the store can open (:func:`from_store`)."""
    wants: list[_Want | None] = []
    misses: list[_Want] = []
    ahead: list[tuple[int, Subscriber, int, _Tenant]] = []
    for sub, resume in streams:
        state = hub.tenant_state(sub.principal.tenant)
        if state is None:
            wants.append(None)
            continue
        if resume is not None and resume > state.last:  # decided below, for all at once
            ahead.append((len(wants), sub, resume, state))
            wants.append(None)
            continue
        replay = resume is not None and resume != state.last and state.last - resume <= replay_limit
        if replay and not state.ring.covers(resume) and not state.warmed:  # type: ignore[arg-type]
            await hub.warm(sub.principal.tenant, state)  # the ring's older part, once
        if replay and not state.ring.covers(resume):  # type: ignore[arg-type]
            wants.append(None)
            continue
        want = _Want(sub, resume, state)
        found = _from_memory(hub, sub, state)
        if found is None:
            misses.append(want)
        else:
            want.view, want.at = found
        wants.append(want)
    if ahead:
        # Ahead of what this hub has offered: committed elsewhere and not yet announced here
        # (the store opens it, as it has the seqs), or ahead of everything committed (a store
        # restored from a backup, an id of another deployment): ``reset``, opened here like any
        # other. One read of the store's latest seqs for the whole batch tells them apart.
        committed = await hub.committed(sorted({sub.principal.tenant for _, sub, _, _ in ahead}))
        for index, sub, resume, state in ahead:
            if committed.get(sub.principal.tenant, resume) > state.last or resume <= state.last:
                continue  # the store's to open (None)
            want = _Want(sub, resume, state, ahead=True)
            found = _from_memory(hub, sub, state)
            if found is None:
                misses.append(want)
            else:
                want.view, want.at = found
            wants[index] = want
    if misses:
        await _read_views(hub, store, misses)
    return [None if want is None else _opening(want, replay_limit) for want in wants]


def _opening(want: _Want, replay_limit: int) -> Opening | None:
    sub, resume, state, view, at = want.sub, want.resume, want.state, want.view, want.at
    assert view is not None
    p = sub.principal
    if resume is None or resume == at or want.ahead or at - resume > replay_limit:
        event = "reset" if resume is not None and resume != at else "ready"
        return Opening(sse.frame(event, view.ready(at, p.user), at), at)
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
