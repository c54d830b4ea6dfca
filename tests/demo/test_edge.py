"""The demo's edge (issue 12, items 2 and 9): demo routes reach only the tenants the demo seeded,
the demo refuses production, password sign-in is throttled per address and per e-mail and takes
the same path for unknown e-mails, and cookies are ``Secure`` behind a trusted TLS proxy only."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.demo.helpers import DemoServer, form_token, sign_in
from tests.support import OPERATOR, ServerThread, create_tenant, make_settings
from tidings.app import create_app
from tidings.demo import DemoInProduction
from tidings.extensions import bundled

OP = {"Authorization": f"Bearer {OPERATOR}"}
PROXY = "127.0.0.2"  # the one peer this server trusts as its proxy
STRANGER = "127.0.0.3"  # any other peer


def client_from(address: str, url: str) -> httpx.Client:
    """An HTTP client whose connections come from ``address`` (any 127/8 address works)."""
    transport = httpx.HTTPTransport(local_address=address)
    return httpx.Client(base_url=url, timeout=10, transport=transport)


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    """A demo whose store held a real tenant called ``jump-joy`` before the demo first started,
    and which trusts ``PROXY`` as its TLS proxy."""
    tmp = tmp_path_factory.mktemp("edge")
    settings = make_settings(str(tmp), demo=True, forwarded_allow_ips=PROXY)
    plain = ServerThread(make_settings(str(tmp))).start()  # the store before the demo
    try:
        create_tenant(plain.url, "jump-joy")
    finally:
        plain.stop()
    server = DemoServer(settings).start()
    try:
        yield server
    finally:
        server.stop()


def _counts(server: DemoServer, tenant: str) -> tuple[Any, ...]:
    return (
        server.sql("SELECT last_seq FROM tenants WHERE id = ?", tenant)[0][0],
        server.sql("SELECT count(*) FROM notifications WHERE tenant_id = ?", tenant)[0][0],
        server.sql("SELECT count(*) FROM bookings WHERE tenant_id = ?", tenant)[0][0],
        server.sql("SELECT count(*) FROM customers WHERE tenant_id = ?", tenant)[0][0],
        server.sql("SELECT count(*) FROM demo_users WHERE tenant_id = ?", tenant)[0][0],
    )


def _booking(token: str) -> dict[str, str]:
    return {
        "form_token": token,
        "name": "Mallory",
        "email": "mallory@example.com",
        "phone": "",
        "item": "castle-xl",
        "date": (date.today() + timedelta(days=10)).isoformat(),
        "start": "10:00",
        "hours": "4",
        "address": "1 Any Street",
        "notes": "New booking from your bank: call us",
    }


# -- item 2: only the demo's tenants -------------------------------------------------------------


def test_a_tenant_the_demo_did_not_create_is_not_seeded(edge: DemoServer) -> None:
    assert edge.sql("SELECT count(*) FROM demo_users WHERE tenant_id = 'jump-joy'")[0][0] == 0
    assert edge.sql("SELECT count(*) FROM demo_users WHERE tenant_id = 'bounce-bros'")[0][0] == 2
    with httpx.Client(base_url=edge.url, timeout=10) as anon:
        page = anon.get("/demo/login").text
        assert 'data-tenant="bounce-bros"' in page and 'data-tenant="jump-joy"' not in page
        # The published demo password opens nothing in the real tenant.
        r = anon.post(
            "/demo/login",
            data={
                "form_token": form_token(page),
                "email": "ann@jumpjoy.example",
                "password": "bounce-demo",
            },
        )
        assert r.status_code == 401
        assert "demo_session" not in anon.cookies


@pytest.mark.parametrize("tenant", ["jump-joy", "acme"])
def test_the_widget_answers_404_for_a_real_tenant_and_changes_nothing(
    edge: DemoServer, tenant: str
) -> None:
    r = httpx.post(
        f"{edge.url}/v1/admin/tenants", json={"id": tenant, "name": tenant}, headers=OP, timeout=10
    )
    assert r.status_code in (201, 409), r.text
    before = _counts(edge, tenant)
    with httpx.Client(base_url=edge.url, timeout=10) as visitor:
        token = form_token(visitor.get("/book/bounce-bros").text)  # a valid form cookie
        assert visitor.get(f"/book/{tenant}").status_code == 404
        assert visitor.get(f"/book/{tenant}/thanks").status_code == 404
        r = visitor.post(f"/book/{tenant}", data=_booking(token))
        assert r.status_code == 404, r.text
        r = visitor.post(f"/book/{tenant}", data={**_booking(token), "website": "x"})
        assert r.status_code == 404
        # The same form for the demo's own business is accepted (the marker after the refusals).
        assert visitor.post("/book/bounce-bros", data=_booking(token)).status_code == 303
    assert _counts(edge, tenant) == before


def test_the_demo_refuses_production(tmp_path: Path) -> None:
    settings = make_settings(
        str(tmp_path), env="production", demo=True, operator_key="o" * 40, secret="s" * 40
    )
    with pytest.raises(DemoInProduction, match="TIDINGS_ENV=production"):
        create_app(settings, bundled(settings))
    env = {
        **os.environ,
        "TIDINGS_ENV": "production",
        "TIDINGS_SECRET": "s" * 40,
        "TIDINGS_OPERATOR_KEY": "o" * 40,
        "TIDINGS_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/demo.db",
    }
    for command in (["demo"], ["serve"]):  # tidings demo; TIDINGS_DEMO=1 tidings serve
        done = subprocess.run(
            [sys.executable, "-m", "tidings", *command, "--port", "1"],
            env={**env, "TIDINGS_DEMO": "1"},
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
        )
        assert done.returncode == 2, done.stderr
        assert done.stdout == ""
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: the demo cannot run"), done.stderr
        assert not (tmp_path / "demo.db").exists()  # refused before touching the store


# -- item 9: sign-in throttle and constant work for unknown e-mails ------------------------------


def _attempt(client: httpx.Client, email: str, password: str = "wrong", **headers: str) -> Any:
    page = client.get("/demo/login")
    return client.post(
        "/demo/login",
        data={"form_token": form_token(page.text), "email": email, "password": password},
        headers=headers,
    )


def test_sign_in_is_throttled_per_address(edge: DemoServer) -> None:
    # Through the trusted proxy, so each test has addresses of its own.
    with client_from(PROXY, edge.url) as client:
        for i in range(10):
            r = _attempt(client, f"nobody{i}@example.com", **{"X-Forwarded-For": "198.51.100.7"})
            assert r.status_code == 401, r.text
        r = _attempt(
            client, "tia@bouncebros.example", "bounce-demo", **{"X-Forwarded-For": "198.51.100.7"}
        )
        assert r.status_code == 429
        assert int(r.headers["retry-after"]) >= 1
        assert "Too many sign-in attempts" in r.text
        assert r.headers["content-type"].startswith("text/html")
        assert "demo_session" not in client.cookies
        # Another client address is not affected.
        r = _attempt(
            client, "tia@bouncebros.example", "bounce-demo", **{"X-Forwarded-For": "198.51.100.8"}
        )
        assert r.status_code == 303


def test_sign_in_is_throttled_per_email(edge: DemoServer) -> None:
    with client_from(PROXY, edge.url) as client:
        for i in range(5):
            r = _attempt(client, "bob@bouncebros.example", **{"X-Forwarded-For": f"203.0.113.{i}"})
            assert r.status_code == 401
        r = _attempt(
            client, "bob@bouncebros.example", "bounce-demo", **{"X-Forwarded-For": "203.0.113.99"}
        )
        assert r.status_code == 429
        assert int(r.headers["retry-after"]) >= 1
        # Unknown e-mails are throttled alike (the throttle does not tell who exists).
        for i in range(5):
            r = _attempt(client, "ghost@example.com", **{"X-Forwarded-For": f"203.0.114.{i}"})
            assert r.status_code == 401
        r = _attempt(client, "ghost@example.com", **{"X-Forwarded-For": "203.0.114.99"})
        assert r.status_code == 429


def test_unknown_and_known_emails_take_the_same_path(
    edge: DemoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each wrong sign-in runs exactly one scrypt of the same cost, whether the e-mail exists or
    not (counted, not timed: the standard library's scrypt is wrapped, not replaced)."""
    calls: list[tuple[int, int, int, int]] = []
    real = hashlib.scrypt

    def counting(password: bytes, **kw: Any) -> bytes:
        calls.append((kw["n"], kw["r"], kw["p"], kw["dklen"]))
        return real(password, **kw)

    monkeypatch.setattr(hashlib, "scrypt", counting)
    answers = {}
    with client_from(PROXY, edge.url) as client:
        for n, email in enumerate(["tia@bouncebros.example", "nobody-at-all@example.com"]):
            calls.clear()
            r = _attempt(client, email, **{"X-Forwarded-For": f"192.0.2.{n}"})
            answers[email] = (r.status_code, "do not match a demo user" in r.text, list(calls))
    known, unknown = answers.values()
    assert known[:2] == unknown[:2] == (401, True)
    assert len(known[2]) == len(unknown[2]) == 1
    assert known[2] == unknown[2]


# -- item 9: Secure cookies behind a trusted TLS proxy -------------------------------------------


def _set_cookies(r: httpx.Response) -> dict[str, str]:
    return {h.split("=", 1)[0]: h for h in r.headers.get_list("set-cookie")}


def test_cookies_are_secure_behind_the_trusted_proxy(edge: DemoServer) -> None:
    https = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.20"}
    with client_from(PROXY, edge.url) as client:
        page = client.get("/demo/login", headers=https)
        assert "Secure" in _set_cookies(page)["demo_form"]
        token = form_token(page.text)
        pick = page.text.split('name="user" value="', 1)[1].split('"', 1)[0]
        # A browser sends Secure cookies over https (the proxy's side); this client talks http.
        client.cookies.clear()
        client.cookies.set("demo_form", token)
        r = client.post("/demo/login", data={"form_token": token, "user": pick}, headers=https)
        assert r.status_code == 303
        cookies = _set_cookies(r)
        for name in ("demo_session", "tidings_token", "demo_flash"):
            assert "; Secure" in cookies[name] or "; secure" in cookies[name], cookies[name]
        # Plain http through the same proxy: not Secure (the browser would drop them).
        plain = client.get("/demo/login", headers={"X-Forwarded-Proto": "http"})
        assert "secure" not in _set_cookies(plain)["demo_form"].lower()


def test_a_forged_forwarded_proto_from_another_peer_is_ignored(edge: DemoServer) -> None:
    with client_from(STRANGER, edge.url) as client:
        page = client.get("/demo/login", headers={"X-Forwarded-Proto": "https"})
        assert page.status_code == 200
        assert "secure" not in _set_cookies(page)["demo_form"].lower()


def test_picker_sign_in_is_not_throttled(edge: DemoServer) -> None:
    for _ in range(12):
        sign_in(edge.url, "tia").close()
