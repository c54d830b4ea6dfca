"""Publish rate limits per API key, with the ``limits`` library.

Storage is per instance (``async+memory://``) unless a Redis URL is given
(:attr:`Settings.shared_limits_url`): then every instance counts in the same Redis and the limit
holds across the cluster. When that Redis cannot be reached the limit falls back to this
instance's own counters (a limiter outage must not stop publishing).

A Redis that hangs instead of refusing (a black hole: TCP accepted, nothing answered) costs a
publish at most :data:`BUDGET` (250 ms): the shared check runs through a circuit breaker
(:mod:`tidings.breaker`) that cancels it at the budget and then sends every call straight to the
local counters for ``cooldown`` seconds; after that one call probes Redis again and, if it
answers within the budget, counting is shared again.

The per-instance counters are :class:`LocalWindows`, the moving window of ``limits``'
``MovingWindowRateLimiter`` over its memory storage, computed in place: that storage starts an
expiry pass after nearly every hit, each with a thread hand-off (``asyncio.to_thread``) per
key, a background cost that grew with the number of keys publishing (issue 8: about a fifth
of a publish's CPU with 5 tenants publishing).
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque

from limits import RateLimitItem, parse
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError
from limits.storage import storage_from_string
from limits.util import WindowStats

from tidings.breaker import Breaker, CircuitOpen
from tidings.errors import Code, TooManyRequests

log = logging.getLogger(__name__)

BUDGET = 0.25  # seconds a publish may wait for the shared limiter before counting locally


class RateLimiter:
    def __init__(
        self,
        rate: str,
        redis_url: str | None = None,
        *,
        budget: float = BUDGET,
        cooldown: float = 5.0,
    ) -> None:
        self.item = parse(rate)
        self.local = LocalWindows(self.item)
        self.shared: MovingWindowRateLimiter | None = None
        if redis_url:
            storage = storage_from_string(
                f"async+{redis_url}",
                implementation="redispy",
                wrap_exceptions=True,
                key_prefix="tidings:limits",
                socket_timeout=1.0,
                socket_connect_timeout=1.0,
            )
            self.shared = MovingWindowRateLimiter(storage)
        self.breaker = Breaker("rate-limits", budget=budget, cooldown=cooldown)
        self._warned = False

    async def hit(self, namespace: str, key: str, cost: int = 1) -> None:
        stats: WindowStats | None
        shared = self.shared
        if shared is None:
            stats = self.local.hit(f"{namespace}/{key}", cost)
        else:
            try:
                stats = await self.breaker.call(
                    lambda: _hit(shared, self.item, namespace, key, cost)
                )
                self._warned = False
            except (StorageError, TimeoutError, CircuitOpen, OSError) as error:
                if not self._warned:
                    log.warning("shared rate limit storage unavailable (%r); per instance", error)
                    self._warned = True
                stats = self.local.hit(f"{namespace}/{key}", cost)
        if stats is None:
            return
        retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        raise TooManyRequests(
            f"Rate limit of {self.item} exceeded for this API key.",
            code=Code.RATE_LIMITED,
            retry_after=retry_after,
        )


async def _hit(
    strategy: MovingWindowRateLimiter, item: RateLimitItem, namespace: str, key: str, cost: int
) -> WindowStats | None:
    """Charge ``cost``; ``None`` when allowed, else the window (for ``Retry-After``)."""
    if await strategy.hit(item, namespace, key, cost=cost):
        return None
    return await strategy.get_window_stats(item, namespace, key)


class LocalWindows:
    """Moving windows per key in this process, as ``limits``' ``MovingWindowRateLimiter``
    counts them: a hit of ``cost`` is allowed when the units charged within the last window
    plus ``cost`` stay within the limit (then they are charged at now), else refused with the
    window's stats (``reset_time``: when its oldest charge leaves it). Bounded: a key holds at
    most ``limit`` charges, and keys whose charges have all left are dropped every
    :data:`SWEEP` hits."""

    SWEEP = 10_000

    def __init__(self, item: RateLimitItem) -> None:
        self.limit = item.amount
        self.window = float(item.get_expiry())
        self._charges: dict[str, deque[tuple[float, int]]] = {}  # oldest first
        self._units: dict[str, int] = {}
        self._hits = 0

    def hit(self, key: str, cost: int = 1) -> WindowStats | None:
        if cost <= 0:
            return None
        now = time.time()
        self._hits += 1
        if self._hits % self.SWEEP == 0:
            self._sweep(now)
        charges = self._charges.get(key)
        if charges is None:
            charges = self._charges[key] = deque()
            self._units[key] = 0
        units = self._expire(key, charges, now)
        if cost <= self.limit and units + cost <= self.limit:
            charges.append((now, cost))
            self._units[key] = units + cost
            return None
        reset = charges[0][0] + self.window if charges else now
        return WindowStats(reset, self.limit - units)

    def _expire(self, key: str, charges: deque[tuple[float, int]], now: float) -> int:
        units = self._units[key]
        cutoff = now - self.window
        while charges and charges[0][0] < cutoff:
            units -= charges.popleft()[1]
        self._units[key] = units
        return units

    def _sweep(self, now: float) -> None:
        for key, charges in list(self._charges.items()):
            if not self._expire(key, charges, now):
                del self._charges[key], self._units[key]
