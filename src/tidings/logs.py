"""Logging setup for the CLI: ``TIDINGS_LOG_FORMAT=text`` (default) or ``json`` (one object a
line, for log shippers), and :func:`redact`, which keeps credentials out of log lines. Library
code only ever calls ``logging.getLogger(__name__)``.

Invariant of :func:`redact`: whatever way a client spells it (``access_token``,
``access%5Ftoken``, ``%61ccess_token``, double-encoded), the value of a credential-like query
parameter and any JWT-shaped string never reach a log line. Names and values are judged after
percent-decoding (repeatedly, so a double-encoded token is caught too); the line keeps its
shape (``access%5Ftoken=[redacted]``) so it stays readable.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from urllib.parse import unquote, unquote_plus

import orjson

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry).decode()


def configure(level: str, fmt: str = "text") -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Alembic narrates every migration step at INFO; its errors still surface.
    logging.getLogger("alembic").setLevel(max(logging.WARNING, root.level))


REDACTED = "[redacted]"
# ``name=value`` of a query string (or a form body quoted in a message).
_PAIR = re.compile(r"(?<=[?&;])([^=&;?#\s\"'<>]*)=([^&;#\s\"'<>]*)")
# A run of characters that could hold a token in a path or a message.
_RUN = re.compile(r"[^\s\"'&?/;,=<>()\[\]{}]+")
# A JWT: base64url header (JSON, so "ey…"), payload and signature, dot-separated.
_JWT = re.compile(r"ey[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*")
# Parameter names that carry credentials (stream tokens, unsubscribe tokens, keys, passwords).
_SECRET_NAME = re.compile(
    r"token|secret|passw|pwd|key|auth|jwt|session|signature|credential|^sig$|^code$"
)


def _decodings(text: str) -> list[str]:
    """``text`` and what it becomes after one, two or three rounds of percent-decoding (with
    and without ``+`` as a space): every way a server or a later log reader might read it."""
    seen = [text]
    for decode in (unquote, unquote_plus):
        current = text
        for _ in range(3):
            decoded = decode(current, errors="replace")
            if decoded == current:
                break
            seen.append(decoded)
            current = decoded
    return seen


def _holds_jwt(text: str) -> bool:
    if "%" not in text and "+" not in text:
        return _JWT.search(text) is not None
    return any(_JWT.search(form) for form in _decodings(text))


def _secret_name(name: str) -> bool:
    return any(_SECRET_NAME.search(form.strip().lower()) for form in _decodings(name))


def _pair(match: re.Match[str]) -> str:
    name, value = match.group(1), match.group(2)
    if value and (_secret_name(name) or _holds_jwt(value)):
        return f"{name}={REDACTED}"
    return match.group(0)


def _run(match: re.Match[str]) -> str:
    return REDACTED if _holds_jwt(match.group(0)) else match.group(0)


def redact(text: str) -> str:
    """``text`` without credentials: the value of every credential-like query parameter and
    every JWT-shaped string, judged after percent-decoding, becomes ``[redacted]``."""
    if "=" in text:
        text = _PAIR.sub(_pair, text)
    return _RUN.sub(_run, text)


class RedactCredentials(logging.Filter):
    """A log filter that passes every record through :func:`redact` (message and arguments)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and record.args:
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


def add_filter(name: str, log_filter: logging.Filter) -> None:
    """Add ``log_filter`` to logger ``name`` unless one of its class is there already (an app
    built twice in one process, as the tests do, adds each filter once)."""
    logger = logging.getLogger(name)
    if not any(isinstance(f, type(log_filter)) for f in logger.filters):
        logger.addFilter(log_filter)


def install_redaction() -> None:
    """Keep credentials (``?access_token=``, unsubscribe tokens, anything JWT-shaped, however
    percent-encoded) out of uvicorn's access and error logs: see :func:`redact`."""
    for name in ("uvicorn.access", "uvicorn.error"):
        add_filter(name, RedactCredentials())
