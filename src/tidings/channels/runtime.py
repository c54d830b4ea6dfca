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
from typing import Any

from sqlalchemy import delete

from tidings.channels import deliverylog, profiles, reminders, snoozes
from tidings.channels.clock import Clock, SystemClock
from tidings.channels.deps import WorkerDeps
from tidings.channels.digest import DigestRunner
from tidings.channels.mutes import PLAIN_MAX, Mutes
from tidings.channels.planner import Planner
from tidings.channels.preferences import UserPreferences
from tidings.channels.presence import Presence
from tidings.channels.pushqueue import PushWorker
from tidings.channels.service import ChannelsService
from tidings.channels.tables import digest_runs, scheduled_reminders
from tidings.channels.webpush import HostRules, PushSender, VapidKeys, load_or_create_keys
from tidings.domain.principals import Principal
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
            on_seen=self.note_seen,
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
            emit=service.emit,
        )
        """What the workers get (not this object: no runtime <-> worker import cycle)."""
        self.planner = Planner(self.deps)
        self.planner.unreachable.watch(service.hub)  # told when a user gains a channel
        service.hub.on_relayed.append(self.planner.activity)  # another instance published
        self.push_worker = PushWorker(self.deps)
        self.digests = DigestRunner(self.deps)
        self.loop: asyncio.AbstractEventLoop | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._keys_ready = asyncio.Event()
        self._seen: OrderedDict[tuple[str, str], tuple[str | None, frozenset[str], str | None]] = (
            OrderedDict()
        )
        self.mutes = Mutes(service.hub, self.settings.muted_cache)
        # Muted-type misses of the current loop iteration, read together (muted_types).
        self._muted_reads: dict[tuple[str, str], asyncio.Future[frozenset[str]]] = {}
        self._reading: set[asyncio.Task[None]] = set()
        self.api = ChannelsService(
            service, self.clock, self.rules, streams=self, keys=lambda: self.keys
        )
        """The operations routers and the demo call (they open no transactions themselves)."""

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> Hooks:
        self.loop = asyncio.get_running_loop()
        hooks = Hooks(
            after_publish=[self.planner.on_publish],
            muted_types=self.muted_types,
            muted_types_many=self.muted_types_many,
        )
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
        self._spawn("presence", self._every(s.presence_interval, self.presence_beat))
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

    async def presence_beat(self) -> None:
        """The presence heartbeat (:meth:`Presence.beat`; it hands the principals here to
        :meth:`note_seen`)."""
        await self.presence.beat()

    async def note_seen(self, principals: Sequence[Principal]) -> None:
        """The principals with a stream here, all at once: those this instance has not seen
        as they are are noted together, their stored profiles read in one statement per tenant,
        the changed ones saved in ONE write transaction (a connect storm of new users costs two
        transactions, not two per user)."""
        fresh = [p for p in principals if not self._known(p)]
        if fresh:
            await self._note_many(fresh)

    def _known(self, principal: Principal) -> bool:
        key = (principal.tenant, principal.user)
        if self._seen.get(key) != (principal.email, principal.roles, principal.locale):
            return False
        self._seen.move_to_end(key)
        return True

    def _remember(self, principal: Principal) -> None:
        seen = (principal.email, principal.roles, principal.locale)
        self._seen[(principal.tenant, principal.user)] = seen
        if len(self._seen) > CACHE_MAX:
            self._seen.popitem(last=False)

    async def _note_many(self, principals: list[Principal]) -> None:
        tenants: dict[str, list[str]] = {}
        for p in principals:
            tenants.setdefault(p.tenant, []).append(p.user)
        async with self.service.store.read() as conn:
            stored = {
                (tenant, user): profile
                for tenant, users in tenants.items()
                for user, profile in (await profiles.get_many(conn, tenant, users)).items()
            }
        # A user without a row whose token says nothing a row would hold (no e-mail, roles or
        # locale) gets none here: it would read exactly as having none (a connect storm of
        # such users writes nothing). Their device or address, when they add one, writes it.
        changed = [
            p
            for p in principals
            if not _unchanged(found := stored.get((p.tenant, p.user)), p)
            and not (found is None and not p.email and not p.roles and p.locale is None)
        ]
        # A new locale claim changes the user's preferences: one by one (rare; note_principal).
        relocale = [p for p in changed if _relocale(stored.get((p.tenant, p.user)), p)]
        changed = [p for p in changed if p not in relocale]
        for p in relocale:
            await self.note_principal(p)
        if changed:
            by_tenant: dict[str, list[tuple[str, str | None, list[str]]]] = {}
            for p in changed:
                by_tenant.setdefault(p.tenant, []).append(
                    (p.user, p.email or None, sorted(p.roles))
                )
            async with self.service.store.write() as conn:
                for tenant, seen in by_tenant.items():
                    await profiles.save_seen(conn, tenant, seen, now=self.clock.now())
            for p in changed:
                if p.email:  # an address: e-mail may reach the tenant's users now
                    self.planner.unreachable.reachable(p.tenant)
        for p in principals:
            self._remember(p)

    async def note_principal(self, principal: Principal) -> None:
        """Record the e-mail, roles and locale a stream token carries (only when they changed;
        the ``locale`` claim is saved as the user's ``locale`` preference).

        The cache is an LRU: past ``CACHE_MAX`` live users only the least recent entry goes, and
        a miss first reads the stored profile, so a large tenant's heartbeat costs reads, not a
        write per user holding the write lock that publishes need.
        """
        key = (principal.tenant, principal.user)
        if self._known(principal):
            return
        async with self.service.store.read() as conn:
            stored = await profiles.get(conn, *key)
        if not _unchanged(stored, principal):
            changes: dict[str, Any] = {"roles": sorted(principal.roles)}
            if principal.email:
                changes["email"] = principal.email
            async with self.service.store.write() as conn:
                if _relocale(stored, principal):
                    # A token's ``locale`` claim (issue 10) becomes the user's ``locale``
                    # preference.
                    mine = await profiles.get(conn, *key)
                    prefs = mine.prefs if mine is not None else UserPreferences()
                    changes["prefs"] = prefs.model_copy(update={"locale": principal.locale})
                await profiles.save(conn, *key, now=self.clock.now(), **changes)
        self._remember(principal)

    async def muted_types(self, principal: Principal) -> frozenset[str]:
        """Types switched off in-app for this user: from :class:`Mutes` (no SQL), else one
        read transaction, then kept until a preferences event says otherwise."""
        muted = self._muted_now(principal)
        if isinstance(muted, frozenset):
            return muted
        return await asyncio.shield(muted)

    async def muted_types_many(self, principals: Sequence[Principal]) -> list[frozenset[str]]:
        """:meth:`muted_types` of each of ``principals`` (a stream opener's batch): the known
        ones at once, the misses together in one read, one await for all (no task each)."""
        found = [self._muted_now(p) for p in principals]
        misses = [m for m in found if not isinstance(m, frozenset)]
        if misses:
            await asyncio.shield(asyncio.gather(*misses))
        return [m if isinstance(m, frozenset) else m.result() for m in found]

    def _muted_now(self, principal: Principal) -> frozenset[str] | asyncio.Future[frozenset[str]]:
        """The muted types if known without I/O, else the future of this loop iteration's
        read that will answer them."""
        key = (principal.tenant, principal.user)
        muted = self.mutes.get(*key)
        if muted is None:
            muted = self.mutes.plain(*key)  # no stored preferences: the tenant's defaults
        if muted is not None:
            return muted
        pending = self._muted_reads.get(key)
        if pending is None:
            if not self._muted_reads:  # the first miss of this loop iteration: one read for all
                asyncio.get_running_loop().call_soon(self._read_muted)
            pending = self._muted_reads[key] = asyncio.get_running_loop().create_future()
            pending.add_done_callback(_retrieved)
        return pending

    def _read_muted(self) -> None:
        batch, self._muted_reads = self._muted_reads, {}
        task = asyncio.get_running_loop().create_task(self._muted_many(batch))
        self._reading.add(task)
        task.add_done_callback(self._reading.discard)

    async def _muted_many(
        self, batch: dict[tuple[str, str], asyncio.Future[frozenset[str]]]
    ) -> None:
        """The muted types of the users whose connects missed :class:`Mutes` in one loop
        iteration: ONE read transaction (per tenant its defaults and one statement for the
        users' rows), each kept in :class:`Mutes` as a single read would be."""
        begun = self.mutes.begin()
        tenants: dict[str, list[str]] = {}
        for tenant, user in batch:
            tenants.setdefault(tenant, []).append(user)
        try:
            async with self.service.store.read() as conn:
                for tenant, users in tenants.items():
                    defaults = await profiles.tenant_prefs(conn, tenant)
                    plain = profiles.Profile(tenant, "").effective(defaults).muted_types()
                    others: list[str] | None = None
                    if not self.mutes.knows_plain(tenant):  # read once per tenant, then kept
                        others = await profiles.with_preferences(conn, tenant, PLAIN_MAX)
                        if others is not None:
                            self.mutes.put_plain(tenant, plain, frozenset(others), begun)
                    need = users if others is None else sorted(set(users) & set(others))
                    found = await profiles.get_many(conn, tenant, need) if need else {}
                    for user in users:
                        if others is not None and user not in found:
                            batch[(tenant, user)].set_result(plain)  # as the fact says
                            continue
                        profile = found.get(user) or profiles.Profile(tenant, user)
                        muted = profile.effective(defaults).muted_types()
                        self.mutes.put(tenant, user, muted, begun)
                        batch[(tenant, user)].set_result(muted)
        except BaseException as error:
            for future in batch.values():
                if not future.done():
                    future.set_exception(error)
            if not isinstance(error, Exception):
                raise

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
                    sub.mute(muted)


def _unchanged(stored: profiles.Profile | None, principal: Principal) -> bool:
    """Whether the stored profile already has what the principal's token says."""
    return (
        stored is not None
        and (not principal.email or stored.email == principal.email)
        and tuple(sorted(principal.roles)) == tuple(stored.roles)
        and not _relocale(stored, principal)
    )


def _relocale(stored: profiles.Profile | None, principal: Principal) -> bool:
    """Whether the token's ``locale`` claim differs from the user's stored preference."""
    return principal.locale is not None and (
        stored is None or stored.prefs.locale != principal.locale
    )


def _retrieved(future: asyncio.Future[frozenset[str]]) -> None:
    """Mark a shared read's error as seen (its waiters may all have been cancelled)."""
    if not future.cancelled():
        future.exception()
