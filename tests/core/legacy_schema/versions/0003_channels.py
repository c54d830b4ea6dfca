"""channels: preferences, push subscriptions and outbox, presence, delivery log, reminders,
digest leases

Revision ID: 0003_channels
Revises: 0001
Create Date: 2026-11-25 20:00:00.000000

Mirrors ``tidings.channels.tables``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_channels"
down_revision = "0001"
branch_labels = None
depends_on = None


def _tenant_fk() -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE")


def upgrade() -> None:
    op.create_table(
        "channel_users",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("time_zone", sa.String(length=64), nullable=True),
        sa.Column("roles", sa.JSON(), nullable=False),
        sa.Column("prefs", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        _tenant_fk(),
        sa.PrimaryKeyConstraint("tenant_id", "user_id"),
    )
    op.create_table(
        "channel_tenants",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("prefs", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        _tenant_fk(),
        sa.PrimaryKeyConstraint("tenant_id"),
    )
    op.create_table(
        "push_subscriptions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("endpoint", sa.Text(), nullable=False),
        sa.Column("endpoint_hash", sa.String(length=64), nullable=False),
        sa.Column("p256dh", sa.String(length=128), nullable=False),
        sa.Column("auth", sa.String(length=64), nullable=False),
        sa.Column("user_agent", sa.String(length=300), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_success_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failures", sa.Integer(), server_default="0", nullable=False),
        _tenant_fk(),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("endpoint_hash", name="uq_push_subscriptions_endpoint"),
    )
    with op.batch_alter_table("push_subscriptions", schema=None) as batch_op:
        batch_op.create_index("ix_push_subscriptions_user", ["tenant_id", "user_id"], unique=False)

    op.create_table(
        "push_outbox",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("subscription_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("owner", sa.String(length=32), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["subscription_id"], ["push_subscriptions.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("push_outbox", schema=None) as batch_op:
        batch_op.create_index("ix_push_outbox_due", ["state", "due_at"], unique=False)
        batch_op.create_index("ix_push_outbox_tenant", ["tenant_id", "state"], unique=False)

    op.create_table(
        "channel_cursors",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        _tenant_fk(),
        sa.PrimaryKeyConstraint("tenant_id"),
    )
    # Tenants that exist now have history the channels never saw: start their fan-out at the
    # present, so installing channels does not push or log old notifications.
    op.execute(
        "INSERT INTO channel_cursors (tenant_id, last_seq, updated_at) "
        "SELECT id, last_seq, CURRENT_TIMESTAMP FROM tenants"
    )
    op.create_table(
        "presence",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("instance", sa.String(length=32), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "user_id", "instance"),
    )
    with op.batch_alter_table("presence", schema=None) as batch_op:
        batch_op.create_index("ix_presence_expires", ["expires_at"], unique=False)

    op.create_table(
        "delivery_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=True),
        sa.Column("target", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("reason", sa.String(length=40), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("delivery_log", schema=None) as batch_op:
        batch_op.create_index("ix_delivery_log_notification", ["tenant_id", "seq"], unique=False)
        batch_op.create_index("ix_delivery_log_at", ["at"], unique=False)

    op.create_table(
        "scheduled_reminders",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=180), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        _tenant_fk(),
        sa.PrimaryKeyConstraint("tenant_id", "key"),
    )
    with op.batch_alter_table("scheduled_reminders", schema=None) as batch_op:
        batch_op.create_index("ix_scheduled_reminders_due", ["state", "due_at"], unique=False)

    op.create_table(
        "digest_runs",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("period", sa.String(length=40), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("owner", sa.String(length=32), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=True),
        sa.Column("seqs", sa.JSON(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _tenant_fk(),
        sa.PrimaryKeyConstraint("tenant_id", "user_id", "period"),
    )


def downgrade() -> None:
    op.drop_table("digest_runs")
    with op.batch_alter_table("scheduled_reminders", schema=None) as batch_op:
        batch_op.drop_index("ix_scheduled_reminders_due")
    op.drop_table("scheduled_reminders")
    with op.batch_alter_table("delivery_log", schema=None) as batch_op:
        batch_op.drop_index("ix_delivery_log_at")
        batch_op.drop_index("ix_delivery_log_notification")
    op.drop_table("delivery_log")
    with op.batch_alter_table("presence", schema=None) as batch_op:
        batch_op.drop_index("ix_presence_expires")
    op.drop_table("presence")
    op.drop_table("channel_cursors")
    with op.batch_alter_table("push_outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_push_outbox_tenant")
        batch_op.drop_index("ix_push_outbox_due")
    op.drop_table("push_outbox")
    with op.batch_alter_table("push_subscriptions", schema=None) as batch_op:
        batch_op.drop_index("ix_push_subscriptions_user")
    op.drop_table("push_subscriptions")
    op.drop_table("channel_tenants")
    op.drop_table("channel_users")
