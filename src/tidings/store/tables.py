"""Table definitions. Migrations in ``migrations/versions`` create exactly these."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    text,
)

metadata = MetaData()


def _only_where(condition: str) -> dict[str, Any]:
    """A partial index's condition, on both databases (``Index(..., **_only_where(...))``)."""
    return {"sqlite_where": text(condition), "postgresql_where": text(condition)}


tenants = Table(
    "tenants",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    # The last seq handed out. Incremented under the row lock by each publishing transaction.
    Column("last_seq", BigInteger, nullable=False, server_default="0"),
    Column("settings", JSON, nullable=False, default=dict),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("tenant_id", String(64), ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("secret_hash", String(64), nullable=False),
    Column("scopes", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    Index("ix_api_keys_tenant", "tenant_id"),
)

notifications = Table(
    "notifications",
    metadata,
    Column("tenant_id", String(64), ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("type", String(64), nullable=False),
    Column("title", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("data", JSON, nullable=False),
    Column("link", Text, nullable=True),
    # NULL: the whole tenant; else {"users": [...], "roles": [...]}; mirrored in audience_targets.
    Column("audience", JSON(none_as_null=True), nullable=True),
    Column("targeted", Boolean, nullable=False),
    Column("idempotency_key", String(200), nullable=True),
    Column("fingerprint", LargeBinary(32), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # Who caused it (issue 10): that user gets it already read; never pushed or e-mailed to them.
    Column("actor_id", String(128), nullable=True),
    Column("actor_name", String(200), nullable=True),
    # Collapse key (issue 10 item 3): the bell and the grouped feed show one card per group.
    Column("group_key", String(128), nullable=True),
    # Text per locale from a type's templates (issue 10 item 5): {"de": {"title", "body"}}.
    Column("l10n", JSON(none_as_null=True), nullable=True),
    PrimaryKeyConstraint("tenant_id", "seq"),
    # Every publish writes an entry into each index of its row (0009_lean_indexes): the two
    # keyed by optional columns hold only the rows that have them (their lookups name the key,
    # ``= :key`` or ``IN (...)``, which both databases read as "not NULL").
    Index(
        "uq_notifications_idempotency",
        "tenant_id",
        "idempotency_key",
        unique=True,
        **_only_where("idempotency_key IS NOT NULL"),
    ),
    # Retention reads the notifications created before a time across tenants: a range of this
    # index. Ordered by time alone, every commit appends at its end, whatever its tenants.
    Index("ix_notifications_created", "created_at"),
    Index(
        "ix_notifications_group",
        "tenant_id",
        "group_key",
        "seq",
        **_only_where("group_key IS NOT NULL"),
    ),
)

audience_targets = Table(
    "audience_targets",
    metadata,
    Column("tenant_id", String(64), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("kind", String(1), nullable=False),  # 'u' user, 'r' role
    Column("value", String(128), nullable=False),
    # Read by its key only: a notification's audience (tenant, seq) for visibility, a tenant's
    # rows for erasure. No index by user (0009_lean_indexes): a publish to users and roles
    # would write its entries all over it.
    PrimaryKeyConstraint("tenant_id", "seq", "kind", "value"),
)

read_state = Table(
    "read_state",
    metadata,
    Column("tenant_id", String(64), nullable=False),
    Column("user_id", String(128), nullable=False),
    Column("watermark", BigInteger, nullable=False, server_default="0"),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("tenant_id", "user_id"),
)

receipts = Table(
    "receipts",
    metadata,
    Column("tenant_id", String(64), nullable=False),
    Column("user_id", String(128), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("read_at", DateTime(timezone=True), nullable=True),
    Column("archived_at", DateTime(timezone=True), nullable=True),
    # Inbox states (issue 10): marked unread (beats the watermark and the actor rule), and
    # snoozed until a time (out of the count and the inbox until the snooze sweep wakes it).
    Column("unread_at", DateTime(timezone=True), nullable=True),
    Column("snoozed_until", DateTime(timezone=True), nullable=True),
    PrimaryKeyConstraint("tenant_id", "user_id", "seq"),
    Index("ix_receipts_seq", "tenant_id", "seq"),
    Index("ix_receipts_snoozed", "snoozed_until"),
)

kv = Table(
    "kv",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("value", JSON, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# Secrets the server generated because none was configured (keyring.py): one row per name,
# inserted if absent, so instances racing on one database all end with the first row.
server_secrets = Table(
    "server_secrets",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# Per-tenant HS256 keys for hosts that sign their own stream tokens (JWT header ``kid``).
# The secret is kept as is: verifying an HMAC needs it (as the VAPID private key in ``kv``).
signing_keys = Table(
    "signing_keys",
    metadata,
    Column("kid", String(32), primary_key=True),
    Column("tenant_id", String(64), ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("secret", String(128), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    Index("ix_signing_keys_tenant", "tenant_id"),
)

# Per-type notification templates (issue 10 item 5, store/templates.py): one row per type,
# ``locales`` = {"en": {"title": "…", "body": "…"}, …}; ``default_locale`` is one of them.
templates = Table(
    "templates",
    metadata,
    Column("tenant_id", String(64), ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("type", String(64), nullable=False),
    Column("default_locale", String(64), nullable=False),
    Column("locales", JSON, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("tenant_id", "type"),
)

# A tenant's own strings over a message catalogue's (issue 10 item 5: the digest e-mail's),
# per locale: ``messages`` = {"intro.other": "…", "type.booking_created": "…"}.
message_overrides = Table(
    "message_overrides",
    metadata,
    Column("tenant_id", String(64), ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("locale", String(64), nullable=False),
    Column("messages", JSON, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("tenant_id", "locale"),
)

__all__ = [
    "api_keys",
    "audience_targets",
    "kv",
    "message_overrides",
    "metadata",
    "notifications",
    "read_state",
    "receipts",
    "server_secrets",
    "signing_keys",
    "templates",
    "tenants",
]
