"""The tidings service: the one place where store, hub and broker meet.

Publish path (invariant 1, durable before acknowledged): validate → one write transaction
assigns the seq and commits → only then offered to the local hub and announced on the broker
(a transactional broker — PostgreSQL NOTIFY — announces inside the transaction instead, so the
announcement leaves exactly at commit).
A broker failure never fails a publish: the store has it, and every hub catches up by seq.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings import auth, keyring
from tidings.apikeys import ApiKeys
from tidings.config import Settings
from tidings.delivery.broker import Broker, Envelope
from tidings.delivery.hub import Hub
from tidings.domain.notifications import NewNotification, Notification, format_time, utcnow
from tidings.domain.principals import KeyPrincipal, Principal
from tidings.domain.readstate import UnreadCount
from tidings.errors import Code, NotFound, PayloadTooLarge, Unauthorized, ValidationFailed
from tidings.hooks import (
    AfterPublish,
    EventSink,
    Hooks,
    MutedTypes,
    MutedTypesMany,
    UserEraser,
    muted_by_all,
    muted_many_by_all,
)
from tidings.metrics import Metrics
from tidings.ratelimit import RateLimiter
from tidings.store import Store
from tidings.store import groups as gq
from tidings.store import notifications as nq
from tidings.store import readstate as rq
from tidings.store import signingkeys as kq
from tidings.store import tenants as tq
from tidings.store.groupcommit import GroupCommitter
from tidings.templates import Templates

log = logging.getLogger(__name__)
_Item = TypeVar("_Item")  # a feed item or a card

SNAPSHOT_SIZE = 5
SNOOZE_MAX_DAYS = 366  # how far ahead a snooze may end (issue 10)


@dataclass
class Transaction:
    """A write transaction that may publish. Notifications go out only after it commits."""

    conn: AsyncConnection
    service: Tidings
    published: list[Notification] = field(default_factory=list)

    async def publish(
        self,
        tenant: str,
        new: NewNotification,
        *,
        idempotency_key: str | None = None,
        at: datetime | None = None,
    ) -> tuple[Notification, bool]:
        """``at`` backdates ``created_at`` (the demo's seeded history); the seq is the next."""
        new = (await self.service.templates.apply(tenant, [new], self.conn))[0]
        self.service.check_limits(new)
        stored, created = await nq.insert(
            self.conn, tenant, new, now=at or utcnow(), idempotency_key=idempotency_key
        )
        if created:
            self.published.append(stored)
        return stored, created


def audience_targets(new: NewNotification) -> int:
    """Rows the audience adds to the store: one per listed user and role (none: everyone)."""
    audience = new.audience
    return 0 if audience is None else len(audience.users) + len(audience.roles)


class Tidings:
    """Application service. Routers, the demo, channels and the CLI call only this."""

    def __init__(
        self, settings: Settings, store: Store, broker: Broker, hub: Hub, metrics: Metrics
    ) -> None:
        self.settings = settings
        self.store = store
        self.broker = broker
        self.hub = hub
        self.metrics = metrics
        # The extensions' seams (tidings.hooks), set through plug() by the lifespan.
        self.after_publish: list[AfterPublish] = []
        self.muted_types: MutedTypes | None = None
        self.muted_types_many: MutedTypesMany | None = None
        self.user_erasers: list[UserEraser] = []
        self.event_sinks: list[EventSink] = []
        self.limiter = RateLimiter(settings.publish_rate, settings.shared_limits_url)
        self.instance_id = uuid.uuid4().hex[:12]
        self.signing_keys = keyring.SigningKeys(store, ttl=settings.signing_key_cache)
        self.api_keys = ApiKeys(store, ttl=settings.api_key_cache)
        self.tokens = auth.TokenCache(settings.token_cache)  # verified stream tokens (issue 8)
        self._secrets: keyring.ServerSecrets | None = None
        self.templates = Templates(store, settings)  # per-type templates (issue 10 item 5)
        self.committer = GroupCommitter(
            store, in_transaction=self._announce_in_transaction, announce=self._deliver
        )

    def plug(self, hooks: Sequence[Hooks]) -> None:
        """Install the extensions' hooks: every ``after_publish`` and ``erase_user`` in order;
        the muted types of all of them together (:func:`tidings.hooks.muted_by_all`)."""
        for plugged in hooks:
            self.after_publish.extend(plugged.after_publish)
            self.user_erasers.extend(plugged.erase_user)
            self.event_sinks.extend(plugged.on_event)
        self.muted_types = muted_by_all([h.muted_types for h in hooks if h.muted_types])
        self.muted_types_many = muted_many_by_all(hooks)

    async def load_secrets(self) -> keyring.ServerSecrets:
        """Resolve the token secret and operator key (settings, else generated in the store).
        The lifespan and the CLI call this once, before anything signs or verifies."""
        self._secrets = await keyring.resolve(self.settings, self.store, utcnow())
        return self._secrets

    @property
    def secrets(self) -> keyring.ServerSecrets:
        """The effective server secrets: the one place every signer and verifier reads."""
        if self._secrets is None:
            raise RuntimeError("Tidings.load_secrets() has not run")
        return self._secrets

    @property
    def secret(self) -> str:
        """The token secret: stream tokens, demo sessions, unsubscribe links."""
        return self.secrets.token.value

    async def rate_limit(
        self, key: KeyPrincipal, cost: int = 1, *, items: Sequence[NewNotification] = ()
    ) -> None:
        """Charge ``key``'s publish limit (``TIDINGS_PUBLISH_RATE``); 429 when it is spent.

        With ``items`` (what the request will publish, or schedule as reminders) the charge is
        :meth:`publish_cost` instead of ``cost``, and a request naming more audience targets
        than ``TIDINGS_MAX_REQUEST_TARGETS`` is refused (413) before anything is charged. A
        charge never exceeds the window: the largest request spends all of it, and is accepted
        once the window is empty.
        """
        if items:
            self.check_targets(items)
            cost = self.publish_cost(items)
        await self.limiter.hit("publish", key.key_id, min(cost, self.limiter.item.amount))

    # -- publishing ----------------------------------------------------------------------------

    def publish_cost(self, items: Sequence[NewNotification]) -> int:
        """1 per notification + 1 per started ``TIDINGS_PUBLISH_COST_TARGETS`` audience targets
        (each target is a row written with the notification and matched on every read)."""
        targets = sum(audience_targets(item) for item in items)
        return len(items) + -(-targets // self.settings.publish_cost_targets)

    def check_targets(self, items: Sequence[NewNotification]) -> None:
        """413 ``too_many_targets`` beyond the per-notification or per-request target caps."""
        cap = self.settings.max_request_targets
        total = 0
        for item in items:
            self.check_audience(item)
            total += audience_targets(item)
        if total > cap:
            raise PayloadTooLarge(
                f"These notifications name {total} audience targets together; at most {cap} "
                "are accepted in one request.",
                code=Code.TOO_MANY_TARGETS,
            )

    def check_audience(self, new: NewNotification) -> None:
        cap = self.settings.max_audience_targets
        count = audience_targets(new)
        if count > cap:
            raise PayloadTooLarge(
                f"The audience names {count} users and roles; at most {cap} are accepted.",
                code=Code.TOO_MANY_TARGETS,
            )

    def check_limits(self, new: NewNotification) -> None:
        s = self.settings
        self.check_audience(new)
        if len(new.title) > s.max_title_chars:
            raise ValidationFailed(f"title is longer than {s.max_title_chars} characters.")
        if len(new.body) > s.max_body_chars:
            raise ValidationFailed(f"body is longer than {s.max_body_chars} characters.")
        size = len(orjson.dumps(new.data))
        if size > s.max_data_bytes:
            raise PayloadTooLarge(
                f"data is {size} bytes encoded; at most {s.max_data_bytes} are accepted."
            )

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """A unit of work: domain changes and their notifications commit together."""
        async with self.store.write() as conn:
            tx = Transaction(conn, self)
            yield tx
            in_tx = await self._announce_in_transaction(conn, tx.published)
        await self._announce(tx.published, broadcast=not in_tx)

    async def _announce_in_transaction(
        self, conn: AsyncConnection, published: list[Notification]
    ) -> bool:
        """Let a transactional broker (PostgreSQL NOTIFY) announce at commit. True if it did."""
        hook = getattr(self.broker, "publish_in_transaction", None)
        if hook is None or not published:
            return False
        done: bool = await hook(conn, [self._envelope(item) for item in published])
        return done

    def _reaches_others(self) -> bool:
        """Whether a message this instance publishes reaches anyone else (a broker that cannot
        tell, Redis or PostgreSQL, always may)."""
        reaches = getattr(self.broker, "reaches_others", None)
        return True if reaches is None else bool(reaches(self.instance_id))

    def _envelope(self, item: Notification) -> bytes:
        return Envelope(
            "n", item.tenant, item.seq, payload=item.encode(), origin=self.instance_id
        ).encode()

    async def publish(
        self, tenant: str, new: NewNotification, *, idempotency_key: str | None = None
    ) -> tuple[Notification, bool]:
        """Store and announce one notification; publishes arriving together commit together
        (:mod:`tidings.store.groupcommit`). Answered after the commit. Without a title it is
        rendered from its type's templates first (:mod:`tidings.templates`)."""
        new = (await self.templates.apply(tenant, [new]))[0]
        self.check_limits(new)
        started = time.perf_counter()
        results = await self.committer.publish(tenant, [new], [idempotency_key])
        self.metrics.publish_seconds.observe(time.perf_counter() - started)
        await self._after_publish(results)
        return results[0]

    async def publish_many(
        self,
        tenant: str,
        items: Sequence[NewNotification],
        *,
        idempotency_key: str | None = None,
        keys: Sequence[str | None] | None = None,
    ) -> list[tuple[Notification, bool]]:
        """Store and announce up to a batch of notifications: all of them, or none.
        ``keys``: one idempotency key per item, instead of ``<idempotency_key>#<index>``."""
        items = await self.templates.apply(tenant, items)
        for item in items:
            self.check_limits(item)
        self.check_targets(items)
        if keys is None:
            keys = [
                f"{idempotency_key}#{i}" if idempotency_key else None for i in range(len(items))
            ]
        started = time.perf_counter()
        results = await self.committer.publish(tenant, items, keys)
        self.metrics.publish_seconds.observe(time.perf_counter() - started)
        await self._after_publish(results)
        return results

    async def _after_publish(self, results: list[tuple[Notification, bool]]) -> None:
        published = [item for item, created in results if created]
        if published:
            await self._run_hooks(published)

    async def _announce(self, published: list[Notification], *, broadcast: bool = True) -> None:
        if published:
            await self._deliver(published, broadcast)
            await self._run_hooks(published)

    async def _deliver(self, published: list[Notification], broadcast: bool) -> None:
        """Offer committed notifications to the local hub and, unless a transactional broker
        announced them at commit, to the broker; in the order given (seq order per tenant)."""
        if not published:
            return
        self.metrics.published.inc(len(published))
        # Announced inside the transaction, or nobody but this instance listens (the in-process
        # broker of a lone instance): no envelope to build.
        broadcast = broadcast and self._reaches_others()
        for item in published:
            await self.hub.deliver(item)
            if not broadcast:
                continue
            try:
                await self.broker.publish(self._envelope(item), origin=self.instance_id)
            except Exception as error:  # the store has it; hubs catch up by seq
                self.metrics.broker_errors.inc()
                log.warning(
                    "broker publish failed tenant=%s seq=%d: %r", item.tenant, item.seq, error
                )

    async def _run_hooks(self, published: list[Notification]) -> None:
        for hook in self.after_publish:
            try:
                await hook(published)
            except Exception:
                log.exception("after-publish hook failed")

    async def emit(
        self, tenant: str, event: str, data: dict[str, Any], conn: AsyncConnection | None = None
    ) -> None:
        """Tell the extensions' event sinks (:data:`tidings.hooks.EventSink`) that ``event``
        happened: inside the caller's write transaction when ``conn`` is given (a savepoint,
        so a failing sink leaves the transaction usable), else after its commit. Never raises."""
        for sink in self.event_sinks:
            try:
                if conn is None:
                    await sink(None, tenant, event, data)
                else:
                    async with conn.begin_nested():
                        await sink(conn, tenant, event, data)
            except Exception:
                log.exception("event sink failed event=%s tenant=%s", event, tenant)

    async def _ephemeral(self, principal: Principal, event: str, data: dict[str, Any]) -> None:
        await self._ephemeral_to(principal.tenant, principal.user, event, data)

    async def _ephemeral_to(self, tenant: str, user: str, event: str, data: dict[str, Any]) -> None:
        """A read-state event to every stream of ``user`` (here, and through the broker on the
        other instances): the one path of ``read``/``archived``/``unread``/``unarchived``/
        ``snoozed``/``unsnoozed``, so whatever the hub keeps per user follows them all."""
        payload = orjson.dumps(data)
        self.hub.deliver_ephemeral(tenant, user, event, payload)
        envelope = Envelope(
            "e",
            tenant,
            user=user,
            event=event,
            payload=payload,
            origin=self.instance_id,
        )
        try:
            await self.broker.publish(envelope.encode(), origin=self.instance_id)
        except Exception as error:
            self.metrics.broker_errors.inc()
            log.warning("broker publish of %s failed: %r", event, error)
        await self.emit(tenant, f"notification.{event}", {"user": user, **data})  # webhooks

    async def preferences_changed(self, tenant: str, user: str | None = None) -> None:
        """After a commit that changed a user's (``user`` None: any of the tenant's) preferences
        or removed them: this instance's caches forget at once, the others on the broker's
        ``p`` message (internal, never sent to a browser). Call it after every such commit."""
        self.hub.preferences_changed(tenant, user)
        envelope = Envelope("p", tenant, user=user or "", origin=self.instance_id)
        try:
            await self.broker.publish(envelope.encode(), origin=self.instance_id)
        except Exception as error:
            self.metrics.broker_errors.inc()
            log.warning("broker publish of a preferences change failed: %r", error)

    # -- feed and read state -------------------------------------------------------------------

    async def muted(self, principal: Principal) -> frozenset[str]:
        """Types ``principal`` switched off in-app: left out of their feed, count and stream."""
        if self.muted_types is None:
            return frozenset()
        return await self.muted_types(principal)

    async def muted_many(self, principals: Sequence[Principal]) -> list[frozenset[str]]:
        """:meth:`muted` of each of ``principals``, in one call (the stream opener's batch)."""
        if self.muted_types_many is None:
            return [frozenset()] * len(principals)
        return await self.muted_types_many(principals)

    async def feed(
        self,
        principal: Principal,
        *,
        status: rq.Status,
        type_: str | None,
        before: int | None,
        limit: int,
    ) -> tuple[list[rq.FeedItem], int | None]:
        return await self._page(rq.feed, principal, status, type_, before, limit)

    async def grouped_feed(
        self,
        principal: Principal,
        *,
        status: rq.Status,
        type_: str | None,
        before: int | None,
        limit: int,
    ) -> tuple[list[gq.Card], int | None]:
        """The feed with one card per group (issue 10 item 3; :mod:`tidings.store.groups`)."""
        return await self._page(gq.grouped_feed, principal, status, type_, before, limit)

    async def _page(
        self,
        query: Callable[..., Awaitable[tuple[list[_Item], int | None]]],
        principal: Principal,
        status: rq.Status,
        type_: str | None,
        before: int | None,
        limit: int,
    ) -> tuple[list[_Item], int | None]:
        """One page of ``query`` (the feed, or its cards) for ``principal``: what the user
        may see, without the types they muted, in one read transaction."""
        muted = await self.muted(principal)
        async with self.store.read() as conn:
            return await query(
                conn,
                principal.tenant,
                principal.user,
                sorted(principal.roles),
                status=status,
                type_=type_,
                before=before,
                limit=limit,
                exclude_types=muted,
            )

    async def mark_groups_read(self, principal: Principal, groups: Sequence[str]) -> UnreadCount:
        """Marks read every notification of ``groups`` the user may see: the ``read`` event
        carries their ids, so streams stay exact. A group with none of them is not found."""
        roles = sorted(principal.roles)
        async with self.store.read() as conn:
            ids, missing = await gq.group_seqs(
                conn, principal.tenant, principal.user, roles, groups
            )
        if len(ids) > gq.GROUP_IDS_MAX:
            raise ValidationFailed(
                f"These groups hold more than {gq.GROUP_IDS_MAX} notifications; "
                'mark them with {"all": true} and up_to.'
            )
        if missing:
            raise NotFound(
                f"No notification of group {', '.join(missing[:20])} for this user.",
                code=Code.NOTIFICATION_NOT_FOUND,
                extra={"groups": missing[:100]},
            )
        return await self.mark_read(principal, ids)

    async def unread(self, principal: Principal) -> UnreadCount:
        muted = await self.muted(principal)
        async with self.store.read() as conn:
            return await rq.unread_count(
                conn, principal.tenant, principal.user, sorted(principal.roles), muted
            )

    async def snapshot(self, principal: Principal) -> dict[str, Any]:
        """What a client needs to be whole: unread count, latest seq, the latest five."""
        roles = sorted(principal.roles)
        muted = await self.muted(principal)
        async with self.store.read() as conn:
            latest = await nq.latest_seq(conn, principal.tenant)
            count = await rq.unread_count(conn, principal.tenant, principal.user, roles, muted)
            items, _ = await rq.feed(
                conn,
                principal.tenant,
                principal.user,
                roles,
                limit=SNAPSHOT_SIZE,
                exclude_types=muted,
            )
        return {
            "unread": count.public(),
            "latest_seq": latest,
            "latest": [i.public() for i in items],
            "user": principal.user,  # whose stream: notifications with this actor are read
        }

    async def mark_read(self, principal: Principal, ids: Sequence[int]) -> UnreadCount:
        roles = sorted(principal.roles)
        async with self.store.write() as conn:
            await rq.mark_read(conn, principal.tenant, principal.user, roles, ids, now=utcnow())
        count = await self.unread(principal)
        await self._ephemeral(principal, "read", {"ids": list(ids), "unread": count.public()})
        return count

    async def mark_all_read(self, principal: Principal, up_to: int | None) -> UnreadCount:
        async with self.store.write() as conn:
            latest = await nq.latest_seq(conn, principal.tenant)
            mark = latest if up_to is None else min(up_to, latest)
            await rq.mark_all_read(conn, principal.tenant, principal.user, mark, now=utcnow())
        count = await self.unread(principal)
        await self._ephemeral(
            principal, "read", {"all": True, "up_to": mark, "unread": count.public()}
        )
        return count

    async def archive(self, principal: Principal, ids: Sequence[int]) -> UnreadCount:
        roles = sorted(principal.roles)
        async with self.store.write() as conn:
            await rq.archive(conn, principal.tenant, principal.user, roles, ids, now=utcnow())
        count = await self.unread(principal)
        await self._ephemeral(principal, "archived", {"ids": list(ids), "unread": count.public()})
        return count

    async def mark_unread(self, principal: Principal, ids: Sequence[int]) -> UnreadCount:
        """Unread again (a snooze on them ends); event ``unread`` carries the items (the newest
        five), so a client puts back one it had taken out as snoozed."""
        return await self._restore(principal, ids, "unread", rq.mark_unread)

    async def unarchive(self, principal: Principal, ids: Sequence[int]) -> UnreadCount:
        """Back in the inbox; event ``unarchived`` carries the items (the newest five)."""
        return await self._restore(principal, ids, "unarchived", rq.unarchive)

    async def snooze(
        self, principal: Principal, ids: Sequence[int], until: datetime
    ) -> UnreadCount:
        """Out of the inbox and the count until ``until`` (in the future, at most
        ``SNOOZE_MAX_DAYS`` ahead); event ``snoozed``. The snooze sweep brings them back."""
        now = utcnow()
        if until.tzinfo is None:
            raise ValidationFailed("until needs a time zone (e.g. 2026-12-01T09:00:00Z).")
        if until <= now:
            raise ValidationFailed("until must be in the future.")
        if until > now + timedelta(days=SNOOZE_MAX_DAYS):
            raise ValidationFailed(f"until is at most {SNOOZE_MAX_DAYS} days ahead.")
        roles = sorted(principal.roles)
        async with self.store.write() as conn:
            await rq.snooze(conn, principal.tenant, principal.user, roles, ids, until=until)
        count = await self.unread(principal)
        await self._ephemeral(
            principal,
            "snoozed",
            {"ids": list(ids), "until": format_time(until), "unread": count.public()},
        )
        return count

    async def _restore(
        self, principal: Principal, ids: Sequence[int], event: str, change: Any
    ) -> UnreadCount:
        roles = sorted(principal.roles)
        async with self.store.write() as conn:
            await change(conn, principal.tenant, principal.user, roles, ids, now=utcnow())
        muted = await self.muted(principal)
        async with self.store.read() as conn:
            items = await rq.items(conn, principal.tenant, principal.user, roles, ids)
            count = await rq.unread_count(conn, principal.tenant, principal.user, roles, muted)
        shown = [i.public() for i in items if i.notification.type not in muted]
        await self._ephemeral(
            principal,
            event,
            {"ids": list(ids), "items": shown[:SNAPSHOT_SIZE], "unread": count.public()},
        )
        return count

    async def wake_snoozed(
        self,
        now: datetime,
        *,
        limit: int = 200,
        on_claim: Callable[[AsyncConnection, list[rq.Woken]], Awaitable[None]] | None = None,
    ) -> list[rq.Woken]:
        """End the snoozes due at ``now`` (at most ``limit``): each exactly once across
        instances (claimed in this write transaction, see ``store.readstate``). ``on_claim``
        runs in that transaction (channels plan the push there, so it is exactly once too).
        After the commit each user's streams get ``unsnoozed`` with the items, unread again
        (no ``unread`` count in it: the client adds the ids to its count)."""
        async with self.store.write() as conn:
            woken = await rq.claim_due_snoozes(conn, now, limit=limit)
            if woken and on_claim is not None:
                await on_claim(conn, woken)
        by_user: dict[tuple[str, str], list[int]] = {}
        for item in woken:
            by_user.setdefault((item.tenant, item.user), []).append(item.seq)
        for (tenant, user), seqs in by_user.items():
            async with self.store.read() as conn:
                items = await rq.items(conn, tenant, user, None, seqs)
            await self._ephemeral_to(
                tenant,
                user,
                "unsnoozed",
                {"ids": sorted(seqs), "items": [i.public() for i in items[:SNAPSHOT_SIZE]]},
            )
            log.info("snooze ended tenant=%s user=%s ids=%d", tenant, user, len(seqs))
        return woken

    # -- tenants, keys, tokens -----------------------------------------------------------------

    async def create_tenant(self, tenant_id: str, name: str) -> tq.Tenant:
        async with self.store.write() as conn:
            return await tq.create_tenant(conn, tenant_id, name, now=utcnow())

    async def list_tenants(self) -> list[tq.Tenant]:
        async with self.store.read() as conn:
            return await tq.list_tenants(conn)

    async def create_key(
        self, tenant_id: str, name: str, scopes: list[str]
    ) -> tuple[tq.ApiKey, str]:
        async with self.store.write() as conn:
            return await tq.create_key(conn, tenant_id, name, scopes, now=utcnow())

    async def list_keys(self, tenant_id: str) -> list[tq.ApiKey]:
        async with self.store.read() as conn:
            await tq.get_tenant(conn, tenant_id)
            return await tq.list_keys(conn, tenant_id)

    async def revoke_key(self, key_id: str, *, tenant_id: str | None = None) -> tq.ApiKey:
        async with self.store.write() as conn:
            revoked = await tq.revoke_key(conn, key_id, now=utcnow(), tenant_id=tenant_id)
        self.api_keys.forget(key_id)  # at once here; elsewhere within api_key_cache seconds
        return revoked

    def mint_token(
        self,
        tenant: str,
        user: str,
        roles: Sequence[str] = (),
        *,
        ttl: int | None = None,
        email: str | None = None,
        locale: str | None = None,
    ) -> tuple[str, Any]:
        lifetime = ttl or self.settings.token_default_ttl
        if not 1 <= lifetime <= self.settings.token_max_ttl:
            raise ValidationFailed(
                f"ttl must be between 1 and {self.settings.token_max_ttl} seconds."
            )
        if not tq.TENANT_ID.match(tenant):
            raise ValidationFailed("tenant is not a valid tenant id.")
        return auth.mint(
            self.secret,
            tenant=tenant,
            user=user,
            roles=list(roles),
            ttl=lifetime,
            email=email,
            locale=locale,
        )

    async def verify_token(self, token: str) -> Principal:
        """The principal of a stream token. A token whose header names a ``kid`` is checked
        only with that tenant signing key and only for its tenant; any other with the server
        secret."""
        key = auth.token_key(token)
        hit = self.tokens.get(token, key=key)  # verified before (until its exp): auth.TokenCache
        kid = hit[1] if hit is not None else auth.key_id(token)
        found = None if kid is None else await self.signing_keys.lookup(kid)
        if kid is not None and found is None:
            self.tokens.forget(token)
            raise Unauthorized(
                "The token's signing key is unknown or revoked.", code=Code.INVALID_CREDENTIALS
            )
        if hit is not None:
            return hit[0]
        max_ttl = self.settings.token_max_ttl
        if found is None:
            principal = auth.verify(self.secret, token, max_ttl=max_ttl)
        else:
            principal = auth.verify(found[1], token, max_ttl=max_ttl, tenant=found[0])
        self.tokens.put(token, principal, kid, key=key)
        return principal

    async def create_signing_key(self, tenant_id: str, name: str) -> tuple[kq.SigningKey, str]:
        async with self.store.write() as conn:
            return await kq.create(conn, tenant_id, name, now=utcnow())

    async def list_signing_keys(self, tenant_id: str) -> list[kq.SigningKey]:
        async with self.store.read() as conn:
            await tq.get_tenant(conn, tenant_id)
            return await kq.list_for(conn, tenant_id)

    async def revoke_signing_key(self, kid: str) -> kq.SigningKey:
        """Revoke at once on this instance; other instances within ``signing_key_cache`` s."""
        async with self.store.write() as conn:
            revoked = await kq.revoke(conn, kid, now=utcnow())
        self.signing_keys.forget(kid)
        return revoked

    async def prune(self) -> int:
        cutoff = utcnow() - timedelta(days=self.settings.retention_days)
        async with self.store.write() as conn:
            return await nq.prune(conn, cutoff)
