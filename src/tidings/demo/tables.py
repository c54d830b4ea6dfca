"""The demo's own tables, on the shared ``metadata`` (created by migration ``0002_demo``).

The demo's tenants *are* tidings tenants (``tenants.id``). Every demo row carries its
``tenant_id`` and every query filters on it, so one rental business never reads or changes
another's rows, whatever id a request names.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    Time,
    UniqueConstraint,
)

from tidings.store.tables import metadata


def _tenant_fk() -> ForeignKey:
    return ForeignKey("tenants.id", ondelete="CASCADE")


demo_users = Table(
    "demo_users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant_id", String(64), _tenant_fk(), nullable=False),
    # The user id tidings knows (the ``sub`` of the user's stream tokens).
    Column("user_id", String(128), nullable=False),
    Column("name", String(200), nullable=False),
    Column("email", String(254), nullable=False, unique=True),
    Column("role", String(32), nullable=False),
    Column("password_hash", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("tenant_id", "user_id", name="uq_demo_users_tenant_user"),
)

customers = Table(
    "customers",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant_id", String(64), _tenant_fk(), nullable=False),
    Column("name", String(200), nullable=False),
    Column("email", String(254), nullable=False),
    Column("phone", String(40), nullable=False, server_default=""),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("tenant_id", "email", name="uq_customers_tenant_email"),
)

bookings = Table(
    "bookings",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant_id", String(64), _tenant_fk(), nullable=False),
    Column("customer_id", Integer, ForeignKey("customers.id"), nullable=False),
    Column("item", String(64), nullable=False),
    Column("event_date", Date, nullable=False),
    Column("start_time", Time, nullable=False),
    Column("hours", Integer, nullable=False),
    Column("address", String(300), nullable=False),
    Column("notes", Text, nullable=False, server_default=""),
    # requested → confirmed → completed | no_show; requested | confirmed → cancelled
    Column("status", String(16), nullable=False),
    Column("price_cents", Integer, nullable=False),
    Column("source", String(16), nullable=False),  # widget | staff
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_bookings_tenant_date", "tenant_id", "event_date"),
    Index("ix_bookings_tenant_status", "tenant_id", "status"),
)

# The history of a booking. Each row names the notification that announced the change, and is
# written after it in the same transaction.
booking_events = Table(
    "booking_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant_id", String(64), _tenant_fk(), nullable=False),
    Column("booking_id", Integer, ForeignKey("bookings.id", ondelete="CASCADE"), nullable=False),
    Column("from_status", String(16), nullable=True),
    Column("to_status", String(16), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("notification_seq", BigInteger, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_booking_events_booking", "booking_id"),
)

payments = Table(
    "payments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant_id", String(64), _tenant_fk(), nullable=False),
    Column("booking_id", Integer, ForeignKey("bookings.id", ondelete="CASCADE"), nullable=False),
    Column("amount_cents", Integer, nullable=False),
    Column("status", String(16), nullable=False),  # received | failed
    Column("method", String(32), nullable=False),
    Column("note", String(300), nullable=False, server_default=""),
    Column("recorded_by", String(200), nullable=False),
    Column("notification_seq", BigInteger, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_payments_tenant_created", "tenant_id", "created_at"),
    Index("ix_payments_booking", "booking_id"),
)

__all__ = ["booking_events", "bookings", "customers", "demo_users", "payments"]
