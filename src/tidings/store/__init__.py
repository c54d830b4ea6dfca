"""Persistence: SQLAlchemy 2 Core tables and queries, SQLite (WAL) or PostgreSQL.

The store is the source of truth. Everything the delivery fast path drops is found here again
by ``(tenant, seq)``.
"""

from tidings.store.engine import Store

__all__ = ["Store"]
