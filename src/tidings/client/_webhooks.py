"""Verifying tidings' webhook deliveries (Standard Webhooks, symmetric ``v1`` signatures).

A delivery is a POST whose body is ``{"type", "timestamp", "data"}`` as JSON, with the headers

- ``webhook-id``: the event's id, the same on every retry (deduplicate on it);
- ``webhook-timestamp``: when this attempt was signed, integer Unix seconds;
- ``webhook-signature``: space-separated ``v1,<base64 HMAC-SHA256(key, "id.timestamp.body")>``
  entries, one per signing secret (two while the endpoint's secret is being rotated).

Invariants of :func:`verify_webhook`:

- nothing is parsed or returned before a signature matched: the HMAC is computed over the raw
  body bytes exactly as received, never over re-serialised JSON;
- signatures are compared with :func:`hmac.compare_digest` (constant time);
- an attempt signed more than ``tolerance`` seconds before or after the local clock is refused,
  so a captured delivery cannot be replayed later;
- every refusal is a :class:`WebhookVerificationError` with a stable ``reason``; a secret that
  cannot be a key (not base64, empty) is the caller's mistake: :class:`ValueError`.

The published test vectors of the Standard Webhooks specification pass
(``tests/sdk/test_webhooks.py``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "WebhookEvent",
    "WebhookVerificationError",
    "sign_webhook",
    "verify_webhook",
]

PREFIX = "whsec_"
DEFAULT_TOLERANCE = 300  # seconds, as in the specification's reference libraries
_DIGITS = re.compile(r"[0-9]{1,12}")

Reason = Literal[
    "missing_header",
    "invalid_timestamp",
    "timestamp_too_old",
    "timestamp_too_new",
    "invalid_signature",
    "invalid_payload",
]
Secret = str | bytes
"""``whsec_<base64>`` (as tidings shows it), bare base64, or the raw key bytes."""


class WebhookVerificationError(Exception):
    """A delivery that must not be trusted; answer it with a 4xx and do not act on it.

    ``reason`` is one of ``missing_header``, ``invalid_timestamp``, ``timestamp_too_old``,
    ``timestamp_too_new``, ``invalid_signature`` (no signature matched any secret) and
    ``invalid_payload`` (signed, but not a JSON object with a string ``type``).
    """

    def __init__(self, reason: Reason, message: str) -> None:
        self.reason: Reason = reason
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """A verified delivery: ``id`` (``webhook-id``: the same on every retry of this event, so
    use it to process each event once), ``type`` (``notification.read``, ``push.failed``, …),
    ``timestamp`` (when the event happened, as sent), ``data``, the whole body as ``payload``,
    and ``attempted_at``: the Unix second this attempt was signed."""

    id: str
    type: str
    timestamp: str
    data: dict[str, Any]
    payload: dict[str, Any]
    attempted_at: int


def _key(secret: Secret) -> bytes:
    if isinstance(secret, bytes):
        key = secret
    elif isinstance(secret, str):
        text = secret.strip().removeprefix(PREFIX)
        try:
            key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
        except (binascii.Error, ValueError) as error:
            raise ValueError("a webhook secret is 'whsec_' followed by base64") from error
    else:
        raise TypeError(f"a webhook secret is a str or bytes, not {type(secret).__name__}")
    if not key:
        raise ValueError("a webhook secret must not be empty")
    return key


def _keys(secret: Secret | Iterable[Secret]) -> list[bytes]:
    """One key, or several (every secret the endpoint may be signing with while rotating)."""
    if isinstance(secret, str | bytes):
        return [_key(secret)]
    keys = [_key(s) for s in secret]
    if not keys:
        raise ValueError("no webhook secret given")
    return keys


def _raw(body: bytes | bytearray | memoryview | str) -> bytes:
    return body.encode() if isinstance(body, str) else bytes(body)


def _digest(key: bytes, msg_id: str, timestamp: str, body: bytes) -> bytes:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return hmac.new(key, signed, hashlib.sha256).digest()


def sign_webhook(
    secret: Secret, msg_id: str, timestamp: int, body: bytes | bytearray | memoryview | str
) -> str:
    """The ``webhook-signature`` entry (``v1,<base64>``) tidings sends for this delivery: for
    testing a receiver with deliveries of your own."""
    mac = _digest(_key(secret), msg_id, str(int(timestamp)), _raw(body))
    return "v1," + base64.b64encode(mac).decode()


def _header(headers: Mapping[str, str], name: str) -> str:
    """The header ``name`` (case-insensitive); repeated signature headers are one list."""
    values = [str(v).strip() for k, v in headers.items() if k.lower() == name]
    values = [v for v in values if v]
    if not values:
        raise WebhookVerificationError("missing_header", f"the {name} header is missing")
    if name == "webhook-signature":
        return " ".join(values)
    if len(set(values)) > 1:
        raise WebhookVerificationError("missing_header", f"{name} is sent more than once")
    return values[0]


def _signatures(header: str) -> list[bytes]:
    """The ``v1`` signatures of the header; entries of other schemes (``v1a``) or malformed
    ones are passed over, as the specification says."""
    found = []
    for entry in header.split():
        version, _, encoded = entry.partition(",")
        if version != "v1" or not encoded:
            continue
        try:
            found.append(base64.b64decode(encoded, validate=True))
        except (binascii.Error, ValueError):
            continue
    return found


def _event(msg_id: str, attempted_at: int, body: bytes) -> WebhookEvent:
    try:
        payload = json.loads(body)
    except ValueError as error:
        raise WebhookVerificationError("invalid_payload", "the body is not JSON") from error
    if not isinstance(payload, dict) or not isinstance(payload.get("type"), str):
        raise WebhookVerificationError(
            "invalid_payload", 'the body is not an event ({"type", "timestamp", "data"})'
        )
    data = payload.get("data")
    return WebhookEvent(
        id=msg_id,
        type=payload["type"],
        timestamp=str(payload.get("timestamp", "")),
        data=data if isinstance(data, dict) else {},
        payload=payload,
        attempted_at=attempted_at,
    )


def verify_webhook(
    secret: Secret | Iterable[Secret],
    headers: Mapping[str, str],
    body: bytes | bytearray | memoryview | str,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> WebhookEvent:
    """The event of a delivery whose signature and timestamp check out, else
    :class:`WebhookVerificationError`.

    ``secret`` is the endpoint's ``whsec_…`` secret, or several (the old and the new one while
    you rotate it); ``headers`` any mapping of the request's headers (names in any case);
    ``body`` the raw request body, exactly as received. ``tolerance``: how many seconds the
    attempt's timestamp may be away from ``now`` (default: the local clock).
    """
    keys = _keys(secret)
    msg_id = _header(headers, "webhook-id")
    stamp = _header(headers, "webhook-timestamp")
    signatures = _signatures(_header(headers, "webhook-signature"))
    if not _DIGITS.fullmatch(stamp):
        raise WebhookVerificationError(
            "invalid_timestamp", "webhook-timestamp is not an integer Unix time"
        )
    attempted_at = int(stamp)
    clock = time.time() if now is None else now
    if attempted_at < clock - tolerance:
        raise WebhookVerificationError(
            "timestamp_too_old", f"signed {clock - attempted_at:.0f} s ago (tolerance {tolerance})"
        )
    if attempted_at > clock + tolerance:
        raise WebhookVerificationError(
            "timestamp_too_new",
            f"signed {attempted_at - clock:.0f} s in the future (tolerance {tolerance})",
        )
    raw = _raw(body)
    matched = False
    for key in keys:
        expected = _digest(key, msg_id, stamp, raw)
        for given in signatures:
            matched |= hmac.compare_digest(expected, given)
    if not matched:
        raise WebhookVerificationError(
            "invalid_signature", "no webhook-signature matches the secret"
        )
    return _event(msg_id, attempted_at, raw)
