"""One typed settings object, read from ``TIDINGS_*`` environment variables or a ``.env`` file.

Every field has a default that runs with nothing installed (SQLite file, in-process broker).
Outside development the defaults for secrets are refused: :meth:`Settings.check_production`
raises when ``TIDINGS_ENV`` is ``production`` and the signing secret or operator key is still
the development default.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_SECRET = "dev-secret-change-me-in-production-0000"
DEV_OPERATOR_KEY = "dev-operator-key"


class Settings(BaseSettings):
    """Effective configuration of one tidings process."""

    model_config = SettingsConfigDict(
        env_prefix="TIDINGS_", env_file=".env", extra="ignore", frozen=True
    )

    env: Literal["development", "production", "test"] = Field(
        "development", description="Deployment kind; 'production' refuses default secrets."
    )
    database_url: str = Field(
        "sqlite+aiosqlite:///./tidings.db",
        description="SQLAlchemy async URL: sqlite+aiosqlite:///path or postgresql+asyncpg://…",
    )
    broker_url: str = Field(
        "memory://", description="memory:// (one process), redis://host:port/db, postgresql://…"
    )
    secret: SecretStr = Field(
        SecretStr(DEV_SECRET), description="HS256 secret that signs and verifies stream tokens."
    )
    operator_key: SecretStr = Field(
        SecretStr(DEV_OPERATOR_KEY), description="Bearer key of the operator API (/v1/admin)."
    )
    keepalive: float = Field(15.0, gt=0, description="Seconds between ': ping' comments.")
    retry_ms: int = Field(
        2000, ge=100, description="Reconnect delay sent to clients in the 'retry:' field."
    )
    replay_limit: int = Field(
        1000, ge=1, description="Most notifications replayed on resume; beyond it: reset."
    )
    retention_days: int = Field(30, ge=1, description="Notifications older than this are pruned.")
    subscriber_buffer: int = Field(
        256, ge=1, description="Frames buffered per stream before it is cut off as too slow."
    )
    send_timeout: float = Field(
        10.0, gt=0, description="Seconds one write to a stream may take before it is closed."
    )
    max_streams_per_user: int = Field(20, ge=1, description="Open streams per user (429 beyond).")
    max_streams_per_tenant: int = Field(
        5000, ge=1, description="Open streams per tenant (429 beyond)."
    )
    token_max_ttl: int = Field(3600, ge=60, description="Longest lifetime of a stream token (s).")
    token_default_ttl: int = Field(900, ge=30, description="Default stream token lifetime (s).")
    max_body_bytes: int = Field(
        1_048_576, ge=1024, description="Largest request body accepted (413 beyond)."
    )
    max_title_chars: int = Field(200, ge=1, description="Longest notification title.")
    max_body_chars: int = Field(2000, ge=1, description="Longest notification body.")
    max_data_bytes: int = Field(8192, ge=2, description="Largest encoded 'data' object (413).")
    publish_rate: str = Field(
        "100/second", description="Publish rate limit per API key (limits syntax)."
    )
    public_url: str = Field(
        "http://127.0.0.1:8000", description="Base URL used in links (e-mails, push)."
    )
    log_level: str = Field("INFO", description="Root log level.")
    auto_migrate: bool = Field(
        True, description="Apply migrations at start (always on for SQLite)."
    )

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def check_production(self) -> None:
        """Refuse development secrets in production."""
        if self.env != "production":
            return
        if self.secret.get_secret_value() == DEV_SECRET or len(self.secret.get_secret_value()) < 32:
            raise ValueError("TIDINGS_SECRET must be set to 32+ random characters in production")
        if self.operator_key.get_secret_value() == DEV_OPERATOR_KEY:
            raise ValueError("TIDINGS_OPERATOR_KEY must be set in production")

    def masked(self) -> dict[str, object]:
        """The effective settings with secrets masked, for ``tidings config``."""
        out: dict[str, object] = {}
        for name, value in self.model_dump().items():
            if isinstance(getattr(self, name), SecretStr):
                out[name] = "**********"
            elif name in ("database_url", "broker_url"):
                out[name] = _mask_url(str(value))
            else:
                out[name] = value
        return out


def _mask_url(url: str) -> str:
    """Hide a password inside ``scheme://user:password@host``."""
    if "://" not in url or "@" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    if ":" in creds:
        creds = creds.split(":", 1)[0] + ":****"
    return f"{scheme}://{creds}@{host}"
