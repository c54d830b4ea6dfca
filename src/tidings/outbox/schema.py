"""The outbox tables a host creates in its own PostgreSQL database (``tidings outbox sql``).

- ``tidings_outbox``: one row per notification to publish; ``payload`` is the JSON body of
  ``POST /v1/notifications``. The host inserts inside its own transaction, so the row exists
  exactly when the business change it announces committed.
- ``tidings_outbox_dead``: rows tidings could not publish (invalid payload, unknown tenant),
  moved aside with the error; the operator API lists, retries and discards them.
- A statement-level trigger sends ``NOTIFY tidings_outbox`` at commit of every insert, so a
  listening tidings wakes at once; without it tidings still polls.

The script is idempotent (``IF NOT EXISTS`` / ``OR REPLACE``): running it again changes nothing.
"""

from __future__ import annotations

CHANNEL = "tidings_outbox"
"""The NOTIFY channel the trigger signals and the consumer LISTENs on."""

LOCK_SPACE = 1_953_461_602
"""First key of ``pg_try_advisory_xact_lock(LOCK_SPACE, hashtext(tenant))``: the lock that
makes one instance at a time publish a tenant's rows (``"toub"`` as a big-endian int4)."""

SQL = """\
-- tidings outbox: insert into tidings_outbox inside your own transaction (docs/outbox.md).
CREATE TABLE IF NOT EXISTS tidings_outbox (
    id         bigserial   PRIMARY KEY,
    tenant     text        NOT NULL,
    payload    jsonb       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS tidings_outbox_tenant ON tidings_outbox (tenant, id);

-- Rows tidings could not publish, with the reason; see /v1/admin/outbox/dead.
CREATE TABLE IF NOT EXISTS tidings_outbox_dead (
    id         bigint      PRIMARY KEY,
    tenant     text        NOT NULL,
    payload    jsonb       NOT NULL,
    created_at timestamptz NOT NULL,
    failed_at  timestamptz NOT NULL DEFAULT now(),
    error      text        NOT NULL
);

-- Wake tidings at commit (one NOTIFY per inserting statement); it polls as well.
CREATE OR REPLACE FUNCTION tidings_outbox_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('tidings_outbox', '');
    RETURN NULL;
END
$$;
DROP TRIGGER IF EXISTS tidings_outbox_notify ON tidings_outbox;
CREATE TRIGGER tidings_outbox_notify AFTER INSERT ON tidings_outbox
    FOR EACH STATEMENT EXECUTE FUNCTION tidings_outbox_notify();
"""
