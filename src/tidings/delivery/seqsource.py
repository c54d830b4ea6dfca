"""What the hub reads from the store: committed seqs and the notifications after one.

The hub (:mod:`tidings.delivery.hub`) reads the store only to open a tenant (its latest seq)
and to fill a gap or catch up (the latest seqs, then the rows after ``last``). This module
names that narrow need as :class:`SeqSource`, so the hub can be tested over an in-memory
source, and adapts the real :class:`~tidings.store.Store` to it (:class:`StoreSeqs`).

Invariants a source keeps (the hub's gap rule relies on them):
- ``latest`` is the highest *committed* seq of the tenant, and seq order is commit order.
- ``after`` returns ``after < seq <= upto``, oldest first, at most ``limit``, with no seq
  twice; a seq missing from the answer is no longer held (pruned), not "not yet committed".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from tidings.domain.notifications import Notification

if TYPE_CHECKING:
    from tidings.store import Store


@runtime_checkable
class SeqSource(Protocol):
    """The committed notifications of each tenant, by seq."""

    async def latest(self, tenant: str) -> int:
        """The highest committed seq of ``tenant`` (0 when none). Raises ``NotFound`` for a
        tenant that does not exist."""
        ...

    async def latest_many(self, tenants: Sequence[str]) -> dict[str, int]:
        """The highest committed seq of each existing tenant among ``tenants``."""
        ...

    async def after(self, tenant: str, after: int, *, upto: int, limit: int) -> list[Notification]:
        """Notifications with ``after < seq <= upto``, oldest first, at most ``limit``."""
        ...


class StoreSeqs:
    """:class:`SeqSource` over the store: one read transaction per call."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def latest(self, tenant: str) -> int:
        from tidings.store import notifications as q

        async with self.store.read() as conn:
            return await q.latest_seq(conn, tenant)

    async def latest_many(self, tenants: Sequence[str]) -> dict[str, int]:
        from tidings.store import notifications as q

        async with self.store.read() as conn:
            return await q.latest_seqs(conn, tenants)

    async def after(self, tenant: str, after: int, *, upto: int, limit: int) -> list[Notification]:
        from tidings.store import notifications as q

        async with self.store.read() as conn:
            return await q.fetch_after(conn, tenant, after, upto=upto, limit=limit)
