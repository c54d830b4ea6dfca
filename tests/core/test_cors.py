"""Cross-origin access (TIDINGS_CORS_ORIGINS, src/tidings/api/cors.py) over real sockets.

Browser-facing routes answer an allowed origin, preflights are 204 with what the bell sends,
API-key and operator routes never carry CORS headers, a bad origin gets none (never a 500),
and the stream's head has them both on the edge protocol and on a plain uvicorn run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from tests.support import OPERATOR, PlainServer, ServerThread, Tenant, create_tenant, make_settings
from tidings.config import Settings

HOST = "http://host.test:3000"
EVIL = "http://evil.test"


def preflight(url: str, origin: str, method: str = "POST", headers: str = "") -> httpx.Response:
    return httpx.options(
        url,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": headers,
        },
        timeout=10,
    )


@pytest.fixture
def cors_server(tmp_path: Path) -> Iterator[ServerThread]:
    srv = ServerThread(make_settings(str(tmp_path), cors_origins=HOST)).start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def cors_tenant(cors_server: ServerThread) -> Tenant:
    return create_tenant(cors_server.url, "jump-joy")


# -- settings ------------------------------------------------------------------------------------


def test_origins_are_a_comma_separated_list_normalised(tmp_path: Path) -> None:
    settings = make_settings(
        str(tmp_path), cors_origins="https://App.Example.com:443, http://127.0.0.1:3000"
    )
    assert settings.cors_origins == ["https://app.example.com", "http://127.0.0.1:3000"]
    assert make_settings(str(tmp_path)).cors_origins == []  # default: same-origin only


def test_origins_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIDINGS_CORS_ORIGINS", "http://a.test,https://b.test:8443")
    assert Settings().cors_origins == ["http://a.test", "https://b.test:8443"]


@pytest.mark.parametrize(
    "bad", ["example.com", "ftp://example.com", "https://example.com/app", "https://a.test?x=1"]
)
def test_a_value_that_is_not_an_origin_is_refused_at_start(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ValidationError, match="is not an origin"):
        make_settings(str(tmp_path), cors_origins=bad)


def test_wildcard_with_credentials_is_refused_at_start(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="refused with TIDINGS_CORS_CREDENTIALS"):
        make_settings(str(tmp_path), cors_origins="*", cors_credentials=True)
    make_settings(str(tmp_path), cors_origins="*")  # without credentials: any origin


# -- preflights ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "method"),
    [
        ("/v1/feed", "GET"),
        ("/v1/feed/read", "POST"),
        ("/v1/feed/unread-count", "GET"),
        ("/v1/preferences", "PUT"),
        ("/v1/push/subscriptions", "POST"),
        ("/v1/stream", "GET"),
        ("/sse/notifications", "GET"),
    ],
)
def test_preflight_of_a_browser_route_is_answered(
    cors_server: ServerThread, path: str, method: str
) -> None:
    r = preflight(cors_server.url + path, HOST, method, "authorization,content-type")
    assert r.status_code == 204, r.text
    assert r.headers["access-control-allow-origin"] == HOST
    assert method in r.headers["access-control-allow-methods"]
    allowed = r.headers["access-control-allow-headers"].lower()
    for header in ("authorization", "content-type", "last-event-id"):
        assert header in allowed
    assert int(r.headers["access-control-max-age"]) > 0
    assert "origin" in r.headers["vary"].lower()
    assert "access-control-allow-credentials" not in r.headers


def test_preflight_from_a_bad_origin_is_a_problem_without_cors(cors_server: ServerThread) -> None:
    r = preflight(cors_server.url + "/v1/feed/read", EVIL, "POST", "authorization")
    assert r.status_code == 403
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == "cors_origin_not_allowed"
    assert not any(h.startswith("access-control-allow") for h in r.headers)


@pytest.mark.parametrize(
    "path",
    [
        "/v1/notifications",
        "/v1/notifications/batch",
        "/v1/tokens",
        "/api/sse/broadcast",
        "/v1/admin/tenants",
        "/v1/reminders",
        "/metrics",
    ],
)
def test_api_key_and_operator_routes_never_answer_cors(
    cors_server: ServerThread, path: str
) -> None:
    r = preflight(cors_server.url + path, HOST, "POST", "authorization,content-type")
    assert r.status_code < 500
    assert r.status_code != 204
    assert not any(h.startswith("access-control-") for h in r.headers)


# -- actual requests -----------------------------------------------------------------------------


def test_the_module_scripts_carry_allow_origin(cors_server: ServerThread) -> None:
    for name in ("tidings-bell.js", "tidings.js", "tidings-core.js"):
        r = httpx.get(f"{cors_server.url}/static/{name}", headers={"Origin": HOST}, timeout=10)
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == HOST
        assert "origin" in r.headers["vary"].lower()


def test_feed_calls_carry_cors_for_the_allowed_origin_only(
    cors_server: ServerThread, cors_tenant: Tenant
) -> None:
    auth = {"Authorization": f"Bearer {cors_tenant.token('ann')}"}
    url = cors_server.url
    r = httpx.post(f"{url}/v1/feed/read", json={"all": True}, headers={**auth, "Origin": HOST})
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == HOST
    # An error answer is readable by the page too (its problem code drives the client).
    r = httpx.get(f"{url}/v1/feed?limit=0", headers={**auth, "Origin": HOST})
    assert r.status_code == 422
    assert r.headers["access-control-allow-origin"] == HOST
    # So is a 401: the bell refreshes its token on it.
    r = httpx.get(f"{url}/v1/feed", headers={"Authorization": "Bearer x.y.z", "Origin": HOST})
    assert r.status_code == 401
    assert r.headers["access-control-allow-origin"] == HOST
    # Another origin: served (the request is not the server's to refuse) but unreadable.
    r = httpx.get(f"{url}/v1/feed", headers={**auth, "Origin": EVIL})
    assert r.status_code == 200
    assert "access-control-allow-origin" not in r.headers
    assert "origin" in r.headers["vary"].lower()


def test_publish_with_an_origin_gets_no_cors(
    cors_server: ServerThread, cors_tenant: Tenant
) -> None:
    r = httpx.post(
        f"{cors_server.url}/v1/notifications",
        json={"type": "system", "title": "x"},
        headers={**cors_tenant.auth, "Origin": HOST},
    )
    assert r.status_code == 201
    assert not any(h.startswith("access-control-") for h in r.headers)
    r = httpx.get(
        f"{cors_server.url}/v1/admin/tenants",
        headers={"Authorization": f"Bearer {OPERATOR}", "Origin": HOST},
    )
    assert r.status_code == 200
    assert not any(h.startswith("access-control-") for h in r.headers)


def test_no_origins_configured_means_same_origin_only(tmp_path: Path) -> None:
    srv = ServerThread(make_settings(str(tmp_path))).start()
    try:
        r = preflight(srv.url + "/v1/feed", HOST, "GET", "authorization")
        assert r.status_code == 405
        r = httpx.get(f"{srv.url}/static/tidings-bell.js", headers={"Origin": HOST})
        assert not any(h.startswith("access-control-") for h in r.headers)
    finally:
        srv.stop()


def test_credentials_mode_echoes_the_origin(tmp_path: Path) -> None:
    srv = ServerThread(
        make_settings(str(tmp_path), cors_origins=HOST, cors_credentials=True)
    ).start()
    try:
        r = preflight(srv.url + "/v1/stream", HOST, "GET")
        assert r.headers["access-control-allow-origin"] == HOST
        assert r.headers["access-control-allow-credentials"] == "true"
    finally:
        srv.stop()


def test_wildcard_allows_any_origin(tmp_path: Path) -> None:
    srv = ServerThread(make_settings(str(tmp_path), cors_origins="*")).start()
    try:
        r = httpx.get(f"{srv.url}/static/tidings.js", headers={"Origin": EVIL})
        assert r.headers["access-control-allow-origin"] == "*"
    finally:
        srv.stop()


# -- the stream's head, on the edge and on plain uvicorn ----------------------------------------


def stream_head(url: str, path: str, token: str, origin: str) -> tuple[int, dict[str, Any]]:
    params = {"access_token": token} if path == "/v1/stream" else {"token": token}
    with httpx.stream(
        "GET", url + path, params=params, headers={"Origin": origin}, timeout=10
    ) as r:
        first = next(r.iter_raw())  # the opening arrived: the head was written before it
        assert first.startswith(b"retry:")
        return r.status_code, dict(r.headers)


@pytest.mark.parametrize("edge", [True, False], ids=["edge", "plain-asgi"])
@pytest.mark.parametrize("path", ["/v1/stream", "/sse/notifications"])
def test_stream_head_carries_cors(tmp_path: Path, edge: bool, path: str) -> None:
    settings = make_settings(str(tmp_path), cors_origins=HOST)
    srv = (ServerThread(settings) if edge else PlainServer(settings)).start()
    try:
        token = create_tenant(srv.url, "jump-joy").token("ann")
        status, headers = stream_head(srv.url, path, token, HOST)
        assert status == 200
        assert headers["access-control-allow-origin"] == HOST
        assert headers["content-type"].startswith("text/event-stream")
        status, headers = stream_head(srv.url, path, token, EVIL)
        assert status == 200
        assert "access-control-allow-origin" not in headers
    finally:
        srv.stop()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TIDINGS_CORS_ORIGINS": "*", "TIDINGS_CORS_CREDENTIALS": "true"}, "refused with"),
        ({"TIDINGS_CORS_ORIGINS": "example.com"}, "is not an origin"),
    ],
)
def test_serve_refuses_a_bad_cors_setting_in_one_line(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "tidings", "serve", "--port", "1"],
        env={**os.environ, **env},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 2
    assert run.stderr.startswith("error: ")
    assert message in run.stderr
    assert "Traceback" not in run.stderr


def test_the_readme_quick_start_is_the_tested_one() -> None:
    """README's browser quick start is docs/embedding.md's, which the browser test runs."""
    root = Path(__file__).resolve().parents[2]
    readme = (root / "README.md").read_text()
    docs = (root / "docs" / "embedding.md").read_text()
    section = readme.split("## In the browser\n", 1)[1].split("\n## ", 1)[0]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    for line in block.splitlines():
        assert line.split("    #", 1)[0].rstrip() in docs, line
    assert "TIDINGS_CORS_ORIGINS=http://127.0.0.1:3000" in block
