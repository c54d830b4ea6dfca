"""The channels' tables, on the shared ``metadata`` (created by migration ``0003_channels``).

Every row carries its ``tenant_id`` and every query filters on it (invariant 4). Times are
stored in UTC; SQLite hands them back naive, :func:`tidings.channels.clock.as_utc` fixes that.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from tidings.store.tables import metadata


def _tenant_fk() -> ForeignKey:
    return ForeignKey("tenants.id", ondelete="CASCADE")


# What the channels know about a user: contact, zone, roles (for audience checks when nobody is
# connected) and the user's own preference overrides.
channel_users = Table(
    "channel_users",
    metadata,
    Column("tenant_id", String(64), _tenant_fk(), nullable=False),
    Column("user_id", String(128), nullable=False),
    Column("email", String(320), nullable=True),
    Column("time_zone", String(64), nullable=True),
    Column("roles", JSON, nullable=False),
    Column("prefs", JSON, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("tenant_id", "user_id"),
)

# Tenant defaults (same shape as a user's prefs, plus critical types and the reminder lead).
channel_tenants = Table(
    "channel_tenants",
    metadata,
    Column("tenant_id", String(64), _tenant_fk(), primary_key=True),
    Column("prefs", JSON, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# One row per browser push subscription. An endpoint belongs to one (tenant, user) at a time.
push_subscriptions = Table(
    "push_subscriptions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant_id", String(64), _tenant_fk(), nullable=False),
    Column("user_id", String(128), nullable=False),
    Column("endpoint", Text, nullable=False),
    Column("endpoint_hash", String(64), nullable=False),
    Column("p256dh", String(128), nullable=False),
    Column("auth", String(64), nullable=False),
    Column("user_agent", String(300), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_success_at", DateTime(timezone=True), nullable=True),
    Column("failures", Integer, nullable=False, server_default="0"),
    UniqueConstraint("endpoint_hash", name="uq_push_subscriptions_endpoint"),
    Index("ix_push_subscriptions_user", "tenant_id", "user_id"),
)

# The push outbox: pending and in-flight deliveries only; finished ones leave (the log keeps them).
push_outbox = Table(
    "push_outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant_id", String(64), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("user_id", String(128), nullable=False),
    Column(
        "subscription_id",
        Integer,
        ForeignKey("push_subscriptions.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("state", String(10), nullable=False),  # pending | sending
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("due_at", DateTime(timezone=True), nullable=False),
    Column("lease_until", DateTime(timezone=True), nullable=True),
    Column("owner", String(32), nullable=True),
    Column("last_error", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_push_outbox_due", "state", "due_at"),
    Index("ix_push_outbox_tenant", "tenant_id", "state"),
)

# How far the fan-out to push and e-mail has got, per tenant (seq order is commit order).
channel_cursors = Table(
    "channel_cursors",
    metadata,
    Column("tenant_id", String(64), _tenant_fk(), primary_key=True),
    Column("last_seq", BigInteger, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# Who has a live stream on which instance, heartbeated; rows past expires_at do not count.
presence = Table(
    "presence",
    metadata,
    Column("tenant_id", String(64), nullable=False),
    Column("user_id", String(128), nullable=False),
    Column("instance", String(32), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("tenant_id", "user_id", "instance"),
    Index("ix_presence_expires", "expires_at"),
)

# Per notification and channel: queued, sent, failed (with reason), skipped (with reason).
delivery_log = Table(
    "delivery_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant_id", String(64), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("channel", String(8), nullable=False),  # push | email
    Column("user_id", String(128), nullable=True),
    Column("target", String(64), nullable=True),  # "device:<id>" or "email"
    Column("status", String(8), nullable=False),  # queued | sent | failed | skipped
    Column("reason", String(40), nullable=True),
    Column("detail", JSON, nullable=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Index("ix_delivery_log_notification", "tenant_id", "seq"),
    Index("ix_delivery_log_at", "at"),
)

# Reminders that hosts schedule (e.g. "booking:42"); published exactly once when due.
scheduled_reminders = Table(
    "scheduled_reminders",
    metadata,
    Column("tenant_id", String(64), _tenant_fk(), nullable=False),
    Column("key", String(180), nullable=False),
    Column("due_at", DateTime(timezone=True), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("state", String(10), nullable=False),  # pending | done | cancelled | failed
    Column("seq", BigInteger, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("tenant_id", "key"),
    Index("ix_scheduled_reminders_due", "state", "due_at"),
)

# One row per (tenant, user, period): the lease that makes a digest go out at most once.
digest_runs = Table(
    "digest_runs",
    metadata,
    Column("tenant_id", String(64), _tenant_fk(), nullable=False),
    Column("user_id", String(128), nullable=False),
    Column("period", String(40), nullable=False),
    Column("state", String(10), nullable=False),  # sending | sent | empty | failed
    Column("owner", String(32), nullable=False),
    Column("lease_until", DateTime(timezone=True), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("last_seq", BigInteger, nullable=True),
    Column("seqs", JSON, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("sent_at", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("tenant_id", "user_id", "period"),
)

__all__ = [
    "channel_cursors",
    "channel_tenants",
    "channel_users",
    "delivery_log",
    "digest_runs",
    "presence",
    "push_outbox",
    "push_subscriptions",
    "scheduled_reminders",
]
