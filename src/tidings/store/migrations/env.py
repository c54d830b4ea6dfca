"""Alembic environment: runs on the connection handed over in ``config.attributes``.

One environment serves every branch (``version_locations``: the core here, each extension in
its own package, :mod:`tidings.store.migrate`). Revisions are written by hand against the
tables they mirror; no metadata is needed to run them, so the core names no extension.
"""

from __future__ import annotations

from alembic import context

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only programmatic use is supported
    raise RuntimeError("run migrations with `tidings migrate`")
context.configure(connection=connection, target_metadata=None, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
