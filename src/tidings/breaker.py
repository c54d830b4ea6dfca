"""A circuit breaker with a time budget, for calls to a helper service (Redis) that may hang.

States::

    closed ──(a call runs out of its budget)──▶ open ──(cooldown elapsed)──▶ half-open
      ▲                                          ▲                             │
      └─────────────(the probe succeeds)─────────┴──(the probe fails)──────────┘

Invariants:

- A call through :meth:`Breaker.call` never takes longer than ``budget`` seconds: it is
  cancelled at the budget (a black-holed peer that accepts TCP and never answers costs one
  budget, not a socket timeout per retry).
- What opens the breaker is a call that ran out of its budget (``threshold`` of them in a row):
  a peer that *refuses* at once (connection refused, an error reply) costs nothing to ask, so
  such errors pass through to the caller and leave the breaker closed.
- While open, calls are refused at once with :class:`CircuitOpen` (a ``ConnectionError``; no
  I/O); the caller takes its local fallback.
- Half-open lets exactly one call through (the probe); others are refused until it ends. A probe
  that succeeds closes the breaker; one that fails in any way opens it for another ``cooldown``.
- Opening and closing are logged once each (``circuit <name> open|closed``), not once per call.

Not thread-safe: one breaker belongs to one event loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Literal, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

State = Literal["closed", "open", "half-open"]


class CircuitOpen(ConnectionError):
    """Refused without trying: the breaker is open (or its half-open probe is in flight)."""


class Breaker:
    def __init__(
        self, name: str, *, budget: float, cooldown: float = 5.0, threshold: int = 1
    ) -> None:
        self.name = name
        self.budget = budget
        self.cooldown = cooldown
        self.threshold = threshold
        self.failures = 0  # calls in a row that ran out of the budget
        self.refused = 0  # calls refused while open
        self._opened_at: float | None = None
        self._probing = False

    @property
    def state(self) -> State:
        if self._opened_at is None:
            return "closed"
        if time.monotonic() - self._opened_at < self.cooldown:
            return "open"
        return "half-open"

    async def call(self, make: Callable[[], Awaitable[T]]) -> T:
        """``await make()`` within the budget, or raise (``CircuitOpen``, ``TimeoutError`` or
        whatever the call raised)."""
        state = self.state
        if state == "open" or (state == "half-open" and self._probing):
            self.refused += 1
            raise CircuitOpen(f"circuit {self.name} is open")
        probe = state == "half-open"
        self._probing = probe
        try:
            result = await asyncio.wait_for(make(), self.budget)
        except asyncio.CancelledError:
            raise
        except TimeoutError as error:
            self._failed(error, timed_out=True)
            raise
        except BaseException as error:
            self._failed(error, timed_out=False)
            raise
        finally:
            if probe:
                self._probing = False
        self._succeeded()
        return result

    def _failed(self, error: BaseException, *, timed_out: bool) -> None:
        if timed_out:
            self.failures += 1
        elif self._opened_at is None:
            self.failures = 0  # a quick refusal: nothing hangs, nothing to protect against
            return
        if self._opened_at is not None or self.failures >= self.threshold:
            if self._opened_at is None:
                log.warning(
                    "circuit %s open for %.0fs after %r (budget %.0f ms)",
                    self.name,
                    self.cooldown,
                    error,
                    self.budget * 1000,
                )
            self._opened_at = time.monotonic()

    def _succeeded(self) -> None:
        if self._opened_at is not None:
            log.info("circuit %s closed: the probe succeeded", self.name)
        self._opened_at = None
        self.failures = 0
