"""A real webhook receiver on loopback (a threaded HTTP server) that checks each delivery's
Standard Webhooks signature, and tidings settings that let deliveries reach it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

import httpx
import orjson
import pytest

from tests.support import OPERATOR, ServerThread, Tenant
from tidings.client import WebhookVerificationError, verify_webhook
from tidings.config import Settings

FAST = {
    "webhook_allow_networks": "127.0.0.0/8",
    "webhook_poll_interval": 0.1,
    "idle_poll_max": 0.1,  # no idle back-off (tests/channels/test_idle.py has its own)
    "webhook_retry_base": 0.05,
    "webhook_retry_max": 0.2,
    "webhook_timeout": 2.0,
}


@dataclass
class Delivery:
    path: str
    headers: dict[str, str]
    body: bytes
    valid: bool

    @property
    def id(self) -> str:
        return self.headers["webhook-id"]

    @property
    def payload(self) -> Any:
        return orjson.loads(self.body)


@dataclass
class Receiver:
    """Records what it receives. ``answers`` are the statuses of the next requests (then 200);
    ``delay`` seconds before answering. ``secrets`` maps a path to the endpoint's secret."""

    server: ThreadingHTTPServer
    got: list[Delivery] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)
    delay: float = 0.0
    secrets: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def ok(self, path: str = "") -> list[Delivery]:
        """Deliveries answered 2xx (to ``path``, if given)."""
        with self.lock:
            return [d for d in self.got if d.valid and (not path or d.path == path)]

    def wait(self, predicate: Callable[[], bool], timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            assert time.monotonic() < deadline, f"not received in time; got {len(self.got)}"
            time.sleep(0.02)


def _verified(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """The receiver checks deliveries as a host would: with the SDK's verifier (not the
    sender's own code), so signer and verifier are held to each other."""
    try:
        verify_webhook(secret, headers, body)
    except WebhookVerificationError:
        return False
    return True


class QuietHandler(BaseHTTPRequestHandler):
    """A stand-in receiver's request handler: no access log, and a POST read as a host would."""

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def read_post(self, secrets: dict[str, str]) -> tuple[bytes, dict[str, str], bool]:
        """(body, headers with lower-case names, whether it is signed with the secret that
        ``secrets`` holds for this path; never when it holds none)."""
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        headers = {k.lower(): v for k, v in self.headers.items()}
        secret = secrets.get(self.path, "")
        return body, headers, bool(secret) and _verified(secret, headers, body)


R = TypeVar("R", bound=Receiver)


@contextmanager
def serving(
    make: Callable[[ThreadingHTTPServer], R], handler: Callable[[R], type[BaseHTTPRequestHandler]]
) -> Iterator[R]:
    """A receiver ``make(server)`` on a free loopback port, its requests handled by
    ``handler(receiver)``, served from a thread until the block ends."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    found = make(server)
    server.RequestHandlerClass = handler(found)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield found
    finally:
        server.shutdown()
        server.server_close()


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(QuietHandler):
        def do_POST(self) -> None:
            body, headers, signed = self.read_post(receiver.secrets)
            if receiver.delay:
                time.sleep(receiver.delay)
            with receiver.lock:
                status = receiver.answers.pop(0) if receiver.answers else 200
                if not signed:
                    status = 401
                receiver.got.append(Delivery(self.path, headers, body, signed and status < 300))
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

    return Handler


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with serving(Receiver, _handler) as found:
        yield found


@pytest.fixture
def hook_settings(settings: Settings) -> Settings:
    return settings.model_copy(update=FAST)


@pytest.fixture
def hook_server(hook_settings: Settings) -> Iterator[ServerThread]:
    srv = ServerThread(hook_settings).start()
    try:
        yield srv
    finally:
        srv.stop()


def add_endpoint(
    tenant: Tenant, receiver: Receiver, path: str, types: list[str], **extra: Any
) -> dict[str, Any]:
    r = httpx.post(
        f"{tenant.url}/v1/webhooks/endpoints",
        json={"url": f"{receiver.url}{path}", "event_types": types, **extra},
        headers=tenant.auth,
        timeout=10,
    )
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    receiver.secrets[path] = created["secret"]
    return created


def publish(tenant: Tenant, title: str, **fields: Any) -> int:
    r = httpx.post(
        f"{tenant.url}/v1/notifications",
        json={"type": "system", "title": title, **fields},
        headers=tenant.auth,
        timeout=10,
    )
    assert r.status_code == 201, r.text
    seq: int = r.json()["id"]
    return seq


def operator(url: str, method: str, path: str, **kw: Any) -> httpx.Response:
    return httpx.request(
        method, f"{url}{path}", headers={"Authorization": f"Bearer {OPERATOR}"}, timeout=10, **kw
    )


@dataclass
class Holding(Receiver):
    """A :class:`Receiver` that holds its answer to the first request to ``hold`` until
    ``release`` is set, answers 503 to paths in ``down``, and notes when each request came."""

    hold: str = "/held"
    arrived: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    down: set[str] = field(default_factory=set)
    came: list[tuple[str, str, datetime, bool]] = field(default_factory=list)
    """(path, webhook-id, when, signature verified) of every request, in arrival order."""


def _holding_handler(receiver: Holding) -> type[BaseHTTPRequestHandler]:
    class Handler(QuietHandler):
        def do_POST(self) -> None:
            body, headers, signed = self.read_post(receiver.secrets)
            with receiver.lock:
                held = self.path == receiver.hold and not receiver.arrived.is_set()
                status = 503 if self.path in receiver.down else 200
                # Recorded on arrival: a receiver that acts before it answers has seen it.
                receiver.got.append(Delivery(self.path, headers, body, signed and status < 300))
                receiver.came.append((self.path, headers["webhook-id"], datetime.now(UTC), signed))
            if held:
                receiver.arrived.set()
                receiver.release.wait(30)
            try:
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()
            except OSError:  # the sender is gone (killed): nobody hears the answer
                pass

    return Handler


@pytest.fixture
def holding() -> Iterator[Holding]:
    with serving(Holding, _holding_handler) as found:
        try:
            yield found
        finally:
            found.release.set()  # before the server stops: a held answer goes out
