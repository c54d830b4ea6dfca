"""Standard Web Push: VAPID keys (RFC 8292), message encryption (RFC 8291, ``aes128gcm``) with
``pywebpush``, and delivery to the push service (RFC 8030).

- The VAPID key pair is generated on first start and kept in the store (``kv`` row
  ``channels.vapid``); every instance uses the same pair, so a subscription made through one
  instance is pushed by any. The first instance to insert it wins; the others read it back.
- Subscriptions are checked before they are stored: an ``https`` endpoint on an allowed host
  (``TIDINGS_PUSH_ENDPOINT_HOSTS``, so the sender cannot be pointed at internal services), a
  ``p256dh`` that is a point on P-256, a 16-byte ``auth`` secret.
- Sending never raises: :meth:`PushSender.send` answers a :class:`PushResult` saying whether the
  push was accepted, the subscription is gone (404/410), or the attempt may be retried.

``pywebpush`` encrypts (``WebPusher.encode``) and ``py_vapid`` signs; the HTTP request itself
goes through ``httpx`` (already our client) for async I/O, timeouts and a custom CA bundle.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ssl
import time
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import select

from tidings.channels._sql import upsert
from tidings.config import Settings
from tidings.errors import ValidationFailed
from tidings.store import Store
from tidings.store.tables import kv

KV_KEY = "channels.vapid"
MAX_ENDPOINT = 2048


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class VapidKeys:
    private: str  # base64url of the 32-byte private scalar
    public: str  # base64url of the 65-byte uncompressed point: the applicationServerKey

    @classmethod
    def generate(cls) -> VapidKeys:
        key = ec.generate_private_key(ec.SECP256R1())
        scalar = key.private_numbers().private_value.to_bytes(32, "big")
        point = key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        return cls(private=b64url(scalar), public=b64url(point))


async def load_or_create_keys(store: Store, now: datetime) -> VapidKeys:
    """The deployment's VAPID keys; created (once, whichever instance is first) if missing."""
    async with store.write() as conn:
        value = (
            await conn.execute(select(kv.c.value).where(kv.c.key == KV_KEY))
        ).scalar_one_or_none()
        if value is None:
            fresh = VapidKeys.generate()
            stmt = upsert(conn)(kv).values(
                key=KV_KEY, value={"private": fresh.private, "public": fresh.public}, updated_at=now
            )
            await conn.execute(stmt.on_conflict_do_nothing(index_elements=["key"]))
            value = (await conn.execute(select(kv.c.value).where(kv.c.key == KV_KEY))).scalar_one()
    return VapidKeys(private=value["private"], public=value["public"])


class HostRules:
    """Which hosts push endpoints may name: exact hosts, ``*.suffix``, or ``*``."""

    def __init__(self, spec: str) -> None:
        items = [part.strip().lower() for part in spec.split(",") if part.strip()]
        self.any = "*" in items
        self.exact = {i for i in items if not i.startswith("*")}
        self.suffixes = tuple(i[1:] for i in items if i.startswith("*."))

    def allows(self, host: str) -> bool:
        host = host.lower()
        return self.any or host in self.exact or host.endswith(self.suffixes)


def check_subscription(endpoint: str, p256dh: str, auth: str, rules: HostRules) -> None:
    """Raise ``ValidationFailed`` unless this is a subscription a browser could have made."""
    if len(endpoint) > MAX_ENDPOINT or any(ord(ch) < 0x21 for ch in endpoint):
        raise ValidationFailed("endpoint is not a valid URL.", code="invalid_subscription")
    parts = urlsplit(endpoint)
    if parts.scheme != "https" or not parts.hostname or parts.username or parts.password:
        raise ValidationFailed(
            "endpoint must be an https:// URL of a push service.", code="invalid_subscription"
        )
    if not rules.allows(parts.hostname):
        raise ValidationFailed(
            f"Push endpoints on {parts.hostname!r} are not accepted by this server.",
            code="invalid_subscription",
        )
    try:
        point = unb64url(p256dh)
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
        if len(point) != 65:
            raise ValueError("not an uncompressed point")
    except (ValueError, binascii.Error) as error:
        raise ValidationFailed(
            "keys.p256dh must be the base64url uncompressed P-256 public key of the browser.",
            code="invalid_subscription",
        ) from error
    try:
        secret = unb64url(auth)
    except (ValueError, binascii.Error) as error:
        raise ValidationFailed(
            "keys.auth must be base64url.", code="invalid_subscription"
        ) from error
    if len(secret) != 16:
        raise ValidationFailed(
            "keys.auth must be a 16-byte secret (base64url).", code="invalid_subscription"
        )


def endpoint_hash(endpoint: str) -> str:
    return hashlib.sha256(endpoint.encode()).hexdigest()


def topic(tenant: str, seq: int) -> str:
    """A ``Topic`` header (≤ 32 base64url chars): a re-sent push replaces an undelivered one."""
    return b64url(hashlib.sha256(f"{tenant}:{seq}".encode()).digest())[:32]


@dataclass(frozen=True, slots=True)
class PushResult:
    ok: bool
    status: int | None
    reason: str
    gone: bool = False
    retry: bool = False
    retry_after: float | None = None


class PushSender:
    """Encrypts, signs and posts pushes. One per instance; :meth:`close` on shutdown."""

    def __init__(self, keys: VapidKeys, settings: Settings) -> None:
        from py_vapid import Vapid02
        from pywebpush import WebPusher  # imports aiohttp and requests: load it once, here

        self._pusher: Any = WebPusher
        self._vapid: Any = Vapid02.from_raw(keys.private.encode())
        self._subject = settings.vapid_subject
        self._tokens: dict[str, tuple[int, dict[str, str]]] = {}
        verify: ssl.SSLContext | bool = True
        if settings.push_ca_file:
            verify = ssl.create_default_context()
            verify.load_verify_locations(cafile=settings.push_ca_file)
        self._client = httpx.AsyncClient(
            timeout=settings.push_timeout, verify=verify, follow_redirects=False
        )

    async def close(self) -> None:
        await self._client.aclose()

    def _authorization(self, endpoint: str) -> dict[str, str]:
        """``Authorization: vapid t=<JWT>,k=<key>``; one JWT per push service for ~11 hours."""
        parts = urlsplit(endpoint)
        audience = f"{parts.scheme}://{parts.netloc}"
        now = int(time.time())
        cached = self._tokens.get(audience)
        if cached is not None and cached[0] - now > 3600:
            return cached[1]
        expires = now + 12 * 3600
        headers = self._vapid.sign({"aud": audience, "exp": expires, "sub": self._subject})
        self._tokens[audience] = (expires, {"Authorization": headers["Authorization"]})
        return self._tokens[audience][1]

    async def send(
        self,
        endpoint: str,
        p256dh: str,
        auth: str,
        payload: bytes,
        *,
        ttl: int,
        topic: str | None = None,
        urgency: str = "normal",
    ) -> PushResult:
        try:
            body = self._pusher(
                {"endpoint": endpoint, "keys": {"p256dh": p256dh, "auth": auth}}
            ).encode(payload, "aes128gcm")["body"]
            headers = {
                **self._authorization(endpoint),
                "TTL": str(ttl),
                "Content-Encoding": "aes128gcm",
                "Content-Type": "application/octet-stream",
                "Urgency": urgency,
            }
        except Exception as error:  # a subscription whose keys cannot encrypt: never retried
            return PushResult(False, None, f"encryption failed: {error!r}"[:200])
        if topic:
            headers["Topic"] = topic
        try:
            response = await self._client.post(endpoint, content=body, headers=headers)
        except httpx.TransportError as error:
            return PushResult(False, None, f"network: {error.__class__.__name__}", retry=True)
        status = response.status_code
        if status in (200, 201, 202):
            return PushResult(True, status, "accepted")
        if status in (404, 410):
            return PushResult(False, status, "subscription gone", gone=True)
        if status == 429 or status >= 500:
            return PushResult(
                False,
                status,
                f"push service answered {status}",
                retry=True,
                retry_after=_retry_after(response.headers.get("retry-after")),
            )
        return PushResult(False, status, f"push service refused it ({status})")


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None
