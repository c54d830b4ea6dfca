"""Small parts of the outbox that need no database."""

from __future__ import annotations

from datetime import UTC, datetime

from typer.testing import CliRunner

from tidings.cli import app
from tidings.config import Settings
from tidings.outbox import SQL
from tidings.outbox.rows import Row


def test_the_idempotency_key_is_stable_per_row_and_new_after_a_sequence_reset() -> None:
    at = datetime(2026, 11, 26, 12, 0, 0, 123456, tzinfo=UTC)
    row = Row(42, "acme", "{}", at)
    assert row.idempotency_key == "outbox:42:1795694400123456"
    assert Row(42, "acme", '{"x": 1}', at).idempotency_key == row.idempotency_key
    later = Row(42, "acme", "{}", at.replace(microsecond=123457))
    assert later.idempotency_key != row.idempotency_key
    assert len(row.idempotency_key) <= 200  # notifications.idempotency_key


def test_config_masks_the_outbox_password() -> None:
    settings = Settings(outbox_url="postgresql://host_app:s3cret@db.internal:5432/shop")
    assert settings.masked()["outbox_url"] == "postgresql://host_app:****@db.internal:5432/shop"
    assert Settings().outbox_url == ""  # off by default


def test_cli_prints_the_sql() -> None:
    result = CliRunner().invoke(app, ["outbox", "sql"])
    assert result.exit_code == 0
    assert result.output == SQL
    assert "FOR EACH STATEMENT EXECUTE FUNCTION tidings_outbox_notify()" in result.output
