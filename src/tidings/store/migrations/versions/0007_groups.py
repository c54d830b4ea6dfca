"""collapse keys: notifications.group_key

Revision ID: 0007_groups
Revises: 0006_inbox
Create Date: 2026-11-26 18:30:00.000000

Issue 10 item 3. Mirrors ``notifications.group_key`` and ``ix_notifications_group`` in
``tidings.store.tables``. Nullable: existing rows have no group (each is its own card).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_groups"
down_revision = "0006_inbox"  # the core branch's head (ARCHITECTURE.md, schema history)
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("notifications") as batch:
        batch.add_column(sa.Column("group_key", sa.String(length=128), nullable=True))
    op.create_index("ix_notifications_group", "notifications", ["tenant_id", "group_key", "seq"])


def downgrade() -> None:
    op.drop_index("ix_notifications_group", table_name="notifications")
    with op.batch_alter_table("notifications") as batch:
        batch.drop_column("group_key")
