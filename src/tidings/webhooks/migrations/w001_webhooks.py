"""webhooks: endpoints, events, deliveries, log, notification cursors

Revision ID: w001_webhooks
Revises:
Depends on: 0001 (core)
Create Date: 2026-11-26 20:00:00.000000

The first revision of the webhooks' own branch (``webhooks``); mirrors
``tidings.webhooks.tables``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "w001_webhooks"
down_revision = None
branch_labels = ("webhooks",)
depends_on = "0001"


def _tenant_fk() -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE")


def _at(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("secret", sa.String(length=80), nullable=False),
        sa.Column("event_types", sa.JSON(), nullable=False),
        sa.Column("description", sa.String(length=300), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("disabled_reason", sa.String(length=40), nullable=True),
        sa.Column("failures", sa.Integer(), server_default="0", nullable=False),
        _at("failing_since", True),
        _at("lease_until", True),
        sa.Column("owner", sa.String(length=32), nullable=True),
        _at("created_at"),
        _at("updated_at"),
        _tenant_fk(),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_webhook_endpoints_tenant", "webhook_endpoints", ["tenant_id"])
    op.create_table(
        "webhook_events",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=40), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        _at("created_at"),
        _tenant_fk(),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_webhook_events_tenant", "webhook_events", ["tenant_id", "created_at"])
    op.create_index("ix_webhook_events_user", "webhook_events", ["tenant_id", "user_id"])
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("endpoint_id", sa.String(length=32), nullable=False),
        sa.Column("event_id", sa.String(length=40), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        _at("due_at"),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(length=300), nullable=True),
        _at("created_at"),
        _at("updated_at"),
        sa.ForeignKeyConstraint(["endpoint_id"], ["webhook_endpoints.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["event_id"], ["webhook_events.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_webhook_deliveries_queue", "webhook_deliveries", ["endpoint_id", "state", "id"]
    )
    op.create_index("ix_webhook_deliveries_event", "webhook_deliveries", ["event_id"])
    op.create_table(
        "webhook_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("endpoint_id", sa.String(length=32), nullable=False),
        sa.Column("event_id", sa.String(length=40), nullable=True),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=True),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("error", sa.String(length=300), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=True),
        _at("at"),
        _tenant_fk(),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_webhook_log_tenant", "webhook_log", ["tenant_id", "id"])
    op.create_table(
        "webhook_cursors",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        _at("updated_at"),
        _tenant_fk(),
        sa.PrimaryKeyConstraint("tenant_id"),
    )


def downgrade() -> None:
    for table in (
        "webhook_cursors",
        "webhook_log",
        "webhook_deliveries",
        "webhook_events",
        "webhook_endpoints",
    ):
        op.drop_table(table)
