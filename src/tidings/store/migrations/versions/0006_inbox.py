"""inbox states and actors: notifications.actor_*, receipts.unread_at / snoozed_until

Revision ID: 0006_inbox
Revises: 0005_branches
Create Date: 2026-11-26 17:30:00.000000

Issue 10 items 1-2. Mirrors the columns of ``notifications`` and ``receipts`` in
``tidings.store.tables``. Every new column is nullable, so existing rows keep their meaning
(no actor; read state as before; not snoozed).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_inbox"
down_revision = "0005_branches"  # the core branch's head (ARCHITECTURE.md, schema history)
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("notifications") as batch:
        batch.add_column(sa.Column("actor_id", sa.String(length=128), nullable=True))
        batch.add_column(sa.Column("actor_name", sa.String(length=200), nullable=True))
    with op.batch_alter_table("receipts") as batch:
        batch.add_column(sa.Column("unread_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("snoozed_until", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_receipts_snoozed", "receipts", ["snoozed_until"])


def downgrade() -> None:
    op.drop_index("ix_receipts_snoozed", table_name="receipts")
    with op.batch_alter_table("receipts") as batch:
        batch.drop_column("snoozed_until")
        batch.drop_column("unread_at")
    with op.batch_alter_table("notifications") as batch:
        batch.drop_column("actor_name")
        batch.drop_column("actor_id")
