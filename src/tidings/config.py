"""One typed settings object, read from ``TIDINGS_*`` environment variables or a ``.env`` file.

Every field has a default that runs with nothing installed (SQLite file, in-process broker).

Secrets have no usable default (invariant 7, safe by default): ``TIDINGS_SECRET`` and
``TIDINGS_OPERATOR_KEY`` left unset are generated at random on first start and kept in the
store (:mod:`tidings.keyring`), so every instance on one database shares them.
:meth:`Settings.check_secrets` refuses, in every environment, the values that were once
published as defaults, and in production explicit secrets that are too short.
"""

from __future__ import annotations

import ipaddress
import os
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# Values that once shipped as defaults (they are in the repository's history): never accepted.
PUBLISHED_SECRETS = frozenset({"dev-secret-change-me-in-production-0000"})
PUBLISHED_OPERATOR_KEYS = frozenset({"dev-operator-key"})
MIN_SECRET_CHARS = 32  # TIDINGS_SECRET set explicitly in production
MIN_OPERATOR_KEY_CHARS = 24  # TIDINGS_OPERATOR_KEY set explicitly in production


class InsecureSettings(ValueError):
    """A secret that must not be used. The message is one line, fit for ``error: …``."""


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
    secret: SecretStr | None = Field(
        None,
        description="HS256 secret of the stream tokens tidings mints (and hosts sign without a "
        "per-tenant signing key). Unset: generated on first start and kept in the store. "
        f"{MIN_SECRET_CHARS}+ characters in production.",
    )
    operator_key: SecretStr | None = Field(
        None,
        description="Bearer key of the operator API (/v1/admin). Unset: generated on first "
        "start and kept in the store; print it with `tidings operator-key`. "
        f"{MIN_OPERATOR_KEY_CHARS}+ characters in production.",
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
    signing_key_cache: float = Field(
        10.0,
        ge=0,
        description="Seconds an instance may keep using a tenant signing key it looked up; a "
        "key revoked through another instance stops verifying here within this time (0: look "
        "up on every token).",
    )
    # -- API-key cache (issue 8, the publish path: tidings.apikeys) ------------------------------
    api_key_cache: float = Field(
        5.0,
        ge=0,
        description="Seconds an instance may trust an API key it checked (and remember a "
        "refused one); a key revoked through another instance or the CLI stops working here "
        "within this time, through this instance at once (0: check the store on every request).",
    )
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
    log_format: Literal["text", "json"] = Field(
        "text", description="'text' lines or 'json' objects, one per line."
    )
    auto_migrate: bool = Field(
        True, description="Apply migrations at start (always on for SQLite)."
    )

    # -- several instances (docs/deploy.md) -----------------------------------------------------
    limits_url: str = Field(
        "",
        description="Redis URL where instances share publish rate limits and stream caps. "
        "Empty: the broker's Redis when the broker is redis://, else per instance. "
        "'memory://': per instance.",
    )
    stream_slot_ttl: float = Field(
        30.0,
        ge=1,
        description="Seconds a stream's cluster-wide slot outlives its last heartbeat (an "
        "instance that crashed frees its slots after this).",
    )
    sweep_interval: float = Field(
        5.0,
        gt=0,
        description="Seconds between safety catch-ups from the store while the broker is up "
        "(bounds how long a lost broker message can delay a notification).",
    )
    # -- the stream's connect path (issue 8 item 5, delivery/recent.py, auth.TokenCache) --------
    stream_ring: int = Field(
        256,
        ge=0,
        description="Latest notifications the hub keeps per tenant it serves: a resume within "
        "them is replayed from memory, beyond them from the store.",
    )
    stream_views: int = Field(
        25_000,
        ge=0,
        description="Users per tenant whose unread count and latest five the hub keeps for "
        "the next connect (least recently used out first; 0: none).",
    )
    stream_view_ttl: float = Field(
        60.0,
        ge=0,
        description="Seconds a kept unread count may serve connects: the bound for changes no "
        "event announces (retention, a preference changed on another instance).",
    )
    token_cache: int = Field(
        25_000,
        ge=0,
        description="Verified stream tokens kept until their expiry (least recently used out "
        "first; 0: verify every time). A revoked signing key is still honoured.",
    )
    # -- the listen backlog (issue 8 item 5, open all streams at once; server.serve) ------------
    backlog: int = Field(
        4096,
        ge=1,
        description="Connections the kernel queues before they are accepted (listen(2) backlog, "
        "capped by net.core.somaxconn): a reconnect storm of thousands of streams must not "
        "overflow it (an overflowed SYN is retried after 1 s).",
    )
    # -- the muted-types cache (issue 8 item 5, channels/mutes.py) --------------------------------
    muted_cache: int = Field(
        100_000,
        ge=0,
        description="Users whose muted types the channels keep for the next connect, kept right "
        "by preference events across instances (least recently used out first; 0: none).",
    )
    demo: bool = Field(
        False,
        description="Mount the Bounce House Rentals demo (/demo, /book/<tenant>) and seed it.",
    )
    demo_token_ttl: int = Field(
        600, ge=1, description="Lifetime (s) of the stream tokens the demo hands its pages."
    )

    # -- channels (tidings.channels): web push, e-mail digests, reminders ------------------------
    channels_workers: bool = Field(
        True, description="Run the push, digest, reminder and presence workers in this process."
    )
    vapid_subject: str = Field(
        "mailto:tidings@localhost",
        description="VAPID 'sub' claim: a mailto: or https: contact for push service operators.",
    )
    push_endpoint_hosts: str = Field(
        "*.googleapis.com,*.push.services.mozilla.com,*.notify.windows.com,*.push.apple.com",
        description="Comma-separated hosts push endpoints may name ('*.x' = subdomains of x, "
        "'*' = any valid DNS name, never an IP literal; an IP literal only when listed exactly). "
        "Internal addresses are refused after resolution too (TIDINGS_PUSH_ALLOW_NETWORKS).",
    )
    push_ca_file: str | None = Field(
        None, description="PEM bundle to trust for push endpoints (private push services)."
    )
    push_ttl: int = Field(
        86400, ge=0, le=2_419_200, description="How long a push service keeps a message (TTL, s)."
    )
    push_unread_delay: float = Field(
        0.0,
        ge=0,
        description="0: push only users without a live stream. N > 0: also push users with a "
        "live stream who have not read the notification N seconds later.",
    )
    push_max_age: int = Field(
        3600, ge=1, description="Notifications older than this (s) are never pushed."
    )
    push_max_attempts: int = Field(6, ge=1, description="Attempts per push before it fails.")
    push_retry_base: float = Field(
        10.0, gt=0, description="First push retry delay (s); doubles per attempt."
    )
    push_retry_max: float = Field(3600.0, gt=0, description="Longest push retry delay (s).")
    push_concurrency: int = Field(16, ge=1, description="Push requests in flight per instance.")
    push_queue_limit: int = Field(
        10_000, ge=1, description="Pending pushes per tenant; beyond it they fail as queue_full."
    )
    push_timeout: float = Field(10.0, gt=0, description="Timeout of one push request (s).")
    presence_interval: float = Field(
        5.0, gt=0, description="Seconds between heartbeats of who has a live stream here."
    )
    idle_poll_max: float = Field(
        10.0,
        gt=0,
        description="Longest pause (s) between the background workers' looks at the store while "
        "nothing happens: after each look that finds nothing the pause doubles from its base "
        "(the planner 1 s, push its next due item, webhooks TIDINGS_WEBHOOK_POLL_INTERVAL while "
        "no endpoint exists) up to this; a publish here, a notification relayed from another "
        "instance or work found brings it back to the base at once.",
    )
    smtp_host: str = Field("", description="SMTP server for e-mail digests; empty: no e-mail.")
    smtp_port: int = Field(587, ge=1, le=65535, description="SMTP port.")
    smtp_username: str = Field("", description="SMTP user name (empty: no AUTH).")
    smtp_password: SecretStr = Field(SecretStr(""), description="SMTP password.")
    smtp_tls: Literal["none", "starttls", "tls"] = Field(
        "starttls", description="none, starttls (upgrade after connect) or tls (implicit TLS)."
    )
    smtp_from: str = Field("tidings <tidings@localhost>", description="From: of digest e-mails.")
    smtp_timeout: float = Field(30.0, gt=0, description="SMTP timeout (s).")
    digest_max_items: int = Field(
        50, ge=1, le=500, description="Most notifications listed in one digest e-mail."
    )
    digest_interval: float = Field(30.0, gt=0, description="Seconds between digest checks.")
    reminder_interval: float = Field(15.0, gt=0, description="Seconds between reminder checks.")

    # -- limits that cannot be walked around (docs/protocol.md#limits) --------------------------
    max_audience_targets: int = Field(
        1000,
        ge=1,
        description="Most audience targets (users + roles) one notification may name "
        "(413 too_many_targets beyond).",
    )
    max_request_targets: int = Field(
        10_000,
        ge=1,
        description="Most audience targets all notifications of one publish request may name "
        "together (413 too_many_targets beyond).",
    )
    publish_cost_targets: int = Field(
        100,
        ge=1,
        description="Audience targets that cost as much as one publish in TIDINGS_PUBLISH_RATE: "
        "a request costs its notifications + ceil(targets / this).",
    )
    max_pending_reminders: int = Field(
        10_000,
        ge=1,
        description="Pending (not yet sent) reminders per tenant through the API "
        "(409 too_many_reminders beyond).",
    )
    push_allow_networks: str = Field(
        "",
        description="Comma-separated CIDRs the push sender may connect to although they are "
        "not public (loopback, private, link-local, CGNAT, …). Empty: public addresses only.",
    )

    @field_validator("push_allow_networks")
    @classmethod
    def _networks(cls, value: str) -> str:
        for part in value.split(","):
            if part.strip():
                ipaddress.ip_network(part.strip(), strict=False)  # ValueError names the culprit
        return value

    # -- the edge: proxies, API docs ---------------------------------------------------------------
    forwarded_allow_ips: str = Field(
        "127.0.0.1,::1",
        description="Comma-separated IPs or CIDR networks of the proxies whose X-Forwarded-Proto "
        "and X-Forwarded-For are believed (the client's address and https). '*' trusts every "
        "peer: only when the port is reachable by the proxy alone. Headers from other peers are "
        "ignored.",
    )
    docs: bool | None = Field(
        None,
        description="Serve the API docs (/docs, /redoc, /openapi.json). Default: on, except "
        "with TIDINGS_ENV=production.",
    )
    opentelemetry: bool = Field(
        False,
        description="Let FastAPI's native OpenTelemetry instrumentation record a span, metrics "
        "and logs per HTTP request once a provider is configured (e.g. under "
        "opentelemetry-instrument). Off by default: tidings' own metrics are Prometheus "
        "(/metrics), and FastAPI otherwise looks for a provider on every request.",
    )

    # -- cross-origin embedding (issue 9 item 1; src/tidings/api/cors.py, docs/embedding.md) ------
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated origins (scheme://host[:port]) whose pages may load the "
        "bell and call the browser-facing routes (/static, /v1/stream, /v1/feed*, "
        "/v1/preferences, /v1/push*, /sse/notifications) cross-origin; '*' allows any origin "
        "(refused with TIDINGS_CORS_CREDENTIALS). Empty: same-origin only. Never on API-key or "
        "operator routes.",
    )
    cors_credentials: bool = Field(
        False,
        description="Send Access-Control-Allow-Credentials: true (cross-origin cookies, e.g. "
        "connect({withCredentials: true})). Not needed with token-url: the stream token is a "
        "header or a query parameter, never a cookie.",
    )
    cors_max_age: int = Field(
        600, ge=0, le=86400, description="Seconds a browser may cache a preflight answer."
    )

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [part for part in value.replace(" ", ",").split(",") if part]
        return value

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        return [normalize_origin(origin) for origin in value]

    @model_validator(mode="after")
    def _no_wildcard_with_credentials(self) -> Settings:
        if self.cors_credentials and "*" in self.cors_origins:
            raise ValueError(
                "TIDINGS_CORS_ORIGINS='*' is refused with TIDINGS_CORS_CREDENTIALS: list the "
                "origins that may send credentials"
            )
        return self

    # -- start-up (docs/reliability.md) ------------------------------------------------------------
    store_retry_max_delay: float = Field(
        10.0,
        gt=0,
        description="A PostgreSQL store that is down at start is retried with backoff (0.5 s, "
        "doubling) up to this many seconds between attempts; the port opens once it answers.",
    )
    store_wait_timeout: float = Field(
        0.0,
        ge=0,
        description="Give up (exit) when the store has not answered after this many seconds at "
        "start; 0: wait for as long as it takes.",
    )

    # -- outbox consumer (tidings.outbox, docs/outbox.md) ------------------------------------------
    outbox_url: str = Field(
        "",
        description="PostgreSQL URL of the host's database that holds tidings_outbox "
        "(postgresql://user:password@host/db). Empty: no outbox consumer.",
    )
    outbox_poll_interval: float = Field(
        5.0,
        gt=0,
        description="Seconds between outbox polls when no NOTIFY woke the consumer (bounds the "
        "delay of a row whose NOTIFY was lost, e.g. while the listening connection was down).",
    )
    outbox_batch: int = Field(
        500, ge=1, le=5000, description="Most outbox rows claimed in one transaction."
    )

    # -- webhooks (tidings.webhooks, docs/webhooks.md) ---------------------------------------------
    webhook_allow_networks: str = Field(
        "",
        description="Comma-separated CIDRs webhook deliveries may connect to although they are "
        "not public (loopback, private, link-local, CGNAT, …). Empty: public addresses only.",
    )
    webhook_timeout: float = Field(
        10.0, gt=0, le=120, description="Seconds one delivery attempt may take, all in all."
    )
    webhook_max_attempts: int = Field(
        8, ge=1, le=50, description="Attempts of one delivery before it is given up."
    )
    webhook_retry_base: float = Field(
        5.0, gt=0, description="Seconds before the first retry; doubled each attempt, jittered."
    )
    webhook_retry_max: float = Field(3600.0, gt=0, description="Longest wait between attempts.")
    webhook_disable_failures: int = Field(
        20,
        ge=1,
        description="Consecutive failed attempts after which an endpoint is disabled (once it "
        "has also been failing for TIDINGS_WEBHOOK_DISABLE_AFTER seconds).",
    )
    webhook_disable_after: float = Field(
        86400.0,
        ge=0,
        description="Seconds an endpoint must have been failing (no success) before it is "
        "disabled automatically.",
    )
    webhook_poll_interval: float = Field(
        2.0, gt=0, description="Seconds between looks at the delivery queue when nothing woke it."
    )
    webhook_concurrency: int = Field(
        16, ge=1, le=1000, description="Endpoints this instance delivers to at once."
    )
    webhook_max_endpoints: int = Field(
        20, ge=1, le=1000, description="Webhook endpoints per tenant (409 beyond)."
    )

    @field_validator("webhook_allow_networks")
    @classmethod
    def _webhook_networks(cls, value: str) -> str:
        return cls._networks(value)

    # -- languages: per-type templates (issue 10 item 5, tidings/templates.py, docs/i18n.md) ------
    max_templates: int = Field(
        500, ge=1, description="Most notification types a tenant may register templates for."
    )
    max_template_locales: int = Field(
        20, ge=1, le=100, description="Most locales of one type's templates."
    )
    max_l10n_chars: int = Field(
        32_000,
        ge=1000,
        description="Most characters of rendered text in all of a notification's locales "
        "(l10n), all together: it travels in every stream frame.",
    )

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def shared_limits_url(self) -> str | None:
        """The Redis URL for cluster-wide limits, or ``None`` for per-instance limits."""
        url = self.limits_url or self.broker_url
        if url.split("://", 1)[0].lower() in ("redis", "rediss"):
            return url.split("?", 1)[0]
        return None

    @field_validator("secret", "operator_key", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        """``TIDINGS_SECRET=`` (empty, as compose files often pass it) means: not set."""
        if value == "" or (isinstance(value, SecretStr) and not value.get_secret_value()):
            return None
        return value

    def check_secrets(self) -> None:
        """Raise :class:`InsecureSettings` (one line) for a secret that must not be used:
        a published default in any environment; in production, an explicit secret shorter
        than its minimum (generated ones are always long enough)."""
        secret = self.secret.get_secret_value() if self.secret else None
        operator = self.operator_key.get_secret_value() if self.operator_key else None
        if secret in PUBLISHED_SECRETS:
            raise InsecureSettings(
                "TIDINGS_SECRET is a published default; unset it (a random one is generated) "
                f"or set {MIN_SECRET_CHARS}+ random characters"
            )
        if operator in PUBLISHED_OPERATOR_KEYS:
            raise InsecureSettings(
                "TIDINGS_OPERATOR_KEY is a published default; unset it (a random one is "
                f"generated) or set {MIN_OPERATOR_KEY_CHARS}+ random characters"
            )
        if self.env != "production":
            return
        if secret is not None and len(secret) < MIN_SECRET_CHARS:
            raise InsecureSettings(
                f"TIDINGS_SECRET must be {MIN_SECRET_CHARS}+ random characters in production "
                "(or unset: a random one is generated)"
            )
        if operator is not None and len(operator) < MIN_OPERATOR_KEY_CHARS:
            raise InsecureSettings(
                f"TIDINGS_OPERATOR_KEY must be {MIN_OPERATOR_KEY_CHARS}+ random characters in "
                "production (or unset: a random one is generated)"
            )

    def secret_source(
        self, name: Literal["secret", "operator_key"]
    ) -> Literal["env", ".env", "settings"] | None:
        """Where an explicit secret was set: ``env``, ``.env`` or ``settings`` (given in code);
        ``None`` when it is unset (then it lives in the store)."""
        if getattr(self, name) is None:
            return None
        variable = f"TIDINGS_{name.upper()}"
        if any(key.upper() == variable for key in os.environ):
            return "env"
        env_file = self.model_config.get("env_file")
        if isinstance(env_file, str) and os.path.isfile(env_file):
            from dotenv import dotenv_values

            if any(key.upper() == variable for key in dotenv_values(env_file)):
                return ".env"
        return "settings"

    def masked(self) -> dict[str, object]:
        """The effective settings with secrets masked, for ``tidings config``."""
        out: dict[str, object] = {}
        for name, value in self.model_dump().items():
            if isinstance(getattr(self, name), SecretStr):
                out[name] = "**********"
            elif name in ("database_url", "broker_url", "outbox_url"):
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


_DEFAULT_PORTS = {"http": 80, "https": 443}


def normalize_origin(origin: str) -> str:
    """``scheme://host[:port]`` as browsers send it in ``Origin`` (lower case, no default port,
    no path), or ``*``. Anything else raises ``ValueError`` naming it."""
    origin = origin.strip()
    if origin == "*":
        return origin
    try:
        parts = urlsplit(origin)
        port = parts.port
    except ValueError:
        parts, port = None, None
    if (
        parts is None
        or parts.scheme.lower() not in _DEFAULT_PORTS
        or not parts.hostname
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or parts.username is not None
    ):
        raise ValueError(f"{origin!r} is not an origin (scheme://host[:port], or '*')")
    scheme, host = parts.scheme.lower(), parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    if port is None or port == _DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"
