"""The Python SDK for tidings (docs/sdk.md): one surface, blocking and asyncio.

- :class:`Client` / :class:`AsyncClient`: publish (single and batch; retried with one
  ``Idempotency-Key`` per publish, so a retry never doubles it; ``Retry-After`` honoured),
  ``mint_token``, a user's feed / unread count / mark read / mark unread / archive /
  unarchive / snooze / preferences (with a
  stream token the client mints for that user with its API key and caches until near expiry),
  tenant preferences, tenants and API keys (operator key), and ``subscribe``.
- :class:`Subscription` / :class:`AsyncSubscription`: the events of ``GET /v1/stream``;
  reconnects by itself and resumes with ``Last-Event-ID``, never yielding a notification twice.
- :func:`verify_webhook`: check a webhook delivery of tidings (Standard Webhooks signature and
  timestamp) and get its :class:`WebhookEvent`; :func:`sign_webhook` signs one, for tests.
- :func:`outbox_row`, :func:`insert_outbox`, :func:`insert_outbox_async`: queue a notification
  in the host's own database transaction (the outbox, docs/outbox.md).
- :class:`Publisher` and :func:`subscribe`: the asyncio names of earlier releases.

Errors::

    ApiError            every problem answer (RFC 9457): status, code, title, detail, problem
    httpx.TransportError  the network failed and the retries were used up
    ValueError          a call the client cannot make (no key for it, conflicting arguments),
                        a notification tidings would refuse (outbox_row)
    WebhookVerificationError  a webhook delivery whose signature or timestamp does not check out

This package imports no server module (no FastAPI, SQLAlchemy, pydantic): only httpx and the
standard library, so a host backend can use it without the server's dependencies loaded.
"""

from __future__ import annotations

from tidings.client._asubscription import AsyncSubscription, subscribe
from tidings.client._async import AsyncClient, Publisher
from tidings.client._errors import ApiError
from tidings.client._outbox import OutboxRow, insert_outbox, insert_outbox_async, outbox_row
from tidings.client._payload import NotificationLimits
from tidings.client._sse import Event, parse_sse
from tidings.client._subscription import Subscription
from tidings.client._sync import Client
from tidings.client._tokens import StreamToken
from tidings.client._types import (
    Actor,
    ApiKey,
    Audience,
    FeedItem,
    FeedPage,
    MarkResult,
    Notification,
    Tenant,
    UnreadCount,
)
from tidings.client._webhooks import (
    WebhookEvent,
    WebhookVerificationError,
    sign_webhook,
    verify_webhook,
)

__all__ = [
    "Actor",
    "ApiError",
    "ApiKey",
    "AsyncClient",
    "AsyncSubscription",
    "Audience",
    "Client",
    "Event",
    "FeedItem",
    "FeedPage",
    "MarkResult",
    "Notification",
    "NotificationLimits",
    "OutboxRow",
    "Publisher",
    "StreamToken",
    "Subscription",
    "Tenant",
    "UnreadCount",
    "WebhookEvent",
    "WebhookVerificationError",
    "insert_outbox",
    "insert_outbox_async",
    "outbox_row",
    "parse_sse",
    "sign_webhook",
    "subscribe",
    "verify_webhook",
]
