"""Tenant signing keys: a host given one can sign stream tokens for its own tenant only.

A token whose header names a ``kid`` is verified with that key alone and only for the key's
tenant; a revoked key stops verifying (at once here, within ``TIDINGS_SIGNING_KEY_CACHE`` on
other instances).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import OPERATOR, SECRET, ServerThread, Stream, Tenant
from tidings import keyring
from tidings.config import Settings
from tidings.domain.notifications import utcnow
from tidings.store import Store
from tidings.store import signingkeys as kq
from tidings.store import tenants as tq

pytestmark = pytest.mark.anyio
OP = {"Authorization": f"Bearer {OPERATOR}"}


def sign(key: dict[str, Any], tenant: str, user: str = "ann", kid: object = None) -> str:
    """HS256 by hand, so the header may hold what PyJWT would refuse to write (a number)."""
    now = int(time.time())
    claims = {"tenant": tenant, "sub": user, "roles": ["owner"], "iat": now, "exp": now + 60}
    header = {"alg": "HS256", "typ": "JWT", "kid": key["kid"] if kid is None else kid}
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    mac = hmac.new(key["secret"].encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(mac)}"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def status(client: httpx.AsyncClient, url: str, token: str) -> int:
    r = await client.get(f"{url}/v1/feed", headers={"Authorization": f"Bearer {token}"})
    return r.status_code


async def new_key(client: httpx.AsyncClient, url: str, tenant: str) -> dict[str, Any]:
    r = await client.post(
        f"{url}/v1/admin/tenants/{tenant}/signing-keys", json={"name": "host"}, headers=OP
    )
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_a_signing_key_signs_for_its_own_tenant_only(
    server: ServerThread, tenant: Tenant, other_tenant: Tenant
) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        key = await new_key(client, server.url, tenant.id)
        assert key["kid"].startswith("tsk_") and len(key["secret"]) >= 32
        assert key["tenant"] == tenant.id and key["revoked_at"] is None
        r = await client.get(f"{server.url}/v1/admin/tenants/{tenant.id}/signing-keys", headers=OP)
        listed = r.json()["signing_keys"]
        assert [k["kid"] for k in listed] == [key["kid"]]
        assert "secret" not in listed[0], "the secret is shown once only"
        r = await client.get(
            f"{server.url}/v1/admin/tenants/{other_tenant.id}/signing-keys", headers=OP
        )
        assert r.json()["signing_keys"] == []

        own = sign(key, tenant.id)
        async with Stream(server.url, own) as stream:
            assert (await stream.next()).event == "ready"
        assert await status(client, server.url, own) == 200

        # the key's holder cannot sign for another tenant
        assert await status(client, server.url, sign(key, other_tenant.id)) == 401
        # a kid is verified with that key only: the server secret does not stand in for it
        by_server_secret = sign({"kid": key["kid"], "secret": SECRET}, tenant.id)
        assert await status(client, server.url, by_server_secret) == 401
        # nor another tenant's key for it
        theirs = await new_key(client, server.url, other_tenant.id)
        crossed = sign({"kid": key["kid"], "secret": theirs["secret"]}, other_tenant.id)
        assert await status(client, server.url, crossed) == 401
        for kid in ("tsk_0000000000000000", "nope", 7, ""):
            assert await status(client, server.url, sign(key, tenant.id, kid=kid)) == 401, kid


async def test_revoked_keys_stop_verifying_at_once(server: ServerThread, tenant: Tenant) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        key = await new_key(client, server.url, tenant.id)
        token = sign(key, tenant.id)
        assert await status(client, server.url, token) == 200  # now in this instance's cache
        r = await client.delete(f"{server.url}/v1/admin/signing-keys/{key['kid']}", headers=OP)
        assert r.status_code == 200 and r.json()["revoked_at"]
        assert await status(client, server.url, token) == 401
        assert await status(client, server.url, sign(key, tenant.id, user="bob")) == 401
        r = await client.delete(f"{server.url}/v1/admin/signing-keys/tsk_ffffffffffffffff")
        assert r.status_code == 401, "operator only"
        for kid in ("tsk_ffffffffffffffff", "bad kid"):
            r = await client.delete(f"{server.url}/v1/admin/signing-keys/{kid}", headers=OP)
            assert (r.status_code, r.json()["code"]) == (404, "signing_key_not_found")
        r = await client.post(
            f"{server.url}/v1/admin/tenants/ghost/signing-keys", json={}, headers=OP
        )
        assert (r.status_code, r.json()["code"]) == (404, "tenant_not_found")
        r = await client.post(f"{server.url}/v1/admin/tenants/{tenant.id}/signing-keys", json={})
        assert r.status_code == 401


async def test_revocation_reaches_other_instances_within_the_cache_bound(
    settings: Settings, tenant: Tenant, server: ServerThread
) -> None:
    bound = 1.0
    other = ServerThread(settings.model_copy(update={"signing_key_cache": bound})).start()
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            key = await new_key(client, server.url, tenant.id)
            token = sign(key, tenant.id)
            assert await status(client, other.url, token) == 200  # cached on the other one
            r = await client.delete(f"{server.url}/v1/admin/signing-keys/{key['kid']}", headers=OP)
            assert r.status_code == 200
            revoked_at = time.monotonic()
            while await status(client, other.url, token) == 200:
                assert time.monotonic() - revoked_at < bound + 2.0, "still verifying"
    finally:
        other.stop()


async def test_the_key_cache_is_bounded(tmp_path: Path) -> None:
    store = Store(f"sqlite+aiosqlite:///{tmp_path}/keys.db")
    try:
        await store.migrate()
        async with store.write() as conn:
            await tq.create_tenant(conn, "jump-joy", "J", now=utcnow())
            kids = [
                (await kq.create(conn, "jump-joy", f"k{i}", now=utcnow()))[0].kid for i in range(5)
            ]
        cache = keyring.SigningKeys(store, ttl=60, size=3)
        for kid in kids:
            assert (await cache.lookup(kid) or ("",))[0] == "jump-joy"
        assert list(cache._cache) == kids[-3:], "least recently used out first"
        assert await cache.lookup("tsk_0123456789abcdef") is None
        assert len(cache._cache) == 3, "unknown kids are not cached"
    finally:
        await store.close()


def test_cli_signing_keys(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "TIDINGS_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/cli.db",
        "TIDINGS_SECRET": SECRET,
        "TIDINGS_LOG_LEVEL": "WARNING",
    }

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "tidings.cli", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    assert cli("tenant", "create", "jump-joy").returncode == 0
    r = cli("signing-key", "create", "jump-joy", "--name", "backend", "--json")
    assert r.returncode == 0, r.stderr
    key = json.loads(r.stdout)
    assert key["kid"].startswith("tsk_") and key["secret"] and key["name"] == "backend"
    listed = json.loads(cli("signing-key", "list", "jump-joy", "--json").stdout)
    assert [k["kid"] for k in listed] == [key["kid"]] and "secret" not in listed[0]
    revoked = json.loads(cli("signing-key", "revoke", key["kid"], "--json").stdout)
    assert revoked["revoked_at"]
    assert cli("signing-key", "create", "ghost").returncode == 2
    assert cli("signing-key", "revoke", "tsk_0000000000000000").returncode == 2
