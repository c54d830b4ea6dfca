"""templates: per-type notification templates, tenant message overrides, notifications.l10n

Revision ID: 0008_templates
Revises: 0007_groups
Create Date: 2026-11-26 20:10:00.000000

Issue 10 item 5. Mirrors ``templates``, ``message_overrides`` and ``notifications.l10n`` in
``tidings.store.tables``. ``l10n`` is nullable: existing rows (and every notification published
with a plain title) have none.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_templates"
down_revision = "0007_groups"  # the core branch's head (ARCHITECTURE.md, schema history)
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("notifications") as batch:
        batch.add_column(sa.Column("l10n", sa.JSON(none_as_null=True), nullable=True))
    op.create_table(
        "templates",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("default_locale", sa.String(length=64), nullable=False),
        sa.Column("locales", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("tenant_id", "type"),
    )
    op.create_table(
        "message_overrides",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("locale", sa.String(length=64), nullable=False),
        sa.Column("messages", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("tenant_id", "locale"),
    )


def downgrade() -> None:
    op.drop_table("message_overrides")
    op.drop_table("templates")
    with op.batch_alter_table("notifications") as batch:
        batch.drop_column("l10n")
