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
"""

from __future__ import annotations

import logging
import math
import time

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
        self.local = MovingWindowRateLimiter(storage_from_string("async+memory://"))
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
            stats = await _hit(self.local, self.item, namespace, key, cost)
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
                stats = await _hit(self.local, self.item, namespace, key, cost)
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
