"""The push worker: drains the push outbox, with retries and backoff, off the publish path.

Claiming is a lease: in one transaction due rows (``pending`` and ``due_at <= now``, or
``sending`` whose lease ran out because an instance died mid-send) are locked ``FOR UPDATE SKIP
LOCKED`` and marked ``sending`` by this instance until ``lease_until``. The push itself happens
outside any transaction; its outcome is written afterwards:

- accepted (2xx) → row deleted, ``sent`` logged;
- 404 / 410 → the subscription is deleted (its outbox rows with it), ``failed: gone`` logged;
- 429 / 5xx / ``endpoint_unreachable`` (refused by the egress policy, no such host, connection
  refused, timeout, TLS: one reason for all, so the log is no port scanner) → back to
  ``pending`` at ``now + backoff`` (doubling from ``TIDINGS_PUSH_RETRY_BASE``, at least
  ``Retry-After``), until ``TIDINGS_PUSH_MAX_ATTEMPTS``;
- anything else → row deleted, ``failed`` logged.

Before sending, a notification the user has read (or archived) meanwhile is dropped as
``skipped: already_read``. Memory is bounded: at most ``TIDINGS_PUSH_CONCURRENCY`` jobs are
claimed (and in flight) at a time. A crash between send and write-back re-sends after the
lease; the ``Topic`` header and the service worker's ``tag`` make such a duplicate replace the
first.

While nothing is due the worker looks at the outbox less and less often: it sleeps until the
next row is due (a retry's ``due_at``, a lease that runs out), and at most its base pause
(``min(1 s, TIDINGS_PUSH_RETRY_BASE)``) doubled per look that found nothing, up to
``TIDINGS_IDLE_POLL_MAX``. Rows planned here wake it at once (``wake``); rows planned by
another instance are that instance's worker's, and this one finds them at its next look (they
only wait for it when that instance died before sending them).
"""

from __future__ import annotations

import asyncio
import logging
import random
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

import orjson
from sqlalchemy import and_, delete, func, or_, select, update

from tidings.channels import deliverylog, locales, webpush
from tidings.channels.clock import as_utc
from tidings.channels.deliverylog import entry
from tidings.channels.tables import push_outbox, push_subscriptions
from tidings.channels.webpush import PushResult
from tidings.domain.locales import pick
from tidings.domain.notifications import Notification, format_time
from tidings.store import notifications as nq
from tidings.store import readstate
from tidings.store.erasure import hold_tenant
from tidings.store.tables import notifications, receipts

if TYPE_CHECKING:
    from tidings.channels.deps import WorkerDeps

log = logging.getLogger(__name__)
_O = push_outbox.c
_S = push_subscriptions.c
MAX_PAYLOAD = 3000  # bytes of JSON; Web Push allows ~4 KB after encryption


@dataclass(frozen=True, slots=True)
class Job:
    id: int
    tenant: str
    seq: int
    user: str
    subscription: int
    endpoint: str
    p256dh: str
    auth: str
    attempts: int


def payload(item: Notification, public_url: str, locale: str | None = None) -> bytes:
    """What the service worker gets: one JSON object, at most ``MAX_PAYLOAD`` bytes; the text
    in ``locale`` (the user's profile locale) when the notification has it (issue 10)."""
    url = urljoin(public_url.rstrip("/") + "/", item.link) if item.link else public_url
    text = pick(item.l10n or {}, locale) or {"title": item.title, "body": item.body}
    body: dict[str, Any] = {
        "id": item.seq,
        "type": item.type,
        "title": text["title"][:200],
        "body": text["body"][:1000],
        "url": url,
        "tag": f"tidings:{item.tenant}:{item.seq}",
        "created_at": format_time(item.created_at),
    }
    encoded = orjson.dumps(body)
    while len(encoded) > MAX_PAYLOAD and body["body"]:
        body["body"] = body["body"][: len(body["body"]) // 2]
        encoded = orjson.dumps(body)
    return encoded


class PushWorker:
    def __init__(self, deps: WorkerDeps) -> None:
        self.ch = deps
        self._wake = asyncio.Event()
        settings = deps.settings
        self.batch = settings.push_concurrency
        self.lease = timedelta(seconds=settings.push_timeout * 3 + 30)
        self.interval = min(1.0, settings.push_retry_base)
        self.idle_max = max(self.interval, settings.idle_poll_max)
        self.every = self.interval  # the pause now: doubles per look that found nothing
        self.next_due: datetime | None = None  # when the earliest row not yet due will be

    def wake(self) -> None:
        self.every = self.interval
        self._wake.set()

    async def run_forever(self) -> None:
        while True:
            try:
                jobs = await self.claim()
                if jobs:
                    self.every = self.interval
                    await asyncio.gather(*(self.deliver(job) for job in jobs))
                    continue
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("push worker failed (will retry): %r", error)
                self.every, self.next_due = self.interval, None
            pause = self.every
            if self.next_due is not None:  # not due at the look: sleep until it is (at most)
                pause = min(pause, (self.next_due - self.ch.clock.now()).total_seconds())
            self.every = min(self.every * 2, self.idle_max)
            with suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(0.0, pause))
            self._wake.clear()

    async def claim(self) -> list[Job]:
        now = self.ch.clock.now()
        due = or_(
            and_(_O.state == "pending", _O.due_at <= now),
            and_(_O.state == "sending", _O.lease_until < now),
        )
        async with self.ch.store.read() as conn:  # idle: no write transaction
            # One look: when the earliest pending row is due, and when the earliest lease ends.
            pending = select(func.min(_O.due_at)).where(_O.state == "pending").scalar_subquery()
            leased = select(func.min(_O.lease_until)).where(_O.state == "sending")
            nearest = (await conn.execute(select(pending, leased.scalar_subquery()))).one()
        moments = [as_utc(m) for m in nearest if m is not None]
        self.next_due = min(moments) if moments else None
        if self.next_due is None or self.next_due > now:
            return []
        async with self.ch.store.write() as conn:
            ids = [
                int(i)
                for (i,) in await conn.execute(
                    select(_O.id)
                    .where(due)
                    .order_by(_O.due_at)
                    .limit(self.batch)
                    .with_for_update(skip_locked=True)
                )
            ]
            if not ids:  # due, but claimed or locked elsewhere meanwhile: no due time to keep
                self.next_due = None
                return []
            await conn.execute(
                update(push_outbox)
                .where(_O.id.in_(ids))
                .values(
                    state="sending",
                    owner=self.ch.instance,
                    lease_until=now + self.lease,
                    attempts=_O.attempts + 1,
                )
            )
            rows = await conn.execute(
                select(push_outbox, _S.endpoint, _S.p256dh, _S.auth)
                .join(push_subscriptions, _S.id == _O.subscription_id)
                .where(_O.id.in_(ids))
            )
            return [
                Job(
                    int(r.id),
                    r.tenant_id,
                    int(r.seq),
                    r.user_id,
                    int(r.subscription_id),
                    r.endpoint,
                    r.p256dh,
                    r.auth,
                    int(r.attempts),
                )
                for r in rows
            ]

    async def deliver(self, job: Job) -> None:
        try:
            async with self.ch.store.read() as conn:
                item = await nq.get(conn, job.tenant, job.seq)
                read = item is not None and await _is_read(conn, job)
                wanted = item is not None and item.l10n  # rendered per locale: the user's
                locale = await locales.locale_of(conn, job.tenant, job.user) if wanted else None
            if item is None or read:
                await self._finish(job, None, "already_read" if read else "gone_notification")
                return
            sender = self.ch.sender()
            assert sender is not None
            result = await sender.send(
                job.endpoint,
                job.p256dh,
                job.auth,
                payload(item, self.ch.settings.public_url, locale),
                ttl=self.ch.settings.push_ttl,
                topic=webpush.topic(job.tenant, job.seq),
            )
            await self._finish(job, result, None)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # the lease runs out and another attempt follows
            log.warning("push job %d failed: %r", job.id, error)

    async def _finish(self, job: Job, result: PushResult | None, skipped: str | None) -> None:
        now = self.ch.clock.now()
        target = f"device:{job.subscription}"

        def note(state: Any, reason: str | None, **detail: Any) -> dict[str, Any]:
            return entry(
                job.tenant,
                job.seq,
                "push",
                state,
                at=now,
                user=job.user,
                target=target,
                reason=reason,
                detail=detail or None,
            )

        # The claimed row itself, not just its id: SQLite hands the id of a deleted last row
        # to the next insert, so a row erased while its attempt was in flight may have been
        # followed by another user's row under the same id.
        mine = and_(
            _O.id == job.id,
            _O.tenant_id == job.tenant,
            _O.seq == job.seq,
            _O.subscription_id == job.subscription,
            _O.owner == self.ch.instance,
            _O.state == "sending",
        )
        event = {"user": job.user, "notification_id": job.seq, "device": job.subscription}
        async with self.ch.store.write() as conn:
            await hold_tenant(conn, job.tenant)  # an erasure in flight finishes first
            if (await conn.execute(select(_O.id).where(mine))).first() is None:
                # Erased with its user or tenant while the attempt was in flight (or its lease
                # ran out and another attempt holds it now): nothing of it is recorded (an
                # erased user leaves no log behind; the holder of the lease records its own).
                return
            if result is None:
                await conn.execute(delete(push_outbox).where(mine))
                if skipped == "already_read":
                    await deliverylog.write(conn, [note("skipped", skipped)])
                return
            if result.ok:
                await conn.execute(delete(push_outbox).where(mine))
                await conn.execute(
                    update(push_subscriptions)
                    .where(_S.id == job.subscription)
                    .values(last_success_at=now, failures=0)
                )
                await deliverylog.write(conn, [note("sent", None, status=result.status)])
                await self.ch.emit(
                    job.tenant, "push.sent", {**event, "status": result.status}, conn
                )
            elif result.gone:
                await conn.execute(
                    delete(push_outbox).where(_O.subscription_id == job.subscription)
                )
                await conn.execute(delete(push_subscriptions).where(_S.id == job.subscription))
                await deliverylog.write(
                    conn, [note("failed", "gone", status=result.status, removed=True)]
                )
                await self.ch.emit(job.tenant, "push.failed", {**event, "reason": "gone"}, conn)
                log.info("push subscription %d gone (%s); removed", job.subscription, result.status)
            elif result.retry and job.attempts < self.ch.settings.push_max_attempts:
                retry_at = now + timedelta(seconds=self._backoff(job.attempts, result.retry_after))
                await conn.execute(
                    update(push_outbox)
                    .where(mine)
                    .values(
                        state="pending", due_at=retry_at, lease_until=None, last_error=result.reason
                    )
                )
                await deliverylog.write(
                    conn,
                    [
                        note(
                            "failed",
                            "retrying",
                            status=result.status,
                            error=result.reason,
                            attempt=job.attempts,
                            retry_at=format_time(retry_at),
                        )
                    ],
                )
                await self.ch.emit(job.tenant, "push.failed", {**event, "reason": "retrying"}, conn)
            else:
                await conn.execute(delete(push_outbox).where(mine))
                await conn.execute(
                    update(push_subscriptions)
                    .where(_S.id == job.subscription)
                    .values(failures=_S.failures + 1)
                )
                await deliverylog.write(
                    conn,
                    [
                        note(
                            "failed",
                            "gave_up" if result.retry else "refused",
                            status=result.status,
                            error=result.reason,
                            attempt=job.attempts,
                        )
                    ],
                )
                await self.ch.emit(
                    job.tenant,
                    _gave_up(result.retry),
                    {**event, "reason": "gave_up" if result.retry else "refused"},
                    conn,
                )

    def _backoff(self, attempts: int, retry_after: float | None) -> float:
        s = self.ch.settings
        delay = min(s.push_retry_base * 2 ** max(0, attempts - 1), s.push_retry_max)
        delay *= random.uniform(0.8, 1.2)
        if retry_after is not None:
            delay = max(delay, retry_after)
        return float(min(delay, s.push_retry_max))


async def _is_read(conn: Any, job: Job) -> bool:
    """Not in ``job.user``'s unread inbox now: read, archived or snoozed — the read rule is
    :func:`tidings.store.readstate.status_clause`'s (one rule: receipts, watermark, actor)."""
    mark = await readstate.watermark(conn, job.tenant, job.user)
    _N, _R = notifications.c, receipts.c
    joined = notifications.outerjoin(
        receipts, and_(_R.tenant_id == _N.tenant_id, _R.seq == _N.seq, _R.user_id == job.user)
    )
    unread = (
        await conn.execute(
            select(readstate.status_clause("unread", mark, job.user))
            .select_from(joined)
            .where(_N.tenant_id == job.tenant, _N.seq == job.seq)
        )
    ).scalar_one_or_none()
    return unread is not None and not unread


def _gave_up(retried: bool) -> str:
    """The webhook event of a push that ends unsent: ``push.gave_up`` after its retries,
    ``push.failed`` when the push service refused it outright."""
    return "push.gave_up" if retried else "push.failed"
