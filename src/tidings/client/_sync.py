"""The blocking client: :class:`Client` and its :class:`Subscription` (the mirror of
:mod:`._async`, method for method; a test keeps their signatures equal).

Every method is one :mod:`._calls` description run by :meth:`Client._run`, which retries
as :mod:`._retry` says and, for user-facing calls, sends a stream token minted for the user
(cached until near its expiry, minted again once if the server refuses it).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx

from tidings.client import _calls as calls
from tidings.client._base import DEFAULT_TIMEOUT, STREAM_READ_TIMEOUT, Base, failure, user_agent
from tidings.client._calls import ActorRef, Call, FeedStatus
from tidings.client._subscription import Subscription, TokenSource, fixed
from tidings.client._tokens import StreamToken, UserRef
from tidings.client._types import (
    ApiKey,
    FeedPage,
    MarkResult,
    Notification,
    Tenant,
    UnreadCount,
)

T = TypeVar("T")


class Client(Base):
    """tidings over HTTP, blocking. Use as ``with Client(url, api_key=…) as c``.

    The same methods as :class:`tidings.client.AsyncClient`, not awaited.
    """

    def __init__(
        self,
        url: str,
        *,
        api_key: str | None = None,
        operator_key: str | None = None,
        retries: int = 5,
        max_wait: float = 60.0,
        timeout: float = DEFAULT_TIMEOUT,
        token_ttl: int | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(
            url,
            api_key=api_key,
            operator_key=operator_key,
            retries=retries,
            max_wait=max_wait,
            timeout=timeout,
            token_ttl=token_ttl,
        )
        self._http = httpx.Client(
            base_url=self.url,
            timeout=timeout,
            transport=transport,
            headers={"User-Agent": user_agent()},
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- publishing (API key, scope ``publish``) -------------------------------------------------

    def publish(
        self,
        type: str,
        title: str,
        *,
        body: str = "",
        data: Mapping[str, Any] | None = None,
        link: str | None = None,
        audience: Mapping[str, Sequence[str]] | None = None,
        idempotency_key: str | None = None,
        actor: ActorRef | None = None,
        group: str | None = None,
    ) -> Notification:
        """Store and deliver one notification; retried with one ``Idempotency-Key``.
        ``actor`` (a user id or ``{"id", "name"}``): who caused it; they get it already read.
        ``group`` (e.g. ``"booking:42"``): a collapse key; clients show one card per group."""
        return self._run(
            calls.publish(type, title, body, data, link, audience, idempotency_key, actor, group)
        )

    def publish_batch(
        self, notifications: Sequence[Mapping[str, Any]], *, idempotency_key: str | None = None
    ) -> list[Notification]:
        """Up to 100 notifications in one transaction: all are stored, or none."""
        return self._run(calls.publish_batch(notifications, idempotency_key))

    def mint_token(
        self,
        user: str,
        *,
        roles: Sequence[str] = (),
        email: str | None = None,
        ttl: int | None = None,
        tenant: str | None = None,
        locale: str | None = None,
    ) -> StreamToken:
        """A stream token for ``user`` (API key, scope ``tokens``; with ``tenant``: operator)."""
        return self._run(calls.mint_token(UserRef.of(user, roles, email, locale), ttl, tenant))

    # -- on behalf of a user (a stream token minted with the API key) ----------------------------

    def feed(
        self,
        user: str,
        *,
        roles: Sequence[str] = (),
        status: FeedStatus = "all",
        type: str | None = None,
        limit: int = 20,
        cursor: str | None = None,
        grouped: bool = False,
    ) -> FeedPage:
        """``grouped=True``: one item per collapse key, with ``group_count``/``group_unread``."""
        return self._run(calls.feed(UserRef.of(user, roles), status, type, limit, cursor, grouped))

    def unread_count(self, user: str, *, roles: Sequence[str] = ()) -> UnreadCount:
        return self._run(calls.unread_count(UserRef.of(user, roles)))

    def mark_read(
        self,
        user: str,
        ids: Sequence[int] | None = None,
        *,
        all: bool = False,
        up_to: int | None = None,
        roles: Sequence[str] = (),
        groups: Sequence[str] | None = None,
    ) -> MarkResult:
        """``ids``, ``groups`` (every item of those collapse keys) or ``all=True``."""
        return self._run(calls.mark_read(UserRef.of(user, roles), ids, all, up_to, groups))

    def archive(self, user: str, ids: Sequence[int], *, roles: Sequence[str] = ()) -> MarkResult:
        return self._run(calls.archive(UserRef.of(user, roles), ids))

    def mark_unread(
        self, user: str, ids: Sequence[int], *, roles: Sequence[str] = ()
    ) -> MarkResult:
        """Unread again, whatever was read before (a snooze on them ends)."""
        return self._run(calls.mark_unread(UserRef.of(user, roles), ids))

    def unarchive(self, user: str, ids: Sequence[int], *, roles: Sequence[str] = ()) -> MarkResult:
        """Back in the inbox (read, as archiving left them)."""
        return self._run(calls.unarchive(UserRef.of(user, roles), ids))

    def snooze(
        self, user: str, ids: Sequence[int], until: datetime, *, roles: Sequence[str] = ()
    ) -> MarkResult:
        """Out of the inbox and the unread count until ``until`` (aware); then back, unread."""
        return self._run(calls.snooze(UserRef.of(user, roles), ids, until))

    def preferences(self, user: str, *, roles: Sequence[str] = ()) -> dict[str, Any]:
        return self._run(calls.preferences(UserRef.of(user, roles)))

    def set_preferences(
        self, user: str, prefs: Mapping[str, Any], *, roles: Sequence[str] = ()
    ) -> dict[str, Any]:
        return self._run(calls.set_preferences(UserRef.of(user, roles), prefs))

    def tenant_preferences(self) -> dict[str, Any]:
        return self._run(calls.tenant_preferences())

    def set_tenant_preferences(self, prefs: Mapping[str, Any]) -> dict[str, Any]:
        return self._run(calls.set_tenant_preferences(prefs))

    # -- operator --------------------------------------------------------------------------------

    def create_tenant(self, id: str, name: str | None = None) -> Tenant:
        return self._run(calls.create_tenant(id, name or id))

    def list_tenants(self) -> list[Tenant]:
        return self._run(calls.list_tenants())

    def create_key(
        self, tenant: str, *, name: str = "default", scopes: Sequence[str] | None = None
    ) -> ApiKey:
        return self._run(calls.create_key(tenant, name, scopes))

    def list_keys(self, tenant: str) -> list[ApiKey]:
        return self._run(calls.list_keys(tenant))

    def revoke_key(self, key_id: str) -> ApiKey:
        return self._run(calls.revoke_key(key_id))

    # -- the stream ------------------------------------------------------------------------------

    def subscribe(
        self,
        user: str | None = None,
        *,
        roles: Sequence[str] = (),
        token: str | None = None,
        last_event_id: int | None = None,
        max_attempts: int | None = None,
        read_timeout: float = STREAM_READ_TIMEOUT,
    ) -> Subscription:
        """Events of ``GET /v1/stream`` for ``user`` (a token minted and renewed with the API
        key) or for a given ``token`` (iteration ends when it expires)."""
        if (user is None) == (token is None):
            raise ValueError("pass either user or token")
        ref = None if user is None else UserRef.of(user, roles)
        source = fixed(token) if ref is None else self._token_source(ref)
        return Subscription(
            self._http, source, last_event_id, max_attempts, self.timeout, read_timeout
        )

    # -- running calls ---------------------------------------------------------------------------

    def _token_source(self, ref: UserRef) -> TokenSource:
        def source(fresh: bool) -> str | None:
            if fresh:
                self.tokens.drop(ref)
            return (self._user_token(ref)).token

        return source

    def _user_token(self, ref: UserRef) -> StreamToken:
        token = self.tokens.get(ref)
        if token is None:
            token = self._run(calls.mint_token(ref, self.token_ttl))
            self.tokens.put(ref, token)
        return token

    def _run(self, call: Call[T]) -> T:
        headers = self._credential(call)
        attempt, renewed = 0, False
        while True:
            if call.user is not None:
                headers["Authorization"] = f"Bearer {(self._user_token(call.user)).token}"
            try:
                response = self._http.request(
                    call.method, call.path, json=call.json, params=call.params, headers=headers
                )
            except httpx.TransportError as error:
                delay = self.policy.after_transport_error(error, attempt, call.idempotent)
                if delay is None:
                    raise
            else:
                if response.is_success:
                    return call.parse(response.json())
                if response.status_code == 401 and call.user is not None and not renewed:
                    self.tokens.drop(call.user)
                    renewed = True
                    continue
                retry_after, problem = failure(response)
                delay = self.policy.after_status(
                    response.status_code, retry_after, attempt, call.idempotent
                )
                if delay is None:
                    raise problem
            time.sleep(delay)
            attempt += 1
