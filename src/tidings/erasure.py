"""Operator actions that remove data: delete a tenant, erase a user (GDPR). Service level:
the store part (:mod:`tidings.store.erasure`) in one write transaction, then this instance's
caches and streams.

Invariants:
- All of it or nothing: the rows go in one transaction; streams and caches are touched only
  after it committed.
- Deleting a tenant ends this instance's open streams of that tenant end (``bye``
  ``{"reason": "tenant_deleted"}``; a reconnect is answered ``404 tenant_not_found``) and its
  signing keys stop verifying at once. Other instances' streams are not told (no broker message
  ends them): they receive nothing more (nothing can be published to it)
  and end at the latest when their tokens expire; their signing-key caches forget the keys
  within ``TIDINGS_SIGNING_KEY_CACHE`` seconds.
- Either way, after the commit, the cached muted types of the tenant (or of the erased user)
  are forgotten on every instance (:meth:`Tidings.preferences_changed`: a ``p`` broker message).
- Erasing a user ends this instance's open streams of that user (``bye``
  ``{"reason": "erased"}``) before the transaction, so the channels' presence heartbeat does
  not record the user again, and once more after it. A stream the user still holds on another
  instance, a heartbeat already under way at that moment, or a token the host mints again
  records the user's presence and profile (e-mail, roles) afresh: revoke the user's access in
  the host first, then erase (erasing twice is harmless).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tidings.store import erasure as eq
from tidings.store import tenants as tq

if TYPE_CHECKING:
    from tidings.delivery.hub import Hub
    from tidings.service import Tidings


@dataclass(frozen=True, slots=True)
class Removal:
    """What an operator action removed: rows per kind, and streams ended on this instance."""

    tenant: str
    user: str | None
    removed: dict[str, int]
    streams_closed: int

    def public(self) -> dict[str, Any]:
        out: dict[str, Any] = {"tenant": self.tenant}
        if self.user is not None:
            out["user"] = self.user
        return {**out, "removed": self.removed, "streams_closed": self.streams_closed}

    def describe(self) -> str:
        """One line for people: what went, kinds with nothing to remove left out."""
        parts = [
            f"{kind.replace('_', ' ')}: {count}" for kind, count in self.removed.items() if count
        ]
        what = f"user {self.user} of tenant {self.tenant}" if self.user else f"tenant {self.tenant}"
        verb = "erased" if self.user else "deleted"
        return (
            f"{verb} {what}: "
            + (", ".join(parts) or "nothing stored")
            + (f"; {self.streams_closed} open streams ended" if self.streams_closed else "")
        )


def end_streams(hub: Hub, tenant: str, user: str | None, reason: str) -> set[int]:
    """Ask this instance's streams of the tenant (or of one user of it) to end; returns their
    connection ids."""
    users = {p.user for p in hub.present() if p.tenant == tenant} if user is None else {user}
    subs = [sub for name in sorted(users) for sub in hub.subscribers_of(tenant, name)]
    for sub in subs:
        sub.leave(reason)
    return {sub.conn for sub in subs}


async def _check_tenant(service: Tidings, tenant_id: str) -> None:
    async with service.store.read() as conn:
        await tq.get_tenant(conn, tenant_id)


async def delete_tenant(service: Tidings, tenant_id: str) -> Removal:
    """Delete the tenant and everything of it (``NotFound`` if there is none)."""
    await _check_tenant(service, tenant_id)
    # Streams end first, so a presence heartbeat from now on does not record them again;
    # and once more after the commit, for one that connected meanwhile.
    closed = end_streams(service.hub, tenant_id, None, "tenant_deleted")
    async with service.store.write() as conn:
        await eq.lock_tenant(conn, tenant_id)
        kids = await eq.tenant_signing_kids(conn, tenant_id)
        removed = await eq.delete_tenant(conn, tenant_id)
    for kid in kids:
        service.signing_keys.forget(kid)
    service.api_keys.forget_tenant(tenant_id)  # its keys are refused here at once
    closed |= end_streams(service.hub, tenant_id, None, "tenant_deleted")
    await service.preferences_changed(tenant_id)  # cached muted types forgotten everywhere
    return Removal(tenant_id, None, removed, len(closed))


async def erase_user(
    service: Tidings, tenant_id: str, user: str, *, also: Sequence[eq.UserEraser] = ()
) -> Removal:
    """Erase what tidings holds about ``user`` (``also``: the extensions' parts)."""
    eq.check_user(user)
    await _check_tenant(service, tenant_id)
    closed = end_streams(service.hub, tenant_id, user, "erased")  # first: as for a tenant
    async with service.store.write() as conn:
        removed = await eq.erase_user(conn, tenant_id, user, also=also)
    closed |= end_streams(service.hub, tenant_id, user, "erased")
    await service.preferences_changed(tenant_id, user)  # cached muted types forgotten everywhere
    return Removal(tenant_id, user, removed, len(closed))


__all__ = ["Removal", "delete_tenant", "end_streams", "erase_user"]
