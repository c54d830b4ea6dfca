"""Posts one signed delivery, bounded in time and in what it reads back.

Connections go through :class:`tidings.channels.egress.GuardedBackend` with the webhooks' own
policy (public addresses, plus ``TIDINGS_WEBHOOK_ALLOW_NETWORKS``): the same rules as web push,
checked after DNS resolution, at connect time. Redirects are not followed (a 3xx is a failure).
Every attempt ends within ``TIDINGS_WEBHOOK_TIMEOUT`` seconds, however the receiver behaves.
What the tenant sees of a failure is its HTTP status or a coarse class (``timeout``,
``unreachable``, ``protocol``); the cause is logged for the operator.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

import httpcore

from tidings.channels.egress import AddressPolicy, GuardedBackend, default_trust, parse_networks
from tidings.config import Settings

log = logging.getLogger(__name__)
RESPONSE_LIMIT = 16_384  # bytes of the receiver's answer read (and dropped) at most
USER_AGENT = "tidings-webhooks/1"


@dataclass(frozen=True)
class Outcome:
    ok: bool
    status: int | None
    error: str | None
    duration_ms: int


class Sender:
    def __init__(self, settings: Settings) -> None:
        self.timeout = settings.webhook_timeout
        policy = AddressPolicy(parse_networks(settings.webhook_allow_networks))
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=default_trust(),
            max_connections=settings.webhook_concurrency,
            keepalive_expiry=30.0,
            network_backend=GuardedBackend(policy),
        )

    async def close(self) -> None:
        await self._pool.aclose()

    async def post(self, url: str, headers: dict[str, str], body: bytes) -> Outcome:
        started = time.monotonic()
        sent = [
            (b"content-type", b"application/json"),
            (b"user-agent", USER_AGENT.encode()),
            *((k.encode(), v.encode()) for k, v in headers.items()),
        ]
        t = self.timeout
        status: int | None = None
        error: str | None = None
        try:
            async with asyncio.timeout(t):
                async with self._pool.stream(
                    "POST",
                    url,
                    headers=sent,
                    content=body,
                    extensions={"timeout": {"connect": t, "read": t, "write": t, "pool": t}},
                ) as response:
                    status = response.status
                    read = 0
                    async for chunk in response.aiter_stream():
                        read += len(chunk)
                        if read >= RESPONSE_LIMIT:
                            break
        except (TimeoutError, httpcore.TimeoutException):
            error = "timeout"
        except (httpcore.ConnectError, OSError) as failed:
            log.info("webhook to %s unreachable: %r", url, failed)
            error = "unreachable"
        except Exception as failed:  # protocol errors, a reset mid-answer…
            log.info("webhook to %s failed: %r", url, failed)
            error = "protocol"
        elapsed = int((time.monotonic() - started) * 1000)
        if error is None and status is not None and not 200 <= status < 300:
            error = f"http_{status}"
        return Outcome(error is None, status, error, elapsed)
