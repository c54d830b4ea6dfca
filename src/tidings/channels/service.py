"""The channels' operations: the one thing their routers (``channels/api.py``,
``channels/admin.py``) and the in-process demo call.

Each method is one unit of work: it opens its own transaction(s) on the store, takes ``now``
from the channels' one :class:`~tidings.channels.clock.Clock`, and after a committed change of
preferences applies it to open streams (:meth:`StreamPrefs.refresh_streams`). Callers never
open transactions on the channels' tables themselves.

Invariants:

- the tenant is an argument, always taken by the caller from the authenticated principal (or
  the signed unsubscribe token, which is its own credential);
- bad input raises from :mod:`tidings.errors` before anything is written;
- this module does not import :mod:`tidings.channels.runtime`: the runtime hands it narrow
  dependencies (:class:`StreamPrefs`, a key getter), so there is no import cycle.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from tidings.channels import deliverylog, profiles, reminders, subscriptions, unsubscribe, webpush
from tidings.channels._sql import KEEP, Keep
from tidings.channels.catalogue import check_overrides
from tidings.channels.clock import Clock
from tidings.channels.preferences import ChannelSwitches, TenantPreferences, UserPreferences
from tidings.channels.subscriptions import Subscription
from tidings.domain.locales import canonical, is_locale
from tidings.errors import Code, NotFound, Unavailable, ValidationFailed
from tidings.store import notifications as nq
from tidings.store import templates
from tidings.store import tenants as tq

if TYPE_CHECKING:
    from tidings.channels.schemas import ReminderIn
    from tidings.channels.webpush import HostRules, VapidKeys
    from tidings.domain.principals import KeyPrincipal, Principal
    from tidings.service import Tidings


class StreamPrefs(Protocol):
    """What the running channels do for the service around a preferences change."""

    async def note_principal(self, principal: Principal) -> None:
        """Record the e-mail and roles a stream token carries."""
        ...

    async def refresh_streams(self, tenant: str, user: str | None = None) -> None:
        """Apply committed preferences to caches and open streams (one user or a tenant)."""
        ...


@dataclass(frozen=True, slots=True)
class ChannelsService:
    """The channels' operations over one open :class:`~tidings.service.Tidings`."""

    tidings: Tidings
    clock: Clock
    rules: HostRules
    streams: StreamPrefs
    keys: Callable[[], VapidKeys | None]

    # -- who is asking ---------------------------------------------------------------------------

    async def note_principal(self, principal: Principal) -> None:
        await self.streams.note_principal(principal)

    # -- a user's preferences --------------------------------------------------------------------

    async def preferences_view(self, tenant: str, user: str) -> dict[str, Any]:
        """The user's overrides, the tenant's defaults, and what is in effect per type."""
        async with self.tidings.store.read() as conn:
            profile = await profiles.get(conn, tenant, user) or profiles.Profile(tenant, user)
            defaults = await profiles.tenant_prefs(conn, tenant)
        return {
            **profile.public(),
            "locale": profile.prefs.locale,
            "preferences": profile.prefs.model_dump(mode="json", exclude_none=True),
            "tenant_defaults": defaults.model_dump(mode="json", exclude_none=True),
            "effective": profile.effective(defaults).public(),
        }

    async def save_preferences(
        self,
        tenant: str,
        user: str,
        prefs: UserPreferences,
        *,
        time_zone: str | Keep | None = KEEP,
        then_note: Principal | None = None,
    ) -> None:
        """Replace the user's overrides (and time zone when given), then record ``then_note``
        (after the save: a digest never sees a new e-mail with the old cadence), then refresh
        the user's streams."""
        async with self.tidings.store.write() as conn:
            await profiles.save(
                conn, tenant, user, now=self.clock.now(), prefs=prefs, time_zone=time_zone
            )
        if then_note is not None:
            await self.streams.note_principal(then_note)
        await self.streams.refresh_streams(tenant, user)

    # -- the tenant's defaults -------------------------------------------------------------------

    async def tenant_prefs(self, tenant: str) -> TenantPreferences:
        async with self.tidings.store.read() as conn:
            return await profiles.tenant_prefs(conn, tenant)

    async def set_tenant_prefs(self, tenant: str, prefs: TenantPreferences) -> None:
        """Replace the tenant's defaults, then refresh every stream of the tenant here."""
        async with self.tidings.store.write() as conn:
            await profiles.set_tenant_prefs(conn, tenant, prefs, now=self.clock.now())
        await self.streams.refresh_streams(tenant)

    # -- the digest's strings (issue 10 item 5) ----------------------------------------------------

    async def messages(self, tenant: str) -> dict[str, dict[str, str]]:
        """The tenant's overrides of the digest's strings, ``{locale: {key: text}}``."""
        async with self.tidings.store.read() as conn:
            return await templates.overrides(conn, tenant)

    async def set_messages(self, tenant: str, locale: str, messages: dict[str, str]) -> str:
        """Replace the tenant's overrides of ``locale`` (checked first: 422, nothing changes);
        ``{}`` removes them. Returns the canonical locale."""
        if not is_locale(locale):
            raise ValidationFailed(f"{locale!r} is not a BCP 47 language tag (e.g. 'de-AT').")
        try:
            checked = check_overrides(messages)
        except ValueError as error:
            raise ValidationFailed(f"messages: {error}") from error
        tag = canonical(locale)
        async with self.tidings.store.write() as conn:
            await templates.put_overrides(conn, tenant, tag, checked, now=self.clock.now())
        return tag

    # -- users' contact data ---------------------------------------------------------------------

    async def user(self, tenant: str, user: str) -> profiles.Profile:
        async with self.tidings.store.read() as conn:
            found = await profiles.get(conn, tenant, user)
        if found is None:
            raise NotFound(f"No channel data for user {user!r}.", code=Code.USER_NOT_FOUND)
        return found

    async def save_user(
        self,
        tenant: str,
        user: str,
        *,
        email: str | Keep | None = KEEP,
        time_zone: str | Keep | None = KEEP,
        roles: Sequence[str] | Keep = KEEP,
        locale: str | Keep | None = KEEP,
    ) -> profiles.Profile:
        """Save the user's contact data; ``locale`` sets their ``locale`` preference, the rest
        of their preferences unchanged."""
        async with self.tidings.store.write() as conn:
            prefs: UserPreferences | Keep = KEEP
            if not isinstance(locale, Keep):
                stored = await profiles.get(conn, tenant, user)
                mine = stored.prefs if stored is not None else UserPreferences()
                prefs = mine.model_copy(update={"locale": locale})
            return await profiles.save(
                conn,
                tenant,
                user,
                now=self.clock.now(),
                email=email,
                time_zone=time_zone,
                roles=roles,
                prefs=prefs,
            )

    # -- web push --------------------------------------------------------------------------------

    def push_public_key(self) -> str:
        keys = self.keys()
        if keys is None:
            raise Unavailable(
                "The push keys are not loaded yet; retry shortly.", code=Code.PUSH_UNAVAILABLE
            )
        return keys.public

    async def subscriptions_of(self, tenant: str, user: str) -> list[Subscription]:
        async with self.tidings.store.read() as conn:
            return await subscriptions.of_user(conn, tenant, user)

    async def subscribe(
        self,
        tenant: str,
        user: str,
        *,
        endpoint: str,
        p256dh: str,
        auth: str,
        user_agent: str | None,
    ) -> tuple[Subscription, bool]:
        """Store a browser's subscription, checked first (``(saved, created)``); then every
        instance's planner hears that the user can be pushed (``preferences_changed``)."""
        webpush.check_subscription(endpoint, p256dh, auth, self.rules)
        async with self.tidings.store.write() as conn:
            saved = await subscriptions.save(
                conn,
                tenant,
                user,
                endpoint=endpoint,
                p256dh=p256dh,
                auth=auth,
                user_agent=user_agent,
                now=self.clock.now(),
            )
        await self.tidings.preferences_changed(tenant, user)
        return saved

    async def remove_subscription(
        self,
        tenant: str,
        user: str,
        *,
        endpoint: str | None = None,
        subscription_id: int | None = None,
    ) -> int:
        """Forget a subscription by endpoint or id; 404 when the user has no such one."""
        async with self.tidings.store.write() as conn:
            if subscription_id is not None:
                removed = await subscriptions.remove(
                    conn, tenant, user, subscription_id=subscription_id
                )
            else:
                removed = await subscriptions.remove(conn, tenant, user, endpoint=endpoint)
        if not removed:
            raise NotFound(
                "No such push subscription for this user.", code=Code.SUBSCRIPTION_NOT_FOUND
            )
        return removed

    # -- one-click unsubscribe (RFC 8058) ----------------------------------------------------------

    async def unsubscribe_target(self, token: str) -> tuple[str, str]:
        """``(tenant name, user)`` the signed token stands for; nothing changes."""
        tenant, user = unsubscribe.read_token(self.tidings.secret, token)
        async with self.tidings.store.read() as conn:
            name = (await tq.get_tenant(conn, tenant)).name
        return name, user

    async def unsubscribe_email(self, token: str) -> str:
        """Switch the token's user's e-mail channel off; the tenant's name."""
        tenant, user = unsubscribe.read_token(self.tidings.secret, token)
        async with self.tidings.store.write() as conn:
            name = (await tq.get_tenant(conn, tenant)).name
            profile = await profiles.get(conn, tenant, user) or profiles.Profile(tenant, user)
            switches = ChannelSwitches(push=profile.prefs.channels.push, email=False)
            prefs = profile.prefs.model_copy(update={"channels": switches})
            await profiles.save(conn, tenant, user, now=self.clock.now(), prefs=prefs)
        return name

    # -- reminders -------------------------------------------------------------------------------

    async def schedule_reminder(self, key: KeyPrincipal, body: ReminderIn) -> reminders.Reminder:
        """Arm (or re-arm) a reminder, charged to ``key``'s publish rate limit like the
        publish it stands for; 409 ``too_many_reminders`` past the tenant's pending cap."""
        new = reminders.notification(
            title=body.title, body=body.body, link=body.link, data=body.data, audience=body.audience
        )
        self.tidings.check_limits(new)
        await self.tidings.rate_limit(key, items=[new])
        async with self.tidings.store.write() as conn:
            return await reminders.schedule(
                conn,
                key.tenant,
                body.key,
                due_at=body.due_at,
                now=self.clock.now(),
                title=body.title,
                body=body.body,
                link=body.link,
                data=body.data,
                audience=body.audience,
                max_pending=self.tidings.settings.max_pending_reminders,
            )

    async def reminder(self, tenant: str, reminder_key: str) -> reminders.Reminder:
        async with self.tidings.store.read() as conn:
            found = await reminders.get(conn, tenant, reminder_key)
        if found is None:
            raise NotFound(f"No reminder {reminder_key!r}.", code=Code.REMINDER_NOT_FOUND)
        return found

    async def cancel_reminder(
        self, tenant: str, reminder_key: str
    ) -> tuple[reminders.Reminder, bool]:
        """Cancel a pending reminder: ``(reminder, cancelled)``; 404 when there is none."""
        async with self.tidings.store.write() as conn:
            cancelled = await reminders.cancel(conn, tenant, reminder_key, now=self.clock.now())
            found = await reminders.get(conn, tenant, reminder_key)
        if found is None:
            raise NotFound(f"No reminder {reminder_key!r}.", code=Code.REMINDER_NOT_FOUND)
        return found, cancelled

    # -- the delivery log ------------------------------------------------------------------------

    async def deliveries(self, tenant: str, notification_id: int) -> dict[str, Any]:
        async with self.tidings.store.read() as conn:
            if await nq.get(conn, tenant, notification_id) is None:
                raise NotFound(
                    f"No notification with id {notification_id}.",
                    code=Code.NOTIFICATION_NOT_FOUND,
                )
            entries = await deliverylog.for_notification(conn, tenant, notification_id)
        return {
            "id": notification_id,
            "summary": deliverylog.summarize(entries),
            "entries": entries,
        }
