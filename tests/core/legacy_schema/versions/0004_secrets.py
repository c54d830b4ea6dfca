"""server secrets and tenant signing keys; merges the demo and channels branches

Revision ID: 0004_secrets
Revises: 0002_demo, 0003_channels
Create Date: 2026-11-26 14:00:00.000000

Mirrors ``server_secrets`` and ``signing_keys`` in ``tidings.store.tables``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_secrets"
down_revision = ("0002_demo", "0003_channels")
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "server_secrets",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "signing_keys",
        sa.Column("kid", sa.String(length=32), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("secret", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("kid"),
    )
    op.create_index("ix_signing_keys_tenant", "signing_keys", ["tenant_id"])


def downgrade() -> None:
    op.drop_index("ix_signing_keys_tenant", table_name="signing_keys")
    op.drop_table("signing_keys")
    op.drop_table("server_secrets")
