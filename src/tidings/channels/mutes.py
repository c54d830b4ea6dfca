"""The muted types of each (tenant, user), kept in memory so a stream's connect reads no SQL.

:class:`Mutes` is a bounded LRU (``TIDINGS_MUTED_CACHE`` entries) of what
:meth:`Effective.muted_types` gives for a user's stored preferences over the tenant's
defaults. It is kept right by events, not by time:

- a user's preferences saved, or the tenant's defaults changed, or the user erased or the
  tenant deleted: :meth:`Tidings.preferences_changed` drops the entries at once on this
  instance and sends a ``p`` broker message (:class:`~tidings.delivery.broker.Envelope`,
  internal: never sent to a browser) that makes every other instance's hub call
  :meth:`forget` (``Hub.on_preferences``);
- while the broker is away such a message may be lost, so nothing is served from the cache
  nor kept in it (``Hub.views_trusted`` is false), and every entry filled before the broker
  last went away or came back is ignored (``Hub.broker_epoch`` moved on);
- a fill that read the store while anything was forgotten is not kept (``epoch``), so a read
  racing a change never leaves the old value behind.

Besides one entry per user it keeps, per tenant, a *plain* fact: the muted types of every
user without stored preferences (the tenant's defaults alone) and the users who have some
(at most :data:`PLAIN_MAX`). A user not among those gets the plain value with no entry and
no SQL, so a connect storm of new users reads the store once per tenant, not once per batch
(issue 8). The fact follows the same rules as an entry: any ``forget`` of the tenant (a user's
preferences saved, the defaults changed) drops it, on every instance by the ``p`` message;
it is not kept while the broker is away nor across a broker epoch, nor when filled by a read
that raced a forget.

``TTL`` is only an upper bound on an entry's life (a message lost without a broker
disconnect), not what keeps the cache right.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tidings.delivery.hub import Hub

TTL = 3600.0
PLAIN_MAX = 5_000  # users with stored preferences a tenant's plain fact may list
PLAIN_TENANTS = 1_024  # tenants with a plain fact, least recently used out first


@dataclass(frozen=True, slots=True)
class _Entry:
    muted: frozenset[str]
    broker_epoch: int
    born: float


@dataclass(frozen=True, slots=True)
class _Plain:
    muted: frozenset[str]  # of a user without stored preferences
    others: frozenset[str]  # the users with stored preferences
    broker_epoch: int
    born: float


class Mutes:
    """One instance's muted types per (tenant, user): at most ``size``, least recently used
    out first; ``size`` 0 keeps nothing."""

    __slots__ = ("_entries", "_hub", "_plain", "epoch", "size")

    def __init__(self, hub: Hub, size: int) -> None:
        self._hub = hub
        self.size = size
        self._entries: OrderedDict[tuple[str, str], _Entry] = OrderedDict()
        self._plain: OrderedDict[str, _Plain] = OrderedDict()
        self.epoch = 0  # counts forgets: a fill begun before one is not kept
        hub.on_preferences.append(self.forget)

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, tenant: str, user: str) -> frozenset[str] | None:
        """The cached muted types, or ``None``: read the store (then :meth:`put`)."""
        key = (tenant, user)
        entry = self._entries.get(key)
        if entry is None:
            return None
        if not self._usable(entry.broker_epoch, entry.born):
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry.muted

    def plain(self, tenant: str, user: str) -> frozenset[str] | None:
        """The muted types of ``user`` by the tenant's plain fact (the user has no stored
        preferences), or ``None``: no fact, or the user has preferences (then :meth:`get`)."""
        fact = self._plain.get(tenant)
        if fact is None:
            return None
        if not self._usable(fact.broker_epoch, fact.born):
            del self._plain[tenant]
            return None
        self._plain.move_to_end(tenant)
        return None if user in fact.others else fact.muted

    def _usable(self, broker_epoch: int, born: float) -> bool:
        """Whether something kept since ``born`` in ``broker_epoch`` may be used now."""
        hub = self._hub
        fresh = broker_epoch == hub.broker_epoch and time.monotonic() - born <= TTL
        return fresh and hub.views_trusted

    def _keeps(self, begun: tuple[int, int]) -> bool:
        """Whether a fill begun at ``begun`` may be kept (nothing forgotten, same broker)."""
        hub = self._hub
        return self.size > 0 and begun == (self.epoch, hub.broker_epoch) and hub.views_trusted

    def knows_plain(self, tenant: str) -> bool:
        """Whether the tenant's plain fact is kept (then a fill need not read it again)."""
        return tenant in self._plain

    def put_plain(
        self, tenant: str, muted: frozenset[str], others: frozenset[str], begun: tuple[int, int]
    ) -> None:
        """Keep the tenant's plain fact read by a fill begun at ``begun`` (as :meth:`put`)."""
        if not self._keeps(begun):
            return
        self._plain[tenant] = _Plain(muted, others, begun[1], time.monotonic())
        self._plain.move_to_end(tenant)
        while len(self._plain) > PLAIN_TENANTS:
            self._plain.popitem(last=False)

    def begin(self) -> tuple[int, int]:
        """Mark the start of a fill from the store (pass it to :meth:`put`)."""
        return self.epoch, self._hub.broker_epoch

    def put(self, tenant: str, user: str, muted: frozenset[str], begun: tuple[int, int]) -> None:
        """Keep ``muted``, read by a fill begun at ``begun``, unless anything was forgotten
        or the broker changed since, or the broker is away."""
        if not self._keeps(begun):
            return
        key = (tenant, user)
        self._entries[key] = _Entry(muted, begun[1], time.monotonic())
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def forget(self, tenant: str, user: str | None = None) -> None:
        """Drop one user's entry, or (``user`` None) every entry of the tenant."""
        self.epoch += 1
        self._plain.pop(tenant, None)  # whoever changed may now have preferences, or not
        if user is not None:
            self._entries.pop((tenant, user), None)
            return
        for key in [k for k in self._entries if k[0] == tenant]:
            del self._entries[key]

    def close(self) -> None:
        """Stop listening to the hub and drop everything."""
        if self.forget in self._hub.on_preferences:
            self._hub.on_preferences.remove(self.forget)
        self._entries.clear()
        self._plain.clear()
        self.epoch += 1


__all__ = ["PLAIN_MAX", "TTL", "Mutes"]
