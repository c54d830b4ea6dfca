"""Who has a live stream right now, across instances.

Each instance knows its own streams (the hub). For the others it heartbeats a ``presence`` row
per (tenant, user) with a stream here *and a push subscription* (only the push planner asks
whether a user is live, and only about users with a device), with ``expires_at = now + 3 *
interval``; a row past its expiry does not count, so a crashed instance's users stop counting as
live after at most three intervals. A user is live when this hub has a stream for them or
another instance's row is current. An instance deletes its rows when it stops.

Cost per beat: one read of who has a device among the tenants served here (the subscriptions
table, every beat: a device added on any instance counts from the next beat), one write
transaction only when there are rows to refresh or take back. Users without a device cost no
row, so thousands of streams of users who never enabled push cost no write per beat.

The heartbeat also hands the connected principals, all at once, to ``on_seen``, which records
the e-mail and roles of the stream tokens (so a user who only ever opens the bell still gets
digests) in one batch.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import timedelta

from sqlalchemy import and_, delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.channels._sql import upsert
from tidings.channels.clock import Clock
from tidings.channels.tables import presence, push_subscriptions
from tidings.delivery.hub import Hub
from tidings.domain.principals import Principal
from tidings.store import Store

log = logging.getLogger(__name__)
_P = presence.c
_S = push_subscriptions.c
TENANTS_PER_READ = 500


class Presence:
    def __init__(
        self,
        store: Store,
        hub: Hub,
        clock: Clock,
        *,
        instance: str,
        interval: float,
        on_seen: Callable[[Sequence[Principal]], Awaitable[None]] | None = None,
    ) -> None:
        self.store = store
        self.hub = hub
        self.clock = clock
        self.instance = instance
        self.ttl = timedelta(seconds=interval * 3)
        self.on_seen = on_seen
        self._mine: set[tuple[str, str]] = set()
        self._next_cleanup = clock.now()

    async def beat(self) -> None:
        """Refresh this instance's rows; drop rows of users gone from here and expired rows."""
        principals = self.hub.present()
        current = await self._pushable({(p.tenant, p.user) for p in principals})
        now = self.clock.now()  # after the read: a row's expiry counts from its write
        gone = self._mine - current
        if current or gone or now >= self._next_cleanup:
            self._next_cleanup = now + self.ttl
            async with self.store.write() as conn:
                if current:
                    rows = [
                        {
                            "tenant_id": t,
                            "user_id": u,
                            "instance": self.instance,
                            "expires_at": now + self.ttl,
                        }
                        for t, u in sorted(current)
                    ]
                    stmt = upsert(conn)(presence).values(rows)
                    await conn.execute(
                        stmt.on_conflict_do_update(
                            index_elements=["tenant_id", "user_id", "instance"],
                            set_={"expires_at": stmt.excluded.expires_at},
                        )
                    )
                for tenant, user in sorted(gone):
                    await conn.execute(
                        delete(presence).where(
                            _P.tenant_id == tenant, _P.user_id == user, _P.instance == self.instance
                        )
                    )
                await conn.execute(delete(presence).where(_P.expires_at < now - self.ttl))
            self._mine = current
        if self.on_seen is not None and principals:
            await self.on_seen(principals)

    async def _pushable(self, present: set[tuple[str, str]]) -> set[tuple[str, str]]:
        """Those of ``present`` with a push subscription (one read; none when nobody is here)."""
        if not present:
            return set()
        tenants = sorted({t for t, _ in present})
        found: set[tuple[str, str]] = set()
        async with self.store.read() as conn:
            for start in range(0, len(tenants), TENANTS_PER_READ):
                rows = await conn.execute(
                    select(_S.tenant_id, _S.user_id)
                    .where(_S.tenant_id.in_(tenants[start : start + TENANTS_PER_READ]))
                    .distinct()
                )
                found.update((str(t), str(u)) for t, u in rows)
        return present & found

    async def leave(self) -> None:
        async with self.store.write() as conn:
            await conn.execute(delete(presence).where(_P.instance == self.instance))
        self._mine = set()

    async def live(self, conn: AsyncConnection, tenant: str, users: Iterable[str]) -> set[str]:
        """Those of ``users`` with a stream here or (per a current row) on another instance."""
        wanted = set(users)
        here = {u for u in wanted if self.hub.has_stream(tenant, u)}
        rest = sorted(wanted - here)
        if not rest:
            return here
        rows = await conn.execute(
            select(_P.user_id).where(
                and_(
                    _P.tenant_id == tenant,
                    _P.user_id.in_(rest),
                    _P.instance != self.instance,
                    _P.expires_at > self.clock.now(),
                )
            )
        )
        return here | {str(u) for (u,) in rows}
