"""Publish rate limits per API key, with the ``limits`` library.

Storage is per instance (``async+memory://``) unless a Redis URL is given
(:attr:`Settings.shared_limits_url`): then every instance counts in the same Redis and the limit
holds across the cluster. When that Redis cannot be reached the limit falls back to this
instance's own counters (a limiter outage must not stop publishing), and goes back to Redis on
the next call that reaches it.
"""

from __future__ import annotations

import logging
import math
import time

from limits import parse
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError
from limits.storage import storage_from_string

from tidings.errors import TooManyRequests

log = logging.getLogger(__name__)


class RateLimiter:
    def __init__(self, rate: str, redis_url: str | None = None) -> None:
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
        self._warned = False

    async def hit(self, namespace: str, key: str, cost: int = 1) -> None:
        strategy = self.shared or self.local
        try:
            allowed = await strategy.hit(self.item, namespace, key, cost=cost)
            stats = None if allowed else await strategy.get_window_stats(self.item, namespace, key)
            self._warned = False
        except StorageError as error:
            if not self._warned:
                log.warning("shared rate limit storage unavailable (%r); per instance", error)
                self._warned = True
            strategy = self.local
            allowed = await strategy.hit(self.item, namespace, key, cost=cost)
            stats = None if allowed else await strategy.get_window_stats(self.item, namespace, key)
        if stats is None:
            return
        retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        raise TooManyRequests(
            f"Rate limit of {self.item} exceeded for this API key.",
            code="rate_limited",
            retry_after=retry_after,
        )
