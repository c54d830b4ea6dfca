"""Stream tokens, the operator API and the CLI (every command with --json)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import jwt
import pytest

from tests.support import OPERATOR, SECRET, ServerThread, Stream, Tenant
from tidings.auth import LEEWAY

pytestmark = pytest.mark.anyio


async def test_minted_token_claims(server: ServerThread, tenant: Tenant) -> None:
    async with httpx.AsyncClient(timeout=10, base_url=server.url) as client:
        r = await client.post(
            "/v1/tokens",
            headers=tenant.auth,
            json={"user": "ann", "roles": ["owner"], "email": "ann@example.com", "ttl": 120},
        )
        assert r.status_code == 201, r.text
        claims = jwt.decode(r.json()["token"], SECRET, algorithms=["HS256"], audience="tidings")
        assert claims["tenant"] == tenant.id and claims["sub"] == "ann"
        assert claims["roles"] == ["owner"] and claims["email"] == "ann@example.com"
        assert 115 <= claims["exp"] - time.time() <= 121
        for body in (
            {"user": "a b"},
            {"user": "a", "ttl": 999_999},
            {"user": "a", "x": 1},
            {"user": "a", "email": "nope"},
            {"user": "a", "roles": ["bad role"]},
        ):
            r = await client.post("/v1/tokens", headers=tenant.auth, json=body)
            assert r.status_code == 422, body


async def test_host_signed_tokens_and_forgeries(server: ServerThread, tenant: Tenant) -> None:
    now = int(time.time())
    good = {"tenant": tenant.id, "sub": "ann", "roles": [], "iat": now, "exp": now + 60}
    signed = jwt.encode(good, SECRET, algorithm="HS256")
    async with Stream(server.url, signed) as s:
        assert (await s.next()).event == "ready"
    forgeries = {
        "other secret": jwt.encode(good, "x" * 40, algorithm="HS256"),
        "expired": jwt.encode(
            {**good, "iat": now - 100, "exp": now - 10}, SECRET, algorithm="HS256"
        ),
        "no tenant": jwt.encode(
            {k: v for k, v in good.items() if k != "tenant"}, SECRET, algorithm="HS256"
        ),
        "alg none": jwt.encode(good, None, algorithm="none"),  # type: ignore[arg-type]
        "too long-lived": jwt.encode({**good, "exp": now + 10 * 86400}, SECRET, algorithm="HS256"),
        "garbage": "a.b.c",
    }
    async with httpx.AsyncClient(timeout=10) as client:
        for name, token in forgeries.items():
            r = await client.get(
                f"{server.url}/v1/stream", headers={"Authorization": f"Bearer {token}"}
            )
            assert r.status_code == 401, name
            assert r.json()["code"] in ("invalid_credentials", "token_expired"), name


async def test_token_of_unknown_tenant_sees_nothing(server: ServerThread, tenant: Tenant) -> None:
    now = int(time.time())
    token = jwt.encode(
        {"tenant": "ghost", "sub": "ann", "exp": now + 60, "iat": now}, SECRET, algorithm="HS256"
    )
    async with httpx.AsyncClient(timeout=10, base_url=server.url) as client:
        r = await client.get("/v1/stream", headers={"Authorization": f"Bearer {token}"})
        assert (r.status_code, r.json()["code"]) == (404, "tenant_not_found")
        r = await client.get("/v1/feed", headers={"Authorization": f"Bearer {token}"})
        assert r.json()["items"] == []


async def test_operator_api(server: ServerThread) -> None:
    op = {"Authorization": f"Bearer {OPERATOR}"}
    async with httpx.AsyncClient(timeout=10, base_url=server.url) as client:
        assert (await client.get("/v1/admin/tenants")).status_code == 401
        wrong = {"Authorization": "Bearer wrong"}
        assert (await client.get("/v1/admin/tenants", headers=wrong)).status_code == 401
        r = await client.post(
            "/v1/admin/tenants", json={"id": "jump-joy", "name": "Jump Joy"}, headers=op
        )
        assert r.status_code == 201
        r = await client.post(
            "/v1/admin/tenants", json={"id": "jump-joy", "name": "Again"}, headers=op
        )
        assert (r.status_code, r.json()["code"]) == (409, "tenant_exists")
        r = await client.post("/v1/admin/tenants", json={"id": "Bad Id", "name": "x"}, headers=op)
        assert r.status_code == 422
        r = await client.post(
            "/v1/admin/tenants/jump-joy/keys", json={"name": "k", "scopes": ["launch"]}, headers=op
        )
        assert r.status_code == 422
        r = await client.post("/v1/admin/tenants/ghost/keys", json={"name": "k"}, headers=op)
        assert (r.status_code, r.json()["code"]) == (404, "tenant_not_found")
        r = await client.post("/v1/admin/tenants/jump-joy/keys", json={"name": "k"}, headers=op)
        key = r.json()
        assert key["key"].startswith("tdg_") and key["scopes"] == ["publish", "tokens"]
        listed = (await client.get("/v1/admin/tenants/jump-joy/keys", headers=op)).json()["keys"]
        assert [k["id"] for k in listed] == [key["id"]]
        assert "key" not in listed[0] and "secret_hash" not in listed[0], "shown once only"
        r = await client.delete("/v1/admin/keys/000000000000", headers=op)
        assert r.status_code == 404
        tenants = (await client.get("/v1/admin/tenants", headers=op)).json()["tenants"]
        assert [t["id"] for t in tenants] == ["jump-joy"]


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "TIDINGS_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/cli.db",
        "TIDINGS_SECRET": SECRET,
        "TIDINGS_LOG_LEVEL": "WARNING",
    }
    return subprocess.run(
        [sys.executable, "-m", "tidings.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.timeout(120)  # a dozen CLI processes: ~15 s, 45 s on a loaded machine
def test_cli_json_commands(tmp_path: Path) -> None:
    r = _cli(tmp_path, "tenant", "create", "jump-joy", "--name", "Jump Joy Rentals", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["id"] == "jump-joy"
    r = _cli(tmp_path, "tenant", "create", "jump-joy", "--json")
    assert r.returncode == 2 and "tenant_exists" in r.stderr
    assert [t["id"] for t in json.loads(_cli(tmp_path, "tenant", "list", "--json").stdout)] == [
        "jump-joy"
    ]
    key = json.loads(
        _cli(tmp_path, "key", "create", "jump-joy", "--scope", "publish", "--json").stdout
    )
    assert key["key"].startswith("tdg_") and key["scopes"] == ["publish"]
    token = json.loads(
        _cli(
            tmp_path, "token", "jump-joy", "ann", "--role", "owner", "--ttl", "60", "--json"
        ).stdout
    )
    claims = jwt.decode(token["token"], SECRET, algorithms=["HS256"], audience="tidings")
    assert claims["roles"] == ["owner"]
    revoked = json.loads(_cli(tmp_path, "key", "revoke", key["id"], "--json").stdout)
    assert revoked["revoked_at"]
    config = json.loads(_cli(tmp_path, "config", "--json").stdout)
    assert config["secret"] == "**********" and SECRET not in json.dumps(config)
    assert _cli(tmp_path, "token", "ghost", "ann").returncode == 2
    assert _cli(tmp_path, "migrate").returncode == 0


@pytest.mark.timeout(60)  # CLI processes: 10-15 s
def test_cli_publish_and_tail(server: ServerThread, tenant: Tenant) -> None:
    env = {**os.environ, "TIDINGS_URL": server.url, "TIDINGS_LOG_LEVEL": "WARNING"}
    tail = subprocess.Popen(
        [sys.executable, "-m", "tidings.cli", "tail", "--json", "--token", tenant.token("ann")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert tail.stdout is not None
        first = json.loads(tail.stdout.readline())
        assert first["event"] == "ready"
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "tidings.cli",
                "publish",
                "Bounce castle booked",
                "--type",
                "booking_created",
                "--body",
                "Saturday",
                "--key",
                tenant.key,
                "--json",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["id"] == 1
        event = json.loads(tail.stdout.readline())
        assert event["event"] == "notification" and event["id"] == 1
        assert event["data"]["title"] == "Bounce castle booked"
        bad = subprocess.run(
            [sys.executable, "-m", "tidings.cli", "publish", "x", "--key", "tdg_bad"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert bad.returncode == 2 and "invalid_credentials" in bad.stderr
    finally:
        tail.terminate()
        tail.wait(timeout=10)


async def test_lifetime_rules_whatever_iat_says(server: ServerThread, tenant: Tenant) -> None:
    """``iat`` is required, at most LEEWAY in the future, and ``exp - now`` is capped."""
    max_ttl, now = server.settings.token_max_ttl, int(time.time())
    base = {"tenant": tenant.id, "sub": "ann", "roles": []}

    def signed(**claims: object) -> str:
        return jwt.encode({**base, **claims}, SECRET, algorithm="HS256")

    refused = {
        "no iat, ten years": signed(exp=now + 10 * 365 * 86400),
        "no iat, one minute": signed(exp=now + 60),
        "iat in the future": signed(iat=now + LEEWAY + 60, exp=now + LEEWAY + 120),
        "iat within leeway, exp beyond the cap from now": signed(
            iat=now + LEEWAY - 1, exp=now + max_ttl + LEEWAY + 30
        ),
        "iat as a string": signed(iat=str(now), exp=now + 60),
        "iat true": signed(iat=True, exp=now + 60),
        "exp as a string": signed(iat=now, exp=str(now + 60)),
    }
    async with httpx.AsyncClient(timeout=10, base_url=server.url) as client:
        for name, token in refused.items():
            r = await client.get("/v1/feed", headers={"Authorization": f"Bearer {token}"})
            assert (r.status_code, r.json()["code"]) == (401, "invalid_credentials"), name
        skewed = signed(iat=now + 30, exp=now + 30 + max_ttl)  # a host clock 30 s ahead
        r = await client.get("/v1/feed", headers={"Authorization": f"Bearer {skewed}"})
        assert r.status_code == 200, r.text


async def test_tenant_claim_is_a_tenant_id(server: ServerThread, tenant: Tenant) -> None:
    """A tenant that is not a tenant id (newline, capitals, spaces) never gets past the token:
    not into a log line, not into a query."""
    now = int(time.time())
    async with httpx.AsyncClient(timeout=10, base_url=server.url) as client:
        for bad in (f"{tenant.id}\nINFO forged line", "Jump-Joy", "jump joy", "-x", "a" * 64):
            token = jwt.encode(
                {"tenant": bad, "sub": "ann", "iat": now, "exp": now + 60},
                SECRET,
                algorithm="HS256",
            )
            for path in ("/v1/feed", "/v1/stream"):
                r = await client.get(path, headers={"Authorization": f"Bearer {token}"})
                assert (r.status_code, r.json()["code"]) == (401, "invalid_credentials"), bad
