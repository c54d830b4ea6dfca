"""The channels of one instance: their state, their background workers, and the hooks they put
into the service.

Started by :class:`tidings.channels.ChannelsExtension` once the service is open; :meth:`start`
returns the hooks the service calls (the planner's wake-up after each publish, the in-app
mutes); stopped, in reverse, before the store closes. Workers (each one task, each surviving
its own errors):

=================  =====================================================================
planner            fan-out of committed notifications to push/e-mail (woken by publishes)
push worker        drains the push outbox, retries with backoff
reminders          publishes due reminders, ends due snoozes (``TIDINGS_REMINDER_INTERVAL``)
digests            sends due digests (every ``TIDINGS_DIGEST_INTERVAL``)
presence           heartbeats who has a live stream here (every ``TIDINGS_PRESENCE_INTERVAL``)
housekeeping       prunes the delivery log, old digest leases and finished reminders (hourly)
=================  =====================================================================
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from contextlib import suppress
from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from tidings.channels import deliverylog, profiles, reminders, snoozes
from tidings.channels.clock import Clock, SystemClock
from tidings.channels.deps import WorkerDeps
from tidings.channels.digest import DigestRunner
from tidings.channels.mutes import Mutes
from tidings.channels.planner import Planner
from tidings.channels.presence import Presence
from tidings.channels.pushqueue import PushWorker
from tidings.channels.service import ChannelsService
from tidings.channels.tables import digest_runs, scheduled_reminders
from tidings.channels.webpush import HostRules, PushSender, VapidKeys, load_or_create_keys
from tidings.domain.principals import Principal
from tidings.errors import Code, NotFound
from tidings.hooks import Hooks
from tidings.service import Tidings

log = logging.getLogger(__name__)
CACHE_MAX = 10_000


class Channels:
    def __init__(self, service: Tidings, clock: Clock | None = None) -> None:
        self.service = service
        self.settings = service.settings
        self.clock: Clock = clock or SystemClock()
        self.instance = service.instance_id  # one id: broker origin, leases, presence
        self.rules = HostRules(self.settings.push_endpoint_hosts)
        self.keys: VapidKeys | None = None
        self.sender: PushSender | None = None
        self.presence = Presence(
            service.store,
            service.hub,
            self.clock,
            instance=self.instance,
            interval=self.settings.presence_interval,
            on_seen=self.note_principals,
        )
        self.deps = WorkerDeps(
            store=service.store,
            clock=self.clock,
            settings=self.settings,
            instance=self.instance,
            secret=lambda: service.secret,
            sender=lambda: self.sender,
            live=self.presence.live,
            wake_push=lambda: self.push_worker.wake(),
            wake_snoozed=service.wake_snoozed,
        )
        """What the workers get (not this object: no runtime <-> worker import cycle)."""
        self.planner = Planner(self.deps)
        self.planner.unreachable.watch(service.hub)  # told when a user gains a channel
        self.push_worker = PushWorker(self.deps)
        self.digests = DigestRunner(self.deps)
        self.loop: asyncio.AbstractEventLoop | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._keys_ready = asyncio.Event()
        # The principal whose claims were recorded last (shared with its stream: no copy).
        self._seen: OrderedDict[tuple[str, str], Principal] = OrderedDict()
        self.mutes = Mutes(service.hub, self.settings.muted_cache)
        self.api = ChannelsService(
            service, self.clock, self.rules, streams=self, keys=lambda: self.keys
        )
        """The operations routers and the demo call (they open no transactions themselves)."""

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> Hooks:
        self.loop = asyncio.get_running_loop()
        hooks = Hooks(after_publish=[self.planner.on_publish], muted_types=self.muted_types)
        try:
            await self.load_keys()
        except Exception as error:  # the store may be down at start: keep trying, don't die
            log.warning("VAPID keys not loaded yet (%r); retrying in the background", error)
            self._spawn("vapid", self._until_keys())
        if not self.settings.channels_workers:
            return hooks
        s = self.settings
        self._spawn("planner", self.planner.run_forever())
        self._spawn("push", self._after_keys(self.push_worker.run_forever))
        self._spawn("digests", self.digests.run_forever())
        self._spawn("reminders", self._every(s.reminder_interval, self.reminders_tick))
        self._spawn("presence", self._every(s.presence_interval, self.presence.beat))
        self._spawn("housekeeping", self._every(3600.0, self.housekeeping))
        log.info("channels started instance=%s", self.instance)
        return hooks

    async def load_keys(self) -> None:
        self.keys = await load_or_create_keys(self.service.store, self.clock.now())
        self.sender = PushSender(self.keys, self.settings)
        self._keys_ready.set()

    async def _until_keys(self) -> None:
        while not self._keys_ready.is_set():
            await asyncio.sleep(2.0)
            try:
                await self.load_keys()
            except Exception as error:
                log.debug("VAPID keys still not loaded: %r", error)

    async def _after_keys(self, work: Callable[[], Awaitable[None]]) -> None:
        await self._keys_ready.wait()
        await work()

    def _spawn(self, name: str, work: Awaitable[None]) -> None:
        async def run() -> None:
            await work

        self._tasks.append(asyncio.create_task(run(), name=f"tidings-channels-{name}"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        if self.settings.channels_workers:
            with suppress(Exception):
                await self.presence.leave()
        if self.sender is not None:
            await self.sender.close()
        self.mutes.close()
        self.planner.unreachable.close()
        log.info("channels stopped instance=%s", self.instance)

    async def _every(self, interval: float, work: Callable[[], Awaitable[object]]) -> None:
        while True:
            try:
                await work()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("channels %s failed (will retry): %r", work.__name__, error)
            await asyncio.sleep(interval)

    # -- work ----------------------------------------------------------------------------------

    async def reminders_tick(self) -> int:
        sent = await reminders.run_due(self.service, self.clock.now())
        await snoozes.wake_due(self.deps)  # ended snoozes, on the same tick and lease (issue 10)
        return sent

    async def housekeeping(self) -> None:
        now = self.clock.now()
        cutoff = now - timedelta(days=self.settings.retention_days)
        async with self.service.store.write() as conn:
            await deliverylog.prune(conn, cutoff)
            await conn.execute(delete(digest_runs).where(digest_runs.c.created_at < cutoff))
            await conn.execute(
                delete(scheduled_reminders).where(
                    scheduled_reminders.c.state != "pending",
                    scheduled_reminders.c.updated_at < cutoff,
                )
            )

    # -- hooks into the service and the API ------------------------------------------------------

    async def note_principal(self, principal: Principal) -> None:
        """Record the e-mail and roles a stream token carries (only when they changed); raises
        ``NotFound`` when its tenant no longer exists."""
        try:
            await self.note_principals([principal], lenient=False)
        except IntegrityError as error:
            raise NotFound(
                f"Tenant {principal.tenant!r} does not exist.", code=Code.TENANT_NOT_FOUND
            ) from error

    async def note_principals(
        self, principals: Sequence[Principal], *, lenient: bool = True
    ) -> None:
        """Record the e-mail and roles of many stream tokens (the presence heartbeat's batch).

        Principals whose claims are in the ``_seen`` LRU (at most ``CACHE_MAX``, least recent
        out) cost nothing; the others cost one read of their stored profiles and, for those
        whose claims differ, ONE write transaction for all of them (not one per user, which
        would hold the write lock publishes need once per new user).
        """
        fresh: dict[tuple[str, str], Principal] = {}
        for principal in principals:
            key = (principal.tenant, principal.user)
            seen = self._seen.get(key)
            if seen is not None and (seen.email, seen.roles) == (principal.email, principal.roles):
                self._seen.move_to_end(key)
            else:
                fresh[key] = principal
        if not fresh:
            return
        by_tenant: dict[str, list[str]] = {}
        for tenant, user in fresh:
            by_tenant.setdefault(tenant, []).append(user)
        async with self.service.store.read() as conn:
            stored: dict[tuple[str, str], profiles.Profile] = {}
            for tenant, users in by_tenant.items():
                found = await profiles.get_many(conn, tenant, users)
                stored.update(((tenant, u), p) for u, p in found.items())
        changed = [
            (p.tenant, p.user, p.email, sorted(p.roles))
            for key, p in fresh.items()
            if not _unchanged(stored.get(key), p)
        ]
        if changed:
            try:
                async with self.service.store.write() as conn:
                    await profiles.record_claims(conn, changed, now=self.clock.now())
            except IntegrityError:  # a tenant gone meanwhile: record the others one by one
                if not lenient:
                    raise
                for claim in changed:
                    with suppress(IntegrityError):
                        async with self.service.store.write() as conn:
                            await profiles.record_claims(conn, [claim], now=self.clock.now())
        for tenant in {claim[0] for claim in changed if claim[2]}:
            self.planner.unreachable.forget(tenant)  # an address: e-mail may reach them now
        for key, principal in fresh.items():
            self._seen[key] = principal
            self._seen.move_to_end(key)
        while len(self._seen) > CACHE_MAX:
            self._seen.popitem(last=False)

    async def muted_types(self, principal: Principal) -> frozenset[str]:
        """Types switched off in-app for this user: from :class:`Mutes` (no SQL), else one
        read transaction, then kept until a preferences event says otherwise."""
        key = (principal.tenant, principal.user)
        muted = self.mutes.get(*key)
        if muted is not None:
            return muted
        begun = self.mutes.begin()
        async with self.service.store.read() as conn:
            profile = await profiles.get(conn, *key)
            defaults = await profiles.tenant_prefs(conn, principal.tenant)
        muted = (profile or profiles.Profile(*key)).effective(defaults).muted_types()
        self.mutes.put(*key, muted, begun)
        return muted

    def forget(self, tenant: str, user: str | None = None) -> None:
        """Drop cached preferences after a change (one user, or a whole tenant), here only."""
        self.mutes.forget(tenant, user)

    async def refresh_streams(self, tenant: str, user: str | None = None) -> None:
        """After a committed change of one user's preferences (or the tenant's defaults): every
        instance's muted-types cache forgets (this one at once, the others on the broker's
        ``p`` message), and this instance's open streams apply the new switches. Other
        instances' open streams pick them up when they reconnect."""
        await self.service.preferences_changed(tenant, user)
        hub = self.service.hub
        users = [user] if user else sorted({p.user for p in hub.present() if p.tenant == tenant})
        for name in users:
            subs = hub.subscribers_of(tenant, name)
            if subs:
                muted = await self.muted_types(subs[0].principal)
                for sub in subs:
                    sub.muted = muted


def _unchanged(stored: profiles.Profile | None, principal: Principal) -> bool:
    """Whether ``stored`` already holds what ``principal``'s token claims."""
    return (
        stored is not None
        and (not principal.email or stored.email == principal.email)
        and tuple(sorted(principal.roles)) == tuple(stored.roles)
    )
