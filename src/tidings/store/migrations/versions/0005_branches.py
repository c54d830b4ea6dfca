"""bridge: databases made by the single chain get their channels and demo branches recorded

Revision ID: 0005_branches
Revises: 0004_secrets
Create Date: 2026-11-26 17:00:00.000000

Before the per-package branches, one chain created every table: ``0001`` → ``0002_demo`` and
``0003_channels`` → ``0004_secrets`` (a merge), so a database at that head holds the channels'
and the demo's tables while ``alembic_version`` says only ``0004_secrets``. Read with the
branches (``0004_secrets`` now revises ``0001`` only), that would mean "channels and demo never
ran", and their first revisions would try to create tables that exist.

This revision records, for each of those two branches whose first revision's tables are all
present and which has no row of its own yet, that first revision's id (``0003_channels``,
``0002_demo``: the same ids, the same tables) in ``alembic_version``: the stamp the single
chain would have left had it been branched. Nothing else changes; no table is created or
dropped (a production database made before the branches keeps its empty demo tables). On a
fresh database it finds none of those tables and does nothing: each branch then creates its
own. It runs inside the core upgrade, which :func:`tidings.store.migrate.upgrade` always does
first, before any other branch is looked at.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_branches"
down_revision = "0004_secrets"
branch_labels = None
depends_on = None

# The first revision of each branch the single chain used to run, and the tables it creates.
ADOPTED = {
    "0003_channels": (
        "channel_users",
        "channel_tenants",
        "push_subscriptions",
        "push_outbox",
        "channel_cursors",
        "presence",
        "delivery_log",
        "scheduled_reminders",
        "digest_runs",
    ),
    "0002_demo": ("demo_users", "customers", "bookings", "booking_events", "payments"),
}


def upgrade() -> None:
    bind = op.get_bind()
    present = set(sa.inspect(bind).get_table_names())
    versions = sa.table("alembic_version", sa.column("version_num", sa.String))
    recorded = set(bind.execute(sa.select(versions.c.version_num)).scalars())
    for first, tables in ADOPTED.items():
        if first not in recorded and all(name in present for name in tables):
            bind.execute(sa.insert(versions).values(version_num=first))


def downgrade() -> None:
    bind = op.get_bind()
    versions = sa.table("alembic_version", sa.column("version_num", sa.String))
    bind.execute(sa.delete(versions).where(versions.c.version_num.in_(list(ADOPTED))))
