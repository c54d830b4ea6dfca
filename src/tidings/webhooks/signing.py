"""Standard Webhooks signatures (https://www.standardwebhooks.com/, ``spec/standard-webhooks.md``).

A secret is ``whsec_`` + base64 of 24 random bytes; the HMAC key is the base64-decoded part.
Each attempt is sent with three headers:

- ``webhook-id``: the event's id (``msg_…``), the same on every retry and replay (receivers
  deduplicate on it);
- ``webhook-timestamp``: seconds since the epoch, of this attempt;
- ``webhook-signature``: ``v1,`` + base64(HMAC-SHA256(key, ``"{id}.{timestamp}.{body}"``)).

Invariant: :func:`sign` reproduces the specification's published test vector
(``tests/webhooks/test_signing.py``), so any Standard Webhooks library verifies what we send.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Mapping

PREFIX = "whsec_"
TOLERANCE = 300  # seconds a receiver should accept a timestamp off by (the spec's advice)


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(PREFIX))


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value (one ``v1`` signature)."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
    }


def verify(secret: str, received: Mapping[str, str], body: bytes, *, now: int) -> bool:
    """True if one of the ``v1`` signatures in ``received`` matches and the timestamp is within
    :data:`TOLERANCE` of ``now`` (what a receiver does; the SDK has its own helper)."""
    try:
        msg_id = received["webhook-id"]
        timestamp = int(received["webhook-timestamp"])
        offered = received["webhook-signature"].split()
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > TOLERANCE:
        return False
    expected = sign(secret, msg_id, timestamp, body)
    return any(hmac.compare_digest(expected, candidate) for candidate in offered)
