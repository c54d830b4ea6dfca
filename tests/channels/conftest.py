"""Fixtures for the channels: a Web Push service stand-in (HTTPS on loopback, checks VAPID and
decrypts what it gets), an SMTP sink (aiosmtpd), and tidings servers with channel settings.

Nothing of tidings is mocked; the stand-ins play the parts a browser vendor's push service and
a mail server play in production.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import datetime as dt
import email
import email.policy
import ipaddress
import os
import threading
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any, TypeVar

import http_ece
import httpx
import jwt
import pytest
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fastapi import FastAPI, Request, Response

from tests.support import ServerThread, Tenant, free_port, make_settings
from tidings.config import Settings

T = TypeVar("T")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# -- a loopback CA and server certificate for the push stand-in -----------------------------------


def make_tls(tmp: Path) -> tuple[Path, Path, Path]:
    """(ca.pem, cert.pem, key.pem): a throw-away CA and a certificate for 127.0.0.1 and
    ``localhost``."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tidings test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = (tmp / "ca.pem", tmp / "cert.pem", tmp / "key.pem")
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


# -- the push service stand-in ---------------------------------------------------------------


@dataclass
class Device:
    """A browser-like push subscription: P-256 ECDH key pair and a 16-byte auth secret."""

    name: str
    endpoint: str
    private_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    auth: bytes = field(default_factory=lambda: os.urandom(16))

    def subscription(self) -> dict[str, Any]:
        point = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return {
            "endpoint": self.endpoint,
            "expirationTime": None,
            "keys": {"p256dh": b64url(point), "auth": b64url(self.auth)},
        }


@dataclass
class Received:
    device: str
    message: dict[str, Any]
    headers: dict[str, str]
    claims: dict[str, Any]


class PushService:
    """Answers like a push service: checks the VAPID JWT (signature with the key ``k``, ``aud`` =
    this origin, ``exp`` within 24 h, ``sub``), decrypts the aes128gcm body with the device's keys,
    and records the plaintext. ``script[device]`` holds status codes to answer first."""

    def __init__(self, tmp: Path) -> None:
        self.ca, cert, key = make_tls(tmp)
        self.port = free_port()
        self.origin = f"https://127.0.0.1:{self.port}"
        self.devices: dict[str, Device] = {}
        self.received: list[Received] = []
        self.attempts: dict[str, int] = defaultdict(int)
        self.errors: list[str] = []
        self.script: dict[str, list[int]] = {}
        # gates[device]: a request to it waits (up to 10 s) until the event is set; arrived[device]
        # is set when such a request came in (an attempt held in flight).
        self.gates: dict[str, threading.Event] = {}
        self.arrived: dict[str, threading.Event] = defaultdict(threading.Event)
        self.vapid_key: str | None = None
        self._lock = threading.Lock()
        app = FastAPI()

        @app.post("/push/{name}")
        async def push(name: str, request: Request) -> Response:
            body = await request.body()
            gate = self.gates.get(name)
            if gate is not None:
                self.arrived[name].set()
                await asyncio.to_thread(gate.wait, 10)
            with self._lock:
                self.attempts[name] += 1
                scripted = self.script.get(name)
                status = scripted.pop(0) if scripted else None
            if status is not None and status >= 300:
                return Response(status_code=status, headers={"Retry-After": "0"})
            try:
                received = self._check(name, request, body)
            except Exception as error:
                self.errors.append(f"{name}: {error!r}")
                return Response(str(error), status_code=400)
            with self._lock:
                self.received.append(received)
            return Response(status_code=201, headers={"Location": f"/msg/{len(self.received)}"})

        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            ssl_certfile=str(cert),
            ssl_keyfile=str(key),
            lifespan="off",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def _check(self, name: str, request: Request, body: bytes) -> Received:
        device = self.devices.get(name)
        if device is None:
            raise ValueError("unknown device")
        scheme, _, params = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "vapid":
            raise ValueError(f"Authorization scheme {scheme!r} is not vapid (RFC 8292)")
        parts = dict(p.strip().split("=", 1) for p in params.split(","))
        key = parts["k"]
        if self.vapid_key is not None and key != self.vapid_key:
            raise ValueError("k is not the server's published VAPID key")
        public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(key))
        claims = jwt.decode(
            parts["t"],
            public,
            algorithms=["ES256"],
            audience=[self.origin, f"https://localhost:{self.port}"],
            options={"require": ["exp", "aud", "sub"]},
        )
        if claims["exp"] > time.time() + 24 * 3600:
            raise ValueError("exp more than 24 hours ahead")
        if not str(claims["sub"]).startswith(("mailto:", "https:")):
            raise ValueError("sub is not a mailto: or https: contact")
        if request.headers.get("content-encoding") != "aes128gcm":
            raise ValueError("Content-Encoding is not aes128gcm")
        if not request.headers.get("ttl", "").isdigit():
            raise ValueError("TTL header missing")
        plain = http_ece.decrypt(
            body, private_key=device.private_key, auth_secret=device.auth, version="aes128gcm"
        )
        import orjson

        return Received(name, orjson.loads(plain), dict(request.headers), claims)

    def device(self, name: str) -> Device:
        device = Device(name, f"{self.origin}/push/{name}")
        self.devices[name] = device
        return device

    def for_device(self, name: str) -> list[dict[str, Any]]:
        with self._lock:
            return [r.message for r in self.received if r.device == name]

    async def wait_for(
        self, name: str, count: int = 1, timeout: float = 10
    ) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.for_device(name)
            if len(got) >= count:
                return got
            await asyncio.sleep(0.05)
        raise AssertionError(f"{name} got {self.for_device(name)}; errors: {self.errors}")

    def start(self) -> PushService:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("push stand-in did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def push_service(tmp_path: Path) -> Iterator[PushService]:
    service = PushService(tmp_path).start()
    try:
        yield service
    finally:
        service.stop()


# -- the SMTP sink ---------------------------------------------------------------------------------


class MailSink:
    """aiosmtpd on loopback; keeps every message it accepts."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.messages: list[EmailMessage] = []
        self.port = free_port()
        sink = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                message = email.message_from_bytes(envelope.content, policy=email.policy.default)
                assert isinstance(message, EmailMessage)
                sink.messages.append(message)
                return "250 Message accepted for delivery"

        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if address in str(m["To"])]


@pytest.fixture
def mail_sink() -> Iterator[MailSink]:
    sink = MailSink()
    sink.controller.start()
    try:
        yield sink
    finally:
        sink.controller.stop()


# -- tidings servers with channels ------------------------------------------------------------


@pytest.fixture
def push_server(tmp_path: Path, push_service: PushService) -> Iterator[ServerThread]:
    """A tidings server whose push sender trusts the stand-in push service's TLS."""
    srv = start_server(channel_settings(tmp_path, push_ca_file=str(push_service.ca)))
    try:
        yield srv
    finally:
        srv.stop()


def channel_settings(tmp: str | Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "push_endpoint_hosts": "127.0.0.1",
        # The push stand-in is on loopback, which the sender refuses unless allowed explicitly.
        "push_allow_networks": "127.0.0.1/32",
        "presence_interval": 0.2,
        "reminder_interval": 0.1,
        "digest_interval": 0.1,
        "push_retry_base": 0.2,
        # The workers' idle back-off off: tests move a ManualClock and expect the next look
        # within the base pause (the back-off has its own tests, test_idle.py).
        "idle_poll_max": 0.2,
        "public_url": "https://app.example.test",
    }
    values.update(overrides)
    return make_settings(str(tmp), **values)


def mail_settings(
    tmp: str | Path, sink: MailSink, *, sender: str = "notify@bounce.example", **overrides: Any
) -> Settings:
    """Channel settings that send e-mail in the clear to ``sink`` from ``sender``; the digest
    interval is an hour, so the test ticks the digests itself."""
    return channel_settings(
        tmp,
        smtp_host="127.0.0.1",
        smtp_port=sink.port,
        smtp_tls="none",
        smtp_from=sender,
        digest_interval=3600,
        **overrides,
    )


def start_server(settings: Settings, clock: Any = None) -> ServerThread:
    server = ServerThread(settings)
    if clock is not None:
        server.app.state.channels_clock = clock
    return server.start()


async def on_server(
    server: ServerThread, work: Callable[[Any], Awaitable[T]], timeout: float = 20
) -> T:
    """Run ``work(channels)`` on the server's own event loop (where its store lives)."""
    channels = server.app.state.channels

    async def run() -> T:
        return await work(channels)

    future: concurrent.futures.Future[T] = asyncio.run_coroutine_threadsafe(run(), channels.loop)
    return await asyncio.wait_for(asyncio.wrap_future(future), timeout)


def token(
    tenant: Tenant, user: str, *, roles: list[str] | None = None, email_address: str | None = None
) -> str:
    body: dict[str, Any] = {"user": user, "roles": roles or []}
    if email_address:
        body["email"] = email_address
    r = httpx.post(f"{tenant.url}/v1/tokens", json=body, headers=tenant.auth, timeout=10)
    assert r.status_code == 201, r.text
    value: str = r.json()["token"]
    return value


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


async def wait_until(
    check: Callable[[], Awaitable[bool]], timeout: float = 10, what: str = "condition"
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")
