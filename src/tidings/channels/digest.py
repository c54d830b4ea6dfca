"""E-mail digests: per the user's cadence, one e-mail of what is still unread — at most once per
user and period, with any number of instances and across restarts.

Periods are named in the user's time zone: ``daily:2026-11-25`` is due from the digest hour
(default 18:00 local) until local midnight; ``hourly:2026-11-25T18`` for that local hour.

At most once: a ``digest_runs`` row keyed ``(tenant, user, period)`` is the lease. The instance
whose ``INSERT … ON CONFLICT DO NOTHING`` inserts it (or that takes over a ``sending`` /
``failed`` row whose lease ran out, for a retry with backoff) sends; everyone else skips. The
row ends ``sent`` (with the seqs it held) or ``empty`` (nothing unread: no e-mail). Only a
crash after the SMTP server accepted the message but before ``sent`` was written can repeat
it, after the lease (10 min); the Message-ID is the same, so mail systems can drop it.

What goes in: notifications visible to the user (their recorded roles), unread *when the
e-mail is composed* (read or archived ones are left out), whose type is on for e-mail, newer
than the last digest (or, for the first one, than one period ago) — newest first, at most
``TIDINGS_DIGEST_MAX_ITEMS``, grouped by type.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, func, select, tuple_, update

from tidings.channels import deliverylog, mailer, profiles, unsubscribe
from tidings.channels._sql import upsert
from tidings.channels.clock import as_utc
from tidings.channels.deliverylog import entry
from tidings.channels.preferences import Effective, TenantPreferences
from tidings.channels.profiles import Profile
from tidings.channels.tables import digest_runs
from tidings.domain.notifications import Notification
from tidings.store import notifications as nq
from tidings.store import readstate as rq
from tidings.store import templates
from tidings.store import tenants as tq
from tidings.store.erasure import hold_tenant

if TYPE_CHECKING:
    from tidings.channels.deps import WorkerDeps

log = logging.getLogger(__name__)
_D = digest_runs.c
MAX_ATTEMPTS = 5
LEASE = timedelta(minutes=10)


def period_of(now: datetime, prefs: Effective) -> tuple[str, timedelta] | None:
    """The digest period due at ``now`` for these preferences, and its length (or ``None``)."""
    digest = prefs.digest
    local = now.astimezone(prefs.zone)
    if digest.cadence == "hourly":
        return f"hourly:{local:%Y-%m-%dT%H}", timedelta(hours=1)
    if digest.cadence == "daily" and local.hour >= digest.hour:
        return f"daily:{local:%Y-%m-%d}", timedelta(days=1)
    return None


@dataclass(frozen=True, slots=True)
class Due:
    profile: Profile
    prefs: Effective
    period: str
    length: timedelta


class DigestRunner:
    def __init__(self, deps: WorkerDeps) -> None:
        self.ch = deps

    async def run_forever(self) -> None:
        while True:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("digest tick failed (will retry): %r", error)
            with suppress(TimeoutError):
                await asyncio.sleep(self.ch.settings.digest_interval)

    async def tick(self) -> int:
        """Send every digest due now that no instance has sent. Returns how many were sent."""
        if not self.ch.settings.smtp_host:
            return 0
        now = self.ch.clock.now()
        due: list[Due] = []
        async with self.ch.store.read() as conn:
            defaults: dict[str, TenantPreferences] = {}
            for profile in await profiles.with_email(conn):
                if profile.tenant not in defaults:
                    defaults[profile.tenant] = await profiles.tenant_prefs(conn, profile.tenant)
                prefs = profile.effective(defaults[profile.tenant])
                found = period_of(now, prefs) if prefs.master("email") else None
                if found is not None:
                    due.append(Due(profile, prefs, *found))
            settled = await self._settled(conn, due, now)
        sent = 0
        for item in due:
            key = (item.profile.tenant, item.profile.user, item.period)
            if key not in settled and await self.run_one(item, now):
                sent += 1
        return sent

    async def _settled(self, conn: Any, due: list[Due], now: datetime) -> set[tuple[str, str, str]]:
        """Runs that need nothing from us: done, leased by someone, or out of attempts."""
        out: set[tuple[str, str, str]] = set()
        keys = [(d.profile.tenant, d.profile.user, d.period) for d in due]
        for start in range(0, len(keys), 200):
            chunk = keys[start : start + 200]
            rows = await conn.execute(
                select(
                    _D.tenant_id, _D.user_id, _D.period, _D.state, _D.lease_until, _D.attempts
                ).where(tuple_(_D.tenant_id, _D.user_id, _D.period).in_(chunk))
            )
            for r in rows:
                open_ = r.state in ("sending", "failed") and as_utc(r.lease_until) < now
                if not open_ or r.attempts >= MAX_ATTEMPTS:
                    out.add((r.tenant_id, r.user_id, r.period))
        return out

    async def _claim(self, d: Due, now: datetime) -> bool:
        tenant, user = d.profile.tenant, d.profile.user
        me = self.ch.instance
        async with self.ch.store.write() as conn:
            stmt = upsert(conn)(digest_runs).values(
                tenant_id=tenant,
                user_id=user,
                period=d.period,
                state="sending",
                owner=me,
                lease_until=now + LEASE,
                attempts=1,
                created_at=now,
            )
            inserted = await conn.execute(stmt.on_conflict_do_nothing())
            if inserted.rowcount == 1:
                return True
            taken = await conn.execute(
                update(digest_runs)
                .where(
                    _D.tenant_id == tenant,
                    _D.user_id == user,
                    _D.period == d.period,
                    _D.state.in_(("sending", "failed")),
                    _D.lease_until < now,
                    _D.attempts < MAX_ATTEMPTS,
                )
                .values(
                    state="sending", owner=me, lease_until=now + LEASE, attempts=_D.attempts + 1
                )
            )
            return bool(taken.rowcount == 1)

    async def run_one(self, d: Due, now: datetime) -> bool:
        """Claim, compose and send one digest. ``True`` when an e-mail went out."""
        if not await self._claim(d, now):
            return False
        tenant, user = d.profile.tenant, d.profile.user
        mine = and_(
            _D.tenant_id == tenant,
            _D.user_id == user,
            _D.period == d.period,
            _D.owner == self.ch.instance,
            _D.state == "sending",
        )
        try:
            unread, more, read, email_off, latest, name, words = await self._collect(d, now)
            if unread:
                settings = self.ch.settings
                secret = self.ch.secret()
                message = mailer.digest_message(
                    settings,
                    to=d.profile.email or "",
                    tenant_name=name,
                    items=unread,
                    more=more,
                    unsubscribe=unsubscribe.link(settings.public_url, secret, tenant, user),
                    message_key=f"{tenant}/{user}/{d.period}",
                    now=now,
                    locale=d.prefs.user.locale or d.prefs.tenant.locale,  # as set (issue 10)
                    overrides=words,
                )
                await mailer.send(message, settings)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.warning(
                "digest failed tenant=%s user=%s period=%s: %r", tenant, user, d.period, error
            )
            async with self.ch.store.write() as conn:
                attempts = (await conn.execute(select(_D.attempts).where(mine))).scalar() or 1
                await conn.execute(
                    update(digest_runs)
                    .where(mine)
                    .values(
                        state="failed",
                        last_error=repr(error)[:500],
                        lease_until=now + timedelta(minutes=2 ** int(attempts)),
                    )
                )
            return False
        at = self.ch.clock.now()

        def note(n: Notification, status: Any, reason: str | None = None) -> dict[str, Any]:
            return entry(
                tenant,
                n.seq,
                "email",
                status,
                at=at,
                user=user,
                target="email",
                reason=reason,
                detail={"period": d.period},
            )

        async with self.ch.store.write() as conn:
            await hold_tenant(conn, tenant)  # an erasure in flight finishes first
            run = and_(_D.tenant_id == tenant, _D.user_id == user, _D.period == d.period)
            if (await conn.execute(select(_D.period).where(run))).first() is None:
                return False  # erased with its user or tenant meanwhile: record nothing
            await conn.execute(
                update(digest_runs)
                .where(mine)
                .values(
                    state="sent" if unread else "empty",
                    last_seq=latest,
                    seqs=[n.seq for n in unread],
                    sent_at=at if unread else None,
                )
            )
            await deliverylog.write(
                conn,
                [note(n, "sent") for n in unread]
                + [note(n, "skipped", "already_read") for n in read]
                + [note(n, "skipped", "preference") for n in email_off],
            )
            if unread:  # webhooks
                sent = {"user": user, "period": d.period, "ids": [n.seq for n in unread]}
                await self.ch.emit(tenant, "digest.sent", sent, conn)
        if unread:
            log.info(
                "digest sent tenant=%s user=%s period=%s items=%d",
                tenant,
                user,
                d.period,
                len(unread),
            )
        return bool(unread)

    async def _collect(
        self, d: Due, now: datetime
    ) -> tuple[
        list[Notification],
        bool,
        list[Notification],
        list[Notification],
        int,
        str,
        dict[str, dict[str, str]],
    ]:
        """(unread for e-mail, more?, read meanwhile, e-mail off, latest seq, tenant name, the
        tenant's overrides of the digest's strings)."""
        tenant, user, roles = d.profile.tenant, d.profile.user, list(d.profile.roles)
        limit = self.ch.settings.digest_max_items
        async with self.ch.store.read() as conn:
            latest = await nq.latest_seq(conn, tenant)
            name = (await tq.get_tenant(conn, tenant)).name
            words = await templates.overrides(conn, tenant)
            after = (
                await conn.execute(
                    select(func.max(_D.last_seq)).where(
                        _D.tenant_id == tenant, _D.user_id == user, _D.state.in_(("sent", "empty"))
                    )
                )
            ).scalar_one_or_none()
            since = None if after is not None else now - d.length

            async def window(status: rq.Status, cap: int) -> list[Notification]:
                found: list[Notification] = []
                before: int | None = latest + 1
                while before is not None and len(found) < cap:
                    page, before = await rq.feed(
                        conn, tenant, user, roles, status=status, before=before, limit=100
                    )
                    for fi in page:
                        n = fi.notification
                        if (after is not None and n.seq <= after) or (
                            since is not None and as_utc(n.created_at) < since
                        ):
                            return found
                        found.append(n)
                return found

            unread = await window("unread", limit * 4)
            read = await window("read", 200)
        wanted = [n for n in unread if d.prefs.allows(n.type, "email")]
        email_off = [n for n in unread if not d.prefs.allows(n.type, "email")]
        return wanted[:limit], len(wanted) > limit, read, email_off, latest, name, words
