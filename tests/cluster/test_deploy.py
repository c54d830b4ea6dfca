"""deploy/nginx.conf as shipped (only addresses, ports and certificate paths replaced): nginx
accepts it, offers HTTP/2 to browsers over TLS, and an SSE stream through it is not buffered
(a notification published while the stream is open arrives at once)."""

from __future__ import annotations

import datetime as dt
import os
import re
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.cluster.harness import ROOT, token
from tests.support import ServerThread, create_tenant, free_port, make_settings, require_binary

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


@pytest.mark.timeout(60)
def test_shipped_nginx_config_serves_sse_over_tls_with_http2_unbuffered(tmp_path: Path) -> None:
    nginx = require_binary("nginx", "/usr/sbin/nginx")
    srv = ServerThread(make_settings(str(tmp_path))).start()
    https_port = free_port()
    conf = render(srv.port, free_port(), https_port, tmp_path)
    checked = subprocess.run(
        [nginx, "-t", "-p", str(tmp_path), "-c", str(conf)], capture_output=True, timeout=30
    )
    assert checked.returncode == 0, checked.stderr.decode()
    proc = subprocess.Popen([nginx, "-p", str(tmp_path), "-c", str(conf), "-g", "daemon off;"])
    base = f"https://127.0.0.1:{https_port}"
    try:
        tenant = create_tenant(srv.url, "jump-joy")
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
    finally:
        proc.terminate()
        proc.wait(10)
        srv.stop()


def _until(lines: Iterator[str], wanted: str) -> list[str]:
    seen = []
    for line in lines:
        seen.append(line)
        if line == wanted:
            break
    return seen
