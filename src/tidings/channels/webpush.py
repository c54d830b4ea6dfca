"""Standard Web Push: VAPID keys (RFC 8292), message encryption (RFC 8291, ``aes128gcm``) with
``pywebpush``, and delivery to the push service (RFC 8030).

- The VAPID key pair is generated on first start and kept in the store (``kv`` row
  ``channels.vapid``); every instance uses the same pair, so a subscription made through one
  instance is pushed by any. The first instance to insert it wins; the others read it back.
- Subscriptions are checked before they are stored: an ``https`` endpoint whose host is a valid
  RFC 1123 name on the allow-list ``TIDINGS_PUSH_ENDPOINT_HOSTS`` (or an IP address it names
  exactly), a ``p256dh`` that is a point on P-256, a 16-byte ``auth`` secret.
- Whatever the allow-list says, the sender connects only to public addresses (or networks in
  ``TIDINGS_PUSH_ALLOW_NETWORKS``), checked after DNS resolution: :mod:`tidings.channels.egress`.
- Sending never raises: :meth:`PushSender.send` answers a :class:`PushResult` saying whether the
  push was accepted, the subscription is gone (404/410), or the attempt may be retried.

``pywebpush`` encrypts (``WebPusher.encode``) and ``py_vapid`` signs; the HTTP request itself
goes through ``httpcore`` (the engine under ``httpx``) with the egress-checking network backend,
async I/O, timeouts and a custom CA bundle.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import ipaddress
import logging
import re
import ssl
import time
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import httpcore
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import select

from tidings.channels._sql import upsert
from tidings.channels.egress import AddressPolicy, GuardedBackend, default_trust, parse_networks
from tidings.config import Settings
from tidings.errors import Code, ValidationFailed
from tidings.store import Store
from tidings.store.tables import kv

log = logging.getLogger(__name__)

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


_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_TOP = r"[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?"
HOSTNAME = re.compile(rf"(?:{_LABEL}\.)*{_TOP}")


def is_hostname(host: str) -> bool:
    """An RFC 1123 host name: ASCII letters, digits and inner hyphens, labels of 1-63, at most
    253 in all, the last label starting with a letter (so no numeric IPv4 spelling such as
    ``127.1`` or ``0x7f000001`` passes as a name). IDNs arrive as ``xn--`` labels."""
    return len(host) <= 253 and HOSTNAME.fullmatch(host) is not None


def ip_literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.removeprefix("[").removesuffix("]"))
    except ValueError:
        return None


class HostRules:
    """Which hosts push endpoints may name: exact hosts, ``*.suffix``, or ``*`` (any valid host
    name). An IP address is accepted only when listed as such: ``*`` never covers one."""

    def __init__(self, spec: str) -> None:
        items = [part.strip().lower() for part in spec.split(",") if part.strip()]
        self.any = "*" in items
        self.exact = {i for i in items if not i.startswith("*") and ip_literal(i) is None}
        self.addresses = {a for a in map(ip_literal, items) if a is not None}
        self.suffixes = tuple(i[1:] for i in items if i.startswith("*."))

    def allows(self, host: str) -> bool:
        address = ip_literal(host)
        if address is not None:
            return address in self.addresses
        host = host.lower()
        if not is_hostname(host):
            return False
        return self.any or host in self.exact or host.endswith(self.suffixes)


def check_endpoint(endpoint: str, rules: HostRules) -> None:
    """Raise ``ValidationFailed`` unless ``endpoint`` is an https URL on an accepted host.

    Printable ASCII only (a browser sends IDNs as punycode), no backslash (URL parsers disagree
    on it: ``https://127.0.0.1\\.googleapis.com/`` is loopback to a WHATWG parser), no user
    info, a valid port, and a host that is a valid name on the allow-list — or an IP address
    the allow-list names exactly."""
    if len(endpoint) > MAX_ENDPOINT or not all(0x21 <= ord(ch) <= 0x7E for ch in endpoint):
        raise ValidationFailed("endpoint is not a valid URL.", code=Code.INVALID_SUBSCRIPTION)
    if "\\" in endpoint:
        raise ValidationFailed(
            "endpoint must not contain a backslash.", code=Code.INVALID_SUBSCRIPTION
        )
    try:
        parts = urlsplit(endpoint)
        port = parts.port
    except ValueError as error:
        raise ValidationFailed(
            "endpoint is not a valid URL.", code=Code.INVALID_SUBSCRIPTION
        ) from error
    if parts.scheme != "https" or not parts.hostname or "@" in parts.netloc or port == 0:
        raise ValidationFailed(
            "endpoint must be an https:// URL of a push service.", code=Code.INVALID_SUBSCRIPTION
        )
    if not rules.allows(parts.hostname):
        raise ValidationFailed(
            f"Push endpoints on {parts.hostname!r} are not accepted by this server.",
            code=Code.INVALID_SUBSCRIPTION,
        )


def check_subscription(endpoint: str, p256dh: str, auth: str, rules: HostRules) -> None:
    """Raise ``ValidationFailed`` unless this is a subscription a browser could have made."""
    check_endpoint(endpoint, rules)
    try:
        point = unb64url(p256dh)
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
        if len(point) != 65:
            raise ValueError("not an uncompressed point")
    except (ValueError, binascii.Error) as error:
        raise ValidationFailed(
            "keys.p256dh must be the base64url uncompressed P-256 public key of the browser.",
            code=Code.INVALID_SUBSCRIPTION,
        ) from error
    try:
        secret = unb64url(auth)
    except (ValueError, binascii.Error) as error:
        raise ValidationFailed(
            "keys.auth must be base64url.", code=Code.INVALID_SUBSCRIPTION
        ) from error
    if len(secret) != 16:
        raise ValidationFailed(
            "keys.auth must be a 16-byte secret (base64url).", code=Code.INVALID_SUBSCRIPTION
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


UNREACHABLE = "endpoint_unreachable"
RESPONSE_LIMIT = 65_536  # bytes of a push service's answer read (and dropped) at most


class PushSender:
    """Encrypts, signs and posts pushes. One per instance; :meth:`close` on shutdown.

    Requests go through an ``httpcore`` pool whose network backend is
    :class:`~tidings.channels.egress.GuardedBackend`: connections are made only to addresses
    the egress policy permits, checked after resolution. Every failure to reach the endpoint —
    refused by that policy, no such host, connection refused, timeout, TLS or protocol error —
    is the one result ``endpoint_unreachable`` (retried), so the delivery log tells a tenant
    nothing about which hosts and ports exist behind the server. The cause is logged for the
    operator.
    """

    def __init__(self, keys: VapidKeys, settings: Settings) -> None:
        from py_vapid import Vapid02
        from pywebpush import WebPusher  # imports aiohttp and requests: load it once, here

        self._pusher: Any = WebPusher
        self._vapid: Any = Vapid02.from_raw(keys.private.encode())
        self._subject = settings.vapid_subject
        self._tokens: dict[str, tuple[int, dict[str, str]]] = {}
        self._rules = HostRules(settings.push_endpoint_hosts)
        self._timeout = settings.push_timeout
        context = default_trust()
        if settings.push_ca_file:  # a context of its own: the shared one is never changed
            context = ssl.create_default_context()
            context.load_verify_locations(cafile=settings.push_ca_file)
        policy = AddressPolicy(parse_networks(settings.push_allow_networks))
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=context,
            max_connections=settings.push_concurrency,
            keepalive_expiry=60.0,
            network_backend=GuardedBackend(policy),
        )

    async def close(self) -> None:
        await self._pool.aclose()

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
            check_endpoint(endpoint, self._rules)  # stored before the rules tightened?
            status, answer = await self._post(endpoint, body, headers)
        except (ValidationFailed, *_UNREACHABLE) as error:
            log.info("push to %s unreachable: %r", urlsplit(endpoint).netloc, error)
            return PushResult(False, None, UNREACHABLE, retry=True)
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
                retry_after=_retry_after(answer.get("retry-after")),
            )
        return PushResult(False, status, f"push service refused it ({status})")

    async def _post(
        self, endpoint: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, dict[str, str]]:
        """POST, read at most ``RESPONSE_LIMIT`` bytes of the answer; (status, headers)."""
        limit = self._timeout
        timeouts = {"connect": limit, "read": limit, "write": limit, "pool": limit}
        async with asyncio.timeout(limit * 3):  # a trickling answer cannot hold a worker
            async with self._pool.stream(
                "POST",
                endpoint,
                headers=list(headers.items()),
                content=body,
                extensions={"timeout": timeouts},
            ) as response:
                read = 0
                async for chunk in response.aiter_stream():
                    read += len(chunk)
                    if read > RESPONSE_LIMIT:
                        break
                answer = {
                    k.decode("latin-1").lower(): v.decode("latin-1") for k, v in response.headers
                }
                return response.status, answer


_UNREACHABLE = (
    httpcore.NetworkError,
    httpcore.TimeoutException,
    httpcore.ProtocolError,
    httpcore.UnsupportedProtocol,
    TimeoutError,
    ssl.SSLError,
    OSError,
)


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None
