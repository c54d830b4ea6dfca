"""The webhooks' tables, on the shared ``metadata`` (created by migration ``w001_webhooks``).

Every row carries its ``tenant_id`` and every query filters on it (invariant 4): an endpoint,
an event, a delivery or a log entry of one tenant is never reachable through another's key.

- ``webhook_endpoints``: where a tenant's events go, with the endpoint's signing secret, its
  subscribed types, whether it is enabled, its failure streak, and the lease of the instance
  delivering to it now (one in flight per endpoint).
- ``webhook_events``: each event once, as the exact JSON body that is signed and sent
  (``id`` is the ``webhook-id``), kept for replay until the retention prunes it.
- ``webhook_deliveries``: one event to one endpoint; ``pending`` until ``delivered`` or
  ``failed`` (given up). Delivered in ``id`` order per endpoint.
- ``webhook_log``: every attempt, give-up, automatic disabling and re-enabling.
- ``webhook_cursors``: per tenant with endpoints, the last notification seq turned into a
  ``notification.created`` event (the notifications table itself is the durable queue).
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
)

from tidings.store.tables import metadata


def _tenant_fk() -> ForeignKey:
    return ForeignKey("tenants.id", ondelete="CASCADE")


webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("tenant_id", String(64), _tenant_fk(), nullable=False),
    Column("url", Text, nullable=False),
    Column("secret", String(80), nullable=False),
    Column("event_types", JSON, nullable=False),
    Column("description", String(300), nullable=True),
    Column("enabled", Boolean, nullable=False),
    Column("disabled_reason", String(40), nullable=True),
    Column("failures", Integer, nullable=False, server_default="0"),
    Column("failing_since", DateTime(timezone=True), nullable=True),
    Column("lease_until", DateTime(timezone=True), nullable=True),
    Column("owner", String(32), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_webhook_endpoints_tenant", "tenant_id"),
)

webhook_events = Table(
    "webhook_events",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("tenant_id", String(64), _tenant_fk(), nullable=False),
    Column("type", String(40), nullable=False),
    Column("user_id", String(128), nullable=True),  # whose act (read state, push, digest)
    Column("body", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_webhook_events_tenant", "tenant_id", "created_at"),
    Index("ix_webhook_events_user", "tenant_id", "user_id"),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant_id", String(64), nullable=False),
    Column(
        "endpoint_id",
        String(32),
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column(
        "event_id", String(40), ForeignKey("webhook_events.id", ondelete="CASCADE"), nullable=False
    ),
    Column("state", String(10), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("due_at", DateTime(timezone=True), nullable=False),
    Column("last_status", Integer, nullable=True),
    Column("last_error", String(300), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_webhook_deliveries_queue", "endpoint_id", "state", "id"),
    Index("ix_webhook_deliveries_event", "event_id"),
)

webhook_log = Table(
    "webhook_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant_id", String(64), _tenant_fk(), nullable=False),
    Column("endpoint_id", String(32), nullable=False),
    Column("event_id", String(40), nullable=True),
    Column("kind", String(12), nullable=False),
    Column("ok", Boolean, nullable=True),
    Column("status", Integer, nullable=True),
    Column("error", String(300), nullable=True),
    Column("attempt", Integer, nullable=True),
    Column("duration_ms", Integer, nullable=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Index("ix_webhook_log_tenant", "tenant_id", "id"),
)

webhook_cursors = Table(
    "webhook_cursors",
    metadata,
    Column("tenant_id", String(64), _tenant_fk(), primary_key=True),
    Column("last_seq", BigInteger, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

__all__ = [
    "webhook_cursors",
    "webhook_deliveries",
    "webhook_endpoints",
    "webhook_events",
    "webhook_log",
]
