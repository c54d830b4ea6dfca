"""Publish rate limits per API key, with the ``limits`` library.

Storage is per instance (``async+memory://``) unless the broker is Redis, in which case the same
Redis holds the counters and the limit holds across every instance.
"""

from __future__ import annotations

import math
import time

from limits import parse
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from tidings.errors import TooManyRequests


class RateLimiter:
    def __init__(self, rate: str, storage_uri: str = "async+memory://") -> None:
        self.item = parse(rate)
        self.storage = storage_from_string(storage_uri)
        self.strategy = MovingWindowRateLimiter(self.storage)

    async def hit(self, namespace: str, key: str, cost: int = 1) -> None:
        if await self.strategy.hit(self.item, namespace, key, cost=cost):
            return
        stats = await self.strategy.get_window_stats(self.item, namespace, key)
        retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        raise TooManyRequests(
            f"Rate limit of {self.item} exceeded for this API key.",
            code="rate_limited",
            retry_after=retry_after,
        )
