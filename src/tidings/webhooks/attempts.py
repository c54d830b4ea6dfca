"""What one delivery attempt leaves behind, written in one transaction.

- nothing at all when the delivery is gone meanwhile (its endpoint deleted, its tenant or
  user erased while the attempt was in flight);
- a ``webhook_log`` entry ``attempt`` (``ok``, ``status``, ``error``, ``duration_ms``);
- success: the delivery is ``delivered``; the endpoint's failure streak ends;
- failure: the delivery is retried after :func:`backoff` (the endpoint waits for it: nothing
  overtakes it), or is ``failed`` after ``TIDINGS_WEBHOOK_MAX_ATTEMPTS`` (logged
  ``gave_up``); the endpoint's streak grows, and once it reaches
  ``TIDINGS_WEBHOOK_DISABLE_FAILURES`` attempts over at least ``TIDINGS_WEBHOOK_DISABLE_AFTER``
  seconds the endpoint is disabled (``disabled_reason: failing``, logged ``disabled``).

The endpoint's lease is renewed with each attempt.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.channels.clock import as_utc
from tidings.config import Settings
from tidings.domain.notifications import utcnow
from tidings.webhooks.sender import Outcome
from tidings.webhooks.tables import webhook_deliveries, webhook_endpoints, webhook_log

log = logging.getLogger(__name__)
_E = webhook_endpoints.c
_D = webhook_deliveries.c


@dataclass(frozen=True)
class Job:
    """One pending delivery, as the worker sends it."""

    delivery: int
    tenant: str
    endpoint: str
    url: str
    secret: str
    event: str
    body: bytes
    attempts: int


def backoff(settings: Settings, attempts: int) -> float:
    """Seconds before the next attempt: base * 2^(attempts-1), at most the max, jittered
    (times 0.5 to 1) so endpoints that failed together do not retry together."""
    s = settings
    delay = min(s.webhook_retry_base * 2 ** max(0, attempts - 1), s.webhook_retry_max)
    return float(delay) * random.uniform(0.5, 1.0)


async def record(
    conn: AsyncConnection, job: Job, outcome: Outcome, settings: Settings, lease: timedelta
) -> bool:
    """Record the attempt; True if the endpoint may go on with its next delivery."""
    s = settings
    now = utcnow()
    attempt = job.attempts + 1
    entry: dict[str, Any] = {
        "tenant_id": job.tenant,
        "endpoint_id": job.endpoint,
        "event_id": job.event,
        "ok": outcome.ok,
        "status": outcome.status,
        "error": outcome.error,
        "attempt": attempt,
        "at": now,
    }
    # The delivery itself, not just its id: SQLite hands the id of a deleted last row to the
    # next insert, so a delivery deleted while its attempt was in flight (its endpoint
    # removed, its tenant erased) may have been followed by another endpoint's under that id.
    mine = and_(
        _D.id == job.delivery,
        _D.endpoint_id == job.endpoint,
        _D.event_id == job.event,
        _D.state == "pending",
    )
    if (await conn.execute(select(_D.id).where(mine).with_for_update())).first() is None:
        return False  # gone meanwhile: nothing of the attempt is recorded
    await conn.execute(
        insert(webhook_log).values(kind="attempt", duration_ms=outcome.duration_ms, **entry)
    )
    if outcome.ok:
        await conn.execute(
            update(webhook_deliveries)
            .where(mine)
            .values(
                state="delivered",
                attempts=attempt,
                last_status=outcome.status,
                last_error=None,
                updated_at=now,
            )
        )
        await conn.execute(
            update(webhook_endpoints)
            .where(_E.id == job.endpoint)
            .values(failures=0, failing_since=None, lease_until=now + lease)
        )
        return True
    gave_up = attempt >= s.webhook_max_attempts
    await conn.execute(
        update(webhook_deliveries)
        .where(mine)
        .values(
            state="failed" if gave_up else "pending",
            attempts=attempt,
            due_at=now + timedelta(seconds=backoff(s, attempt)),
            last_status=outcome.status,
            last_error=outcome.error,
            updated_at=now,
        )
    )
    if gave_up:
        await conn.execute(insert(webhook_log).values(kind="gave_up", **entry))
    row = (
        await conn.execute(select(_E.failures, _E.failing_since).where(_E.id == job.endpoint))
    ).one()
    since = as_utc(row.failing_since) if row.failing_since else now
    failures = row.failures + 1
    disable = (
        failures >= s.webhook_disable_failures
        and (now - since).total_seconds() >= s.webhook_disable_after
    )
    await conn.execute(
        update(webhook_endpoints)
        .where(_E.id == job.endpoint)
        .values(
            failures=failures,
            failing_since=since,
            lease_until=now + lease,
            **({"enabled": False, "disabled_reason": "failing"} if disable else {}),
        )
    )
    if disable:
        await conn.execute(
            insert(webhook_log).values(kind="disabled", **{**entry, "event_id": None, "ok": None})
        )
        log.warning(
            "webhook endpoint disabled tenant=%s endpoint=%s failures=%d",
            job.tenant,
            job.endpoint,
            failures,
        )
    return gave_up and not disable
