"""Alembic environment of the frozen legacy history (one chain: core, demo and channels merged
at ``0004_secrets``, as released before the per-package branches)."""

from __future__ import annotations

from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=None, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
