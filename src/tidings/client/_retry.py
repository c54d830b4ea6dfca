"""When to try a request again, and how long to wait first (shared by both clients).

- A request the server certainly did not act on is always retried: the connection could not
  be opened, or the answer was 429 / 503 (tidings refuses those before changing anything).
- Any other failure (the connection dropped mid-request, 408/425/500/502/504) is retried only
  for calls that are safe to repeat: reads, mark read / archive, preferences, token minting, and
  publishes, which carry one ``Idempotency-Key`` across all their attempts, so a retried publish
  is never stored twice.
- The wait is the answer's ``Retry-After`` (seconds or an HTTP date) when it sent one, else
  exponential backoff with full jitter. A ``Retry-After`` longer than ``max_wait`` is not slept
  through: the error is raised at once with ``retry_after`` set, for the caller to decide.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

__all__ = ["RETRYABLE", "RetryPolicy", "backoff", "parse_retry_after"]

RETRYABLE = frozenset({408, 425, 429, 500, 502, 503, 504})
NOT_ACTED = frozenset({429, 503})


def backoff(attempt: int, base: float = 0.5, cap: float = 30.0) -> float:
    """Full jitter: uniform in [0, min(cap, base * 2**attempt)]."""
    return random.uniform(0, min(cap, base * (2**attempt)))


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date), else None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """``retries`` more attempts after the first; waits capped by ``backoff_cap``; a server's
    ``Retry-After`` is honoured up to ``max_wait`` seconds."""

    retries: int = 5
    backoff_base: float = 0.5
    backoff_cap: float = 10.0
    max_wait: float = 60.0

    def after_transport_error(
        self, error: httpx.TransportError, attempt: int, idempotent: bool
    ) -> float | None:
        """Seconds to wait before the next attempt, or ``None`` to raise ``error``."""
        if attempt >= self.retries:
            return None
        if not idempotent and not isinstance(error, (httpx.ConnectError, httpx.ConnectTimeout)):
            return None
        return backoff(attempt, self.backoff_base, self.backoff_cap)

    def after_status(
        self, status: int, retry_after: float | None, attempt: int, idempotent: bool
    ) -> float | None:
        """Seconds to wait before the next attempt, or ``None`` to raise the problem."""
        if attempt >= self.retries or status not in RETRYABLE:
            return None
        if not idempotent and status not in NOT_ACTED:
            return None
        if retry_after is not None:
            return retry_after if retry_after <= self.max_wait else None
        return backoff(attempt, self.backoff_base, self.backoff_cap)
