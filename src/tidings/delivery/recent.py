"""What the hub remembers so that a stream opens without SQL in the common case.

Per tenant it serves, the hub keeps (in its ``_Tenant``):

- a :class:`Ring` of the latest notifications it offered (bounded, ``TIDINGS_STREAM_RING``),
  fed by the same fan-out that writes them to the streams, so it holds every seq in
  ``(base, last]`` with no hole: ``ready`` needs no ``latest_seq`` query and a resume from
  ``Last-Event-ID >= base`` is replayed from it;
- :class:`Views`: per user the unread count and the latest five inbox items as of a seq
  (``as_of``), with the roles and muted types they were computed for. A view is rolled
  forward on the next connect with the ring's entries above ``as_of`` (new notifications are
  unread and in the inbox, except the user's own: an entry whose actor is the user is read,
  as ``store.readstate.is_read`` says); it is dropped by the events that change it otherwise
  (every read-state event: ``read``, ``archived``, ``unread``, ``unarchived``, ``snoozed``,
  ``unsnoozed``), local or from another instance through the broker; all of a hub's views
  are dropped while the broker is away (a lost event) and at once when it is back; and a
  view lives at most ``TIDINGS_STREAM_VIEW_TTL`` seconds, the bound for what no event
  announces (retention pruning, a preference changed on another instance: the muted types
  the channels report are part of the view's key anyway).

Invariants:
- A view filled from the store is exact as of its ``as_of`` (the queries are bounded by it),
  and is kept only if no event for its user arrived while it was read (``Views.epoch``).
- A stream is registered before its snapshot is taken, so a ``read``/``archived`` event that
  a view has not seen yet still reaches the stream after its ``ready``: the client is made
  whole either way, as DESIGN.md's read sync promises.
"""

from __future__ import annotations

import itertools
import time
from collections import OrderedDict, deque
from collections.abc import Iterator
from typing import TYPE_CHECKING

import orjson

from tidings.domain.notifications import Audience
from tidings.domain.readstate import UNREAD_DISPLAY_CAP

if TYPE_CHECKING:
    from tidings.store.readstate import FeedItem

SNAPSHOT_SIZE = 5  # the latest inbox items a ``ready``/``reset`` carries
_PROBE_CAP = UNREAD_DISPLAY_CAP + 1  # counts are kept as the store's probe: at most 100


class Entry:
    """One notification as the ring keeps it: what filtering and the opening need."""

    __slots__ = ("_item", "actor", "audience", "frame", "payload", "seq", "type")

    def __init__(
        self,
        seq: int,
        type_: str,
        audience: Audience | None,
        payload: bytes,
        frame: bytes,
        actor: str | None = None,
    ) -> None:
        self.seq = seq
        self.type = type_
        self.audience = audience
        self.payload = payload  # the notification's one-line JSON
        self.frame = frame  # its SSE frame, as the fan-out wrote it
        self.actor = actor  # the id of the user who caused it: read for them
        self._item: bytes | None = None

    @property
    def item(self) -> bytes:
        """Its inbox item, unread: made once, shared by every view that shows it."""
        if self._item is None:
            self._item = item_json(self.payload, read=False)
        return self._item

    def item_for(self, user: str) -> bytes:
        """Its inbox item for ``user``: read if they caused it (made anew: rare), else shared."""
        return item_json(self.payload, read=True) if self.actor == user else self.item

    def visible(self, user: str, roles: frozenset[str], muted: frozenset[str]) -> bool:
        audience = self.audience
        return (audience is None or audience.admits(user, roles)) and self.type not in muted


class Ring:
    """The latest offered notifications of one tenant: every seq in ``(base, last]``."""

    __slots__ = ("base", "entries")

    def __init__(self, last: int, size: int) -> None:
        self.entries: deque[Entry] = deque(maxlen=size)
        self.base = last  # seqs above it are all here (none yet)

    def push(self, entry: Entry) -> None:
        entries = self.entries
        if entries.maxlen == 0:
            self.base = entry.seq
            return
        if entries.maxlen is not None and len(entries) == entries.maxlen:
            self.base = entries[0].seq
        entries.append(entry)

    def reset(self, last: int) -> None:
        """Forget everything (a hole the store could not fill): cover nothing below ``last``."""
        self.entries.clear()
        self.base = last

    def covers(self, after: int) -> bool:
        """Whether every seq above ``after`` (up to the last offered) is here."""
        return after >= self.base

    def since(self, after: int) -> Iterator[Entry]:
        """Entries with ``seq > after``, oldest first (``covers(after)`` must hold). The seqs
        are consecutive (a hole resets the ring), so the first one is found by arithmetic."""
        entries = self.entries
        if not entries:
            return iter(())
        return itertools.islice(entries, max(0, after + 1 - entries[0].seq), None)


class View:
    """A user's unread count and latest inbox items as of ``as_of`` (see the module doc)."""

    __slots__ = ("as_of", "born", "counted", "latest", "muted", "roles")

    def __init__(
        self,
        as_of: int,
        roles: frozenset[str],
        muted: frozenset[str],
        counted: int,
        latest: list[bytes],
    ) -> None:
        self.as_of = as_of
        self.roles = roles
        self.muted = muted
        self.counted = counted  # unread, counted up to UNREAD_DISPLAY_CAP + 1
        self.latest = latest  # newest first: one-line JSON inbox items, read flags included
        self.born = time.monotonic()

    @classmethod
    def of(
        cls,
        as_of: int,
        roles: frozenset[str],
        muted: frozenset[str],
        counted: int,
        items: list[FeedItem],
    ) -> View:
        latest = [item_json(i.notification.encode(), read=i.read) for i in items]
        return cls(as_of, roles, muted, counted, latest)

    def roll(self, ring: Ring, last: int, user: str) -> bool:
        """Bring the view to ``last`` with the ring's newer entries; False if it cannot."""
        if self.as_of >= last:
            return True
        if not ring.covers(self.as_of):
            return False
        fresh = [e for e in ring.since(self.as_of) if e.visible(user, self.roles, self.muted)]
        if fresh:
            unread = sum(1 for e in fresh if e.actor != user)  # their own arrive read
            self.counted = min(_PROBE_CAP, self.counted + unread)
            newest = [e.item_for(user) for e in fresh[-SNAPSHOT_SIZE:]]
            newest.reverse()
            self.latest = (newest + self.latest)[:SNAPSHOT_SIZE]
        self.as_of = last
        return True

    def ready(self, latest_seq: int, user: str) -> bytes:
        """The ``ready``/``reset`` data of ``user``'s stream: the same JSON as
        ``Tidings.snapshot`` gives (``user`` names whose stream it is)."""
        if self.counted > UNREAD_DISPLAY_CAP:
            unread = b'{"count":%d,"more":true}' % UNREAD_DISPLAY_CAP
        else:
            unread = b'{"count":%d,"more":false}' % self.counted
        return b'{"unread":%s,"latest_seq":%d,"latest":[%s],"user":%s}' % (
            unread,
            latest_seq,
            b",".join(self.latest),
            orjson.dumps(user),
        )


_READ = b',"read":true,"archived":false,"snoozed_until":null}'
_UNREAD = b',"read":false,"archived":false,"snoozed_until":null}'


def item_json(payload: bytes, *, read: bool) -> bytes:
    """An inbox item (``FeedItem.public()``: in the inbox, so neither archived nor snoozed)
    from a notification's one-line JSON."""
    return payload[:-1] + (_READ if read else _UNREAD)


class Views:
    """The views of one tenant's users: at most ``size`` (least recently used out first),
    each for at most ``ttl`` seconds. ``epoch`` counts invalidations, so a view read from
    the store while its user's read state changed is not kept (:meth:`put`)."""

    __slots__ = ("_touched", "_views", "epoch", "floor", "size", "ttl")

    def __init__(self, size: int, ttl: float) -> None:
        self.size = size
        self.ttl = ttl
        self._views: OrderedDict[str, View] = OrderedDict()
        self._touched: dict[str, int] = {}  # user -> epoch of their last invalidation
        self.epoch = 0
        self.floor = 0  # fills begun before it are not kept (``_touched`` was cleared)

    def __len__(self) -> int:
        return len(self._views)

    def get(self, user: str, roles: frozenset[str], muted: frozenset[str]) -> View | None:
        view = self._views.get(user)
        if view is None:
            return None
        if view.roles != roles or view.muted != muted or time.monotonic() - view.born > self.ttl:
            del self._views[user]
            return None
        self._views.move_to_end(user)
        return view

    def put(self, user: str, view: View, begun: int) -> None:
        """Keep ``view``, read from the store by a fill begun at epoch ``begun``, unless its
        user's read state changed since (or everything was forgotten since)."""
        if self.size <= 0 or begun < self.floor or self._touched.get(user, -1) > begun:
            return
        self._views[user] = view
        self._views.move_to_end(user)
        while len(self._views) > self.size:
            self._views.popitem(last=False)

    def forget(self, user: str) -> None:
        self._views.pop(user, None)
        self.epoch += 1
        self._touched[user] = self.epoch
        if len(self._touched) > max(self.size, 1024):
            self._touched.clear()
            self.floor = self.epoch

    def clear(self) -> None:
        self._views.clear()
        self._touched.clear()
        self.epoch += 1
        self.floor = self.epoch
