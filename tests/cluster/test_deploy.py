"""deploy/nginx.conf as shipped (only addresses, ports, certificate and log paths replaced): nginx
accepts it, offers HTTP/2 to browsers over TLS, and an SSE stream through it is not buffered
(a notification published while the stream is open arrives at once). Its public side refuses
/metrics, the API docs and the operator API, and its access log holds no token."""

from __future__ import annotations

import datetime as dt
import os
import re
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pytest

from tests.cluster.harness import ROOT, token
from tests.support import (
    OPERATOR,
    SECRET,
    ServerThread,
    create_tenant,
    free_port,
    make_settings,
    require_binary,
)
from tidings.channels import unsubscribe

pytestmark = pytest.mark.nginx


def self_signed(work: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = work / "cert.pem", work / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def render(server_port: int, http_port: int, https_port: int, work: Path) -> Path:
    cert, key = self_signed(work)
    site = (ROOT / "deploy" / "nginx.conf").read_text()
    site = re.sub(r"    server 10\.0\.0\.\d+:8000 [^\n]*\n", "", site)
    site = site.replace("least_conn;", f"least_conn;\n    server 127.0.0.1:{server_port};")
    site = site.replace("listen 80;", f"listen 127.0.0.1:{http_port};")
    site = site.replace("listen 443 ssl http2;", f"listen 127.0.0.1:{https_port} ssl http2;")
    site = re.sub(r"    listen \[::\][^\n]*\n", "", site)
    site = re.sub(r"ssl_certificate +\S+;", f"ssl_certificate {cert};", site)
    site = re.sub(r"ssl_certificate_key +\S+;", f"ssl_certificate_key {key};", site)
    site = site.replace("/var/log/nginx/tidings.access.log", str(work / "access.log"))
    snippet = str(ROOT / "deploy" / "tidings-proxy.conf")
    site = site.replace("/etc/nginx/snippets/tidings-proxy.conf", snippet)
    (work / "site.conf").write_text(site)
    user = "user root;\n" if os.geteuid() == 0 else ""
    main = work / "nginx.conf"
    main.write_text(
        f"{user}worker_processes 1;\npid {work}/nginx.pid;\nerror_log {work}/error.log;\n"
        "events { worker_connections 256; }\n"
        f"http {{ access_log off; client_body_temp_path {work}/body; proxy_temp_path "
        f"{work}/proxy; include {work}/site.conf; }}\n"
    )
    return main


def alpn(port: int) -> str | None:
    """The protocol nginx picks when a browser offers h2 and http/1.1."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["h2", "http/1.1"])
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        return tls.selected_alpn_protocol()


@contextmanager
def shipped_nginx(tmp_path: Path, **settings: Any) -> Iterator[tuple[ServerThread, str, int]]:
    """A tidings server behind nginx with the shipped config: (server, https base, https port)."""
    nginx = require_binary("nginx", "/usr/sbin/nginx")
    srv = ServerThread(make_settings(str(tmp_path), **settings)).start()
    https_port = free_port()
    conf = render(srv.port, free_port(), https_port, tmp_path)
    checked = subprocess.run(
        [nginx, "-t", "-p", str(tmp_path), "-c", str(conf)], capture_output=True, timeout=30
    )
    assert checked.returncode == 0, checked.stderr.decode()
    proc = subprocess.Popen([nginx, "-p", str(tmp_path), "-c", str(conf), "-g", "daemon off;"])
    base = f"https://127.0.0.1:{https_port}"
    try:
        with httpx.Client(verify=False, timeout=10) as client:
            deadline = time.monotonic() + 10
            while True:
                try:
                    if client.get(f"{base}/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    if time.monotonic() > deadline:
                        raise
                time.sleep(0.1)
        yield srv, base, https_port
    finally:
        proc.terminate()
        proc.wait(10)
        srv.stop()


@pytest.mark.timeout(60)
def test_shipped_nginx_config_serves_sse_over_tls_with_http2_unbuffered(tmp_path: Path) -> None:
    with shipped_nginx(tmp_path) as (srv, base, https_port):
        tenant = create_tenant(srv.url, "jump-joy")
        with httpx.Client(verify=False, timeout=10) as client:
            assert alpn(https_port) == "h2"
            headers = {"Authorization": f"Bearer {token('jump-joy', 'ann', [])}"}
            with client.stream("GET", f"{base}/v1/stream", headers=headers) as stream:
                assert stream.status_code == 200
                assert stream.headers["content-type"].startswith("text/event-stream")
                lines = stream.iter_lines()
                assert any(line == "event: ready" for line in _until(lines, "event: ready"))
                published = time.monotonic()
                r = client.post(
                    f"{srv.url}/v1/notifications",
                    json={"type": "booking_created", "title": "Through nginx"},
                    headers=tenant.auth,
                )
                assert r.status_code == 201, r.text
                got = list(_until(lines, "event: notification"))
                assert got[-1] == "event: notification"
                assert time.monotonic() - published < 2, "the stream was buffered"


INTERNAL = [
    "/metrics",
    "/docs",
    "/redoc",
    "/openapi.json",
    "/docs/oauth2-redirect",
    "/v1/admin/tenants",
    "/v1/%61dmin/tenants",
    "/v1//admin/tenants",
    "/v1/feed/%2e%2e/admin/tenants",
    "/v1/feed/..%2Fadmin/tenants",
    "/metrics/",
    "/nothing-we-serve",
]


@pytest.mark.timeout(60)
def test_the_public_side_refuses_metrics_docs_and_the_operator_api(tmp_path: Path) -> None:
    op = {"Authorization": f"Bearer {OPERATOR}"}
    with (
        shipped_nginx(tmp_path) as (srv, base, _),
        httpx.Client(verify=False, timeout=10, headers=op) as client,
    ):
        create_tenant(srv.url, "jump-joy")
        # The internal side (the instance itself) serves them ...
        assert httpx.get(f"{srv.url}/metrics", timeout=10).status_code == 200
        assert httpx.get(f"{srv.url}/v1/admin/tenants", headers=op, timeout=10).status_code == 200
        # ... the public side does not, however the path is spelled.
        for path in INTERNAL:
            r = client.get(f"{base}{path}")
            assert r.status_code == 404, (path, r.status_code, r.text[:200])
            assert "jump-joy" not in r.text and "tidings_" not in r.text
        r = client.post(f"{base}/v1/admin/tenants", json={"id": "evil", "name": "evil"})
        assert r.status_code == 404
        assert httpx.get(f"{srv.url}/v1/admin/tenants", headers=op, timeout=10).json()
        assert "evil" not in httpx.get(f"{srv.url}/v1/admin/tenants", headers=op).text
        # The public routes are still there (the marker after the refusals).
        assert client.get(f"{base}/healthz").status_code == 200
        assert client.get(f"{base}/v1/feed").status_code == 401
        assert client.get(f"{base}/static/tidings.js").status_code == 200


@pytest.mark.timeout(60)
def test_the_access_log_holds_no_token(tmp_path: Path) -> None:
    with shipped_nginx(tmp_path) as (srv, base, _):
        create_tenant(srv.url, "jump-joy")
        stream_token = token("jump-joy", "ann", [])
        unsub = unsubscribe.make_token(SECRET, "jump-joy", "ann")
        with httpx.Client(verify=False, timeout=10) as client:
            for query in (f"access_token={stream_token}", f"access%5Ftoken={stream_token}"):
                with client.stream("GET", f"{base}/v1/stream?{query}&last_event_id=0") as s:
                    assert s.status_code == 200
                    assert "event: ready" in _until(s.iter_lines(), "event: ready")
            assert client.get(f"{base}/v1/unsubscribe?token={unsub}").status_code == 200
            assert client.get(f"{base}/healthz?marker=1").status_code == 200
        log = tmp_path / "access.log"
        deadline = time.monotonic() + 10
        while log.read_text().count("GET /v1/stream") < 2:  # written as each stream ends
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        text = log.read_text()
        assert "GET /v1/unsubscribe HTTP" in text and "GET /healthz HTTP" in text, text
        decoded = unquote(unquote(text))
        for secret in (stream_token, unsub):
            for part in secret.split(".")[1:]:
                assert part not in decoded, text
        assert "access_token" not in decoded and "token=" not in decoded


def _until(lines: Iterator[str], wanted: str) -> list[str]:
    seen = []
    for line in lines:
        seen.append(line)
        if line == wanted:
            break
    return seen


@pytest.mark.timeout(60)
def test_cookies_set_through_the_tls_proxy_are_secure(tmp_path: Path) -> None:
    """nginx (a trusted proxy on loopback, the default TIDINGS_FORWARDED_ALLOW_IPS) says https:
    the demo's cookies are Secure."""
    with (
        shipped_nginx(tmp_path, demo=True) as (_, base, _port),
        httpx.Client(verify=False, timeout=10) as client,
    ):
        r = client.get(f"{base}/demo/login")
        assert r.status_code == 200
        cookie = next(h for h in r.headers.get_list("set-cookie") if h.startswith("demo_form="))
        assert "secure" in [part.strip().lower() for part in cookie.split(";")]
