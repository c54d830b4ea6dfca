"""lean indexes: fewer index entries written per published notification

Revision ID: 0009_lean_indexes
Revises: 0008_templates
Create Date: 2026-11-28 06:00:00.000000

Issue 8 (publish throughput). Mirrors ``tidings.store.tables``:

- ``uq_notifications_idempotency`` becomes a unique index over the rows that have a key
  (``WHERE idempotency_key IS NOT NULL``), and ``ix_notifications_group`` one over the rows
  that have a group: a publish without them writes no entry there. Uniqueness is unchanged
  (NULL keys were never equal to each other), and every lookup names the key.
- ``ix_notifications_tenant_created`` (tenant, created_at) becomes ``ix_notifications_created``
  (created_at): retention asks for the rows created before a time across tenants, which the
  old index could not answer by a range, and a commit now appends to one place in it whatever
  its tenants.
- ``ix_audience_targets_lookup`` (tenant, kind, value, seq) goes: nothing but erasure read it,
  and a publish to users and roles wrote its entries all over it (with five tenants and fifty
  users, most of the pages a commit wrote). Erasure now reads the tenant's audience rows by the
  primary key, as it already reads the tenant's notifications for their actor.

On SQLite dropping the unique constraint rebuilds ``notifications`` (Alembic's batch copy): the
upgrade takes about as long as copying the table (500,000 notifications, a 228 MB file: 2.8 s
on the 2-core benchmark VM). On PostgreSQL it drops and builds indexes only.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0009_lean_indexes"
down_revision = "0008_templates"  # the core branch's head (ARCHITECTURE.md, schema history)
branch_labels = None
depends_on = None

_KEYED = "idempotency_key IS NOT NULL"
_GROUPED = "group_key IS NOT NULL"


def _where(condition: str) -> dict[str, Any]:
    return {"sqlite_where": sa.text(condition), "postgresql_where": sa.text(condition)}


def upgrade() -> None:
    op.drop_index("ix_audience_targets_lookup", table_name="audience_targets")
    op.drop_index("ix_notifications_tenant_created", table_name="notifications")
    op.create_index("ix_notifications_created", "notifications", ["created_at"])
    op.drop_index("ix_notifications_group", table_name="notifications")
    with op.batch_alter_table("notifications") as batch:
        batch.drop_constraint("uq_notifications_idempotency", type_="unique")
    op.create_index(
        "uq_notifications_idempotency",
        "notifications",
        ["tenant_id", "idempotency_key"],
        unique=True,
        **_where(_KEYED),
    )
    op.create_index(
        "ix_notifications_group",
        "notifications",
        ["tenant_id", "group_key", "seq"],
        **_where(_GROUPED),
    )


def downgrade() -> None:
    op.drop_index("ix_notifications_group", table_name="notifications")
    op.drop_index("uq_notifications_idempotency", table_name="notifications")
    with op.batch_alter_table("notifications") as batch:
        batch.create_unique_constraint(
            "uq_notifications_idempotency", ["tenant_id", "idempotency_key"]
        )
    op.create_index("ix_notifications_group", "notifications", ["tenant_id", "group_key", "seq"])
    op.drop_index("ix_notifications_created", table_name="notifications")
    op.create_index("ix_notifications_tenant_created", "notifications", ["tenant_id", "created_at"])
    op.create_index(
        "ix_audience_targets_lookup",
        "audience_targets",
        ["tenant_id", "kind", "value", "seq"],
    )
