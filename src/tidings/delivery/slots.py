"""Cluster-wide stream caps: open streams per tenant and per user, counted in Redis.

Each open stream holds a slot: a member ``<instance>:<conn>`` of two Redis sorted sets (one per
tenant, one per user) scored by when it expires. Invariants:

- Acquiring is one Lua script: drop expired members, refuse past either cap, add to both sets.
  So two instances racing for the last slot cannot both win.
- The owning instance re-scores its live slots every ``ttl / 3`` seconds; a crashed instance
  stops doing that and its slots expire after ``ttl``: nothing leaks.
- Releasing is asynchronous but prompt (a background task removes released members at once);
  the slot is gone from this instance's heartbeat at once, so it expires anyway.
- Redis down: the per-instance caps of the hub still hold, acquiring fails open (a limiter
  outage must not close the service), and the heartbeat re-registers every live stream when
  Redis is back (a restarted Redis starts empty).
- Redis hanging (a black hole): acquiring runs through a circuit breaker
  (:mod:`tidings.breaker`) with a budget of :data:`BUDGET` (250 ms): a stream open waits at most
  that long for Redis; once the breaker is open, opens go straight to the per-instance caps
  until a half-open probe gets an answer in time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from types import TracebackType
from typing import TYPE_CHECKING, Self

from tidings.breaker import Breaker, CircuitOpen
from tidings.errors import Code, TooManyRequests

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from tidings.delivery.hub import Subscriber

log = logging.getLogger(__name__)

BUDGET = 0.25  # seconds a stream open may wait for the cluster-wide caps

_ACQUIRE = """
local now, expiry, member = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local max_tenant, max_user, keep = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('ZSCORE', KEYS[1], member) == false
   and redis.call('ZCARD', KEYS[1]) >= max_tenant then return 1 end
if redis.call('ZSCORE', KEYS[2], member) == false
   and redis.call('ZCARD', KEYS[2]) >= max_user then return 2 end
redis.call('ZADD', KEYS[1], expiry, member)
redis.call('ZADD', KEYS[2], expiry, member)
redis.call('EXPIRE', KEYS[1], keep)
redis.call('EXPIRE', KEYS[2], keep)
return 0
"""


class RedisSlots:
    """The hub's cluster-wide caps (see the module docstring)."""

    def __init__(
        self,
        url: str,
        instance: str,
        *,
        max_per_user: int,
        max_per_tenant: int,
        ttl: float = 30.0,
        prefix: str = "tidings:streams",
        budget: float = BUDGET,
        cooldown: float = 5.0,
    ) -> None:
        self.url = url
        self.instance = instance
        self.max_per_user = max_per_user
        self.max_per_tenant = max_per_tenant
        self.ttl = ttl
        self.prefix = prefix
        self._held: dict[str, tuple[str, str]] = {}  # member -> (tenant key, user key)
        self._released: dict[str, tuple[str, str]] = {}
        self._wake = asyncio.Event()
        self._redis: Redis | None = None
        self._task: asyncio.Task[None] | None = None
        self.breaker = Breaker("stream-caps", budget=budget, cooldown=cooldown)

    async def __aenter__(self) -> Self:
        from redis.asyncio import Redis

        self._redis = Redis.from_url(self.url, socket_timeout=1.0, socket_connect_timeout=1.0)
        self._task = asyncio.create_task(self._heartbeat(), name="tidings-stream-slots")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._released.update(self._held)
        self._held.clear()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._flush(), 2)
        if self._redis is not None:
            with contextlib.suppress(Exception):
                await self._redis.aclose()

    def _keys(self, sub: Subscriber) -> tuple[str, tuple[str, str]]:
        p = sub.principal
        member = f"{self.instance}:{sub.conn}"
        return member, (f"{self.prefix}:t:{p.tenant}", f"{self.prefix}:u:{p.tenant}:{p.user}")

    async def acquire(self, sub: Subscriber) -> None:
        """Take a slot for ``sub`` or raise ``TooManyRequests``. Fails open without Redis."""
        from redis.exceptions import RedisError

        member, keys = self._keys(sub)
        redis = self._redis
        assert redis is not None, "RedisSlots used outside 'async with'"
        now = time.time()
        try:
            refused = await self.breaker.call(
                lambda: redis.eval(
                    _ACQUIRE,
                    2,
                    *keys,
                    now,
                    now + self.ttl,
                    member,
                    self.max_per_tenant,
                    self.max_per_user,
                    int(self.ttl * 2) + 1,
                )
            )
        except CircuitOpen:
            refused = 0  # logged when it opened
        except (RedisError, OSError, TimeoutError) as error:
            log.warning("stream caps: redis unavailable (%r); per-instance caps only", error)
            refused = 0
        if refused == 1:
            raise TooManyRequests(
                f"This tenant has {self.max_per_tenant} open streams already.",
                code=Code.TOO_MANY_STREAMS,
                retry_after=5,
            )
        if refused == 2:
            raise TooManyRequests(
                f"This user has {self.max_per_user} open streams already; close one.",
                code=Code.TOO_MANY_STREAMS,
                retry_after=5,
            )
        self._held[member] = keys

    def release(self, sub: Subscriber) -> None:
        member, _ = self._keys(sub)
        keys = self._held.pop(member, None)
        if keys is not None:
            self._released[member] = keys
            self._wake.set()

    async def _flush(self) -> None:
        if not self._released or self._redis is None:
            return
        batch, self._released = self._released, {}
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for member, (tenant_key, user_key) in batch.items():
                    pipe.zrem(tenant_key, member)
                    pipe.zrem(user_key, member)
                await pipe.execute()
        except Exception:
            # Not removed now: they expire after ``ttl`` (they are no longer re-scored).
            log.debug("stream caps: release deferred to expiry")

    async def _refresh(self) -> None:
        if not self._held or self._redis is None:
            return
        expiry = time.time() + self.ttl
        keep = int(self.ttl * 2) + 1
        async with self._redis.pipeline(transaction=False) as pipe:
            for member, (tenant_key, user_key) in list(self._held.items()):
                pipe.zadd(tenant_key, {member: expiry})
                pipe.zadd(user_key, {member: expiry})
                pipe.expire(tenant_key, keep)
                pipe.expire(user_key, keep)
            await pipe.execute()

    async def _heartbeat(self) -> None:
        every = self.ttl / 3
        next_refresh = time.monotonic() + every
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(0.0, next_refresh - time.monotonic()))
            self._wake.clear()
            await self._flush()
            if time.monotonic() >= next_refresh:
                next_refresh = time.monotonic() + every
                try:
                    await self._refresh()
                except Exception as error:
                    log.warning("stream caps: heartbeat failed (%r)", error)
