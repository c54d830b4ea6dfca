"""No well-known secret ever signs, verifies or opens anything (invariant 7).

With nothing configured the server generates its token secret and operator key once, keeps them
in the store (every instance on the database agrees; a restart keeps them), refuses the values
that were once published as defaults, and ``tidings config`` says where each comes from.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, cast

import httpx
import jwt
import pytest

from tests.support import ServerThread, Stream, free_port
from tidings import keyring
from tidings.app import create_app
from tidings.config import (
    PUBLISHED_OPERATOR_KEYS,
    PUBLISHED_SECRETS,
    InsecureSettings,
    Settings,
)
from tidings.domain.notifications import utcnow
from tidings.store import Store

pytestmark = pytest.mark.anyio

OLD_SECRET = next(iter(PUBLISHED_SECRETS))
OLD_OPERATOR_KEY = next(iter(PUBLISHED_OPERATOR_KEYS))


def unconfigured(settings: Settings) -> Settings:
    """``settings`` as a newcomer runs them: no secret, no operator key."""
    return settings.model_copy(update={"secret": None, "operator_key": None})


def claims(tenant: str, user: str = "ann") -> dict[str, object]:
    now = int(time.time())
    return {"tenant": tenant, "sub": user, "roles": [], "iat": now, "exp": now + 60}


async def test_unconfigured_server_refuses_the_published_secrets(settings: Settings) -> None:
    server = ServerThread(unconfigured(settings)).start()
    try:
        found = server.service.secrets
        assert found.token.source == found.operator.source == "store"
        assert len(found.token.value) >= 32 and len(found.operator.value) >= 24
        assert found.token.value not in PUBLISHED_SECRETS
        op = {"Authorization": f"Bearer {found.operator.value}"}
        old_op = {"Authorization": f"Bearer {OLD_OPERATOR_KEY}"}
        forged = jwt.encode(claims("jump-joy"), OLD_SECRET, algorithm="HS256")
        async with httpx.AsyncClient(timeout=10, base_url=server.url) as client:
            assert (await client.get("/v1/admin/tenants", headers=old_op)).status_code == 401
            r = await client.post(
                "/v1/admin/tenants", json={"id": "jump-joy", "name": "Jump Joy"}, headers=old_op
            )
            assert r.status_code == 401
            r = await client.post(
                "/v1/admin/tenants", json={"id": "jump-joy", "name": "Jump Joy"}, headers=op
            )
            assert r.status_code == 201
            for path in ("/v1/stream", "/v1/feed", "/v1/feed/unread-count"):
                r = await client.get(path, headers={"Authorization": f"Bearer {forged}"})
                assert (r.status_code, r.json()["code"]) == (401, "invalid_credentials"), path
            r = await client.get("/v1/stream", params={"access_token": forged})
            assert r.status_code == 401
            r = await client.post(
                "/v1/admin/tenants/jump-joy/tokens", json={"user": "ann"}, headers=old_op
            )
            assert r.status_code == 401
            r = await client.post(
                "/v1/admin/tenants/jump-joy/tokens", json={"user": "ann"}, headers=op
            )
            token = r.json()["token"]
        jwt.decode(token, found.token.value, algorithms=["HS256"], audience="tidings")
        async with Stream(server.url, token) as stream:
            assert (await stream.next()).event == "ready"
    finally:
        server.stop()


async def test_instances_on_one_database_agree_and_restarts_keep_them(
    settings: Settings,
) -> None:
    # Started one after the other: Alembic cannot migrate in two threads of one process at
    # once. The race itself is test_racing_first_starts_end_with_one_value.
    first = ServerThread(unconfigured(settings)).start()
    second = ServerThread(unconfigured(settings)).start()
    try:
        a, b = first.service.secrets, second.service.secrets
        assert a.token.value == b.token.value and a.operator.value == b.operator.value
        op = {"Authorization": f"Bearer {a.operator.value}"}
        async with httpx.AsyncClient(timeout=10) as client:
            r = await client.post(
                f"{first.url}/v1/admin/tenants", json={"id": "jump-joy", "name": "J"}, headers=op
            )
            assert r.status_code == 201
            r = await client.post(
                f"{first.url}/v1/admin/tenants/jump-joy/tokens", json={"user": "ann"}, headers=op
            )
            minted_by_first = r.json()["token"]
            r = await client.get(
                f"{second.url}/v1/feed", headers={"Authorization": f"Bearer {minted_by_first}"}
            )
            assert r.status_code == 200
    finally:
        first.stop()
        second.stop()
    again = ServerThread(unconfigured(settings)).start()
    try:
        c = again.service.secrets
        assert (c.token.value, c.operator.value) == (a.token.value, a.operator.value)
        assert c.token.created_at == a.token.created_at
        assert not c.token.generated_now and not c.operator.generated_now
    finally:
        again.stop()


async def test_racing_first_starts_end_with_one_value(settings: Settings) -> None:
    """Eight resolutions through separate engines at once (a true race on PostgreSQL)."""
    bare = unconfigured(settings)
    stores = [Store(bare.database_url) for _ in range(8)]
    try:
        await stores[0].migrate()
        found = await asyncio.gather(*(keyring.resolve(bare, s, utcnow()) for s in stores))
    finally:
        for store in stores:
            await store.close()
    assert len({f.token.value for f in found}) == 1
    assert len({f.operator.value for f in found}) == 1
    assert sum(f.operator.generated_now for f in found) == 1


async def test_configured_secrets_are_used_and_never_stored(settings: Settings) -> None:
    explicit = settings.model_copy(update={"operator_key": None})
    server = ServerThread(explicit).start()
    try:
        found = server.service.secrets
        assert found.token.value == settings.secret.get_secret_value()  # type: ignore[union-attr]
        assert found.token.source == "settings" and found.operator.source == "store"
    finally:
        server.stop()
    store = Store(settings.database_url)
    try:
        from tidings.store import serversecrets

        async with store.read() as conn:
            assert await serversecrets.get(conn, keyring.SECRET_NAME) is None
            assert await serversecrets.get(conn, keyring.OPERATOR_NAME) is not None
    finally:
        await store.close()


def test_first_start_logs_one_line_without_the_value(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="tidings.keyring")
    settings = Settings(
        env="test", database_url=f"sqlite+aiosqlite:///{tmp_path}/t.db", channels_workers=False
    ).model_copy(update={"secret": None, "operator_key": None})
    server = ServerThread(settings).start()
    found = server.service.secrets
    server.stop()
    lines = [r.getMessage() for r in caplog.records if r.name == "tidings.keyring"]
    assert len(lines) == 1 and "tidings operator-key" in lines[0], lines
    assert found.operator.value not in caplog.text and found.token.value not in caplog.text
    caplog.clear()
    ServerThread(settings).start().stop()
    assert not [r for r in caplog.records if r.name == "tidings.keyring"], "logged only once"


# -- refusing published defaults ----------------------------------------------------------------


def test_published_defaults_are_refused_in_every_environment() -> None:
    for env in ("development", "test", "production"):
        with pytest.raises(InsecureSettings, match="TIDINGS_SECRET is a published default"):
            Settings(env=env, secret=OLD_SECRET).check_secrets()
        with pytest.raises(InsecureSettings, match="TIDINGS_OPERATOR_KEY is a published"):
            Settings(env=env, operator_key=OLD_OPERATOR_KEY).check_secrets()
        with pytest.raises(InsecureSettings):
            create_app(Settings(env=env, secret=OLD_SECRET))


def test_production_minimum_lengths_apply_to_explicit_secrets_only() -> None:
    with pytest.raises(InsecureSettings, match="TIDINGS_SECRET must be 32"):
        Settings(env="production", secret="s" * 31).check_secrets()
    with pytest.raises(InsecureSettings, match="TIDINGS_OPERATOR_KEY must be 24"):
        Settings(env="production", secret="s" * 32, operator_key="o" * 23).check_secrets()
    Settings(env="production", secret="s" * 32, operator_key="o" * 24).check_secrets()
    Settings(env="production", secret=None, operator_key=None).check_secrets()  # generated
    Settings(env="development", secret="short", operator_key="op").check_secrets()
    assert Settings(secret="", operator_key="").secret is None, "empty means unset"


def _cli(
    tmp_path: Path, *args: str, cwd: Path | None = None, **env: Any
) -> subprocess.CompletedProcess[str]:
    base = {
        k: v
        for k, v in os.environ.items()
        if k not in ("TIDINGS_SECRET", "TIDINGS_OPERATOR_KEY", "TIDINGS_ENV")
    }
    return subprocess.run(
        [sys.executable, "-m", "tidings.cli", *args],
        env={
            **base,
            "TIDINGS_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/cli.db",
            "TIDINGS_LOG_LEVEL": "WARNING",
            **env,
        },
        cwd=cwd or tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TIDINGS_SECRET": OLD_SECRET}, "TIDINGS_SECRET is a published default"),
        ({"TIDINGS_OPERATOR_KEY": OLD_OPERATOR_KEY}, "TIDINGS_OPERATOR_KEY is a published"),
        ({"TIDINGS_ENV": "production", "TIDINGS_SECRET": "x" * 20}, "32+ random characters"),
        ({"TIDINGS_ENV": "production", "TIDINGS_OPERATOR_KEY": "x" * 10}, "24+ random"),
    ],
)
def test_serve_refuses_in_one_line(tmp_path: Path, env: dict[str, str], message: str) -> None:
    r = _cli(tmp_path, "serve", "--port", "1", **cast("dict[str, Any]", env))
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("error: ") and message in r.stderr
    assert "Traceback" not in r.stderr


def test_cli_reads_the_secrets_from_the_store(tmp_path: Path) -> None:
    assert _cli(tmp_path, "tenant", "create", "jump-joy").returncode == 0
    r = _cli(tmp_path, "operator-key", "--json")
    assert r.returncode == 0, r.stderr
    printed = json.loads(r.stdout)
    assert printed["source"].startswith("generated, kept in the store")
    assert _cli(tmp_path, "operator-key").stdout.strip() == printed["operator_key"]
    token = json.loads(_cli(tmp_path, "token", "jump-joy", "ann", "--json").stdout)["token"]
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, OLD_SECRET, algorithms=["HS256"], audience="tidings")
    settings = Settings(
        env="test", database_url=f"sqlite+aiosqlite:///{tmp_path}/cli.db", channels_workers=False
    ).model_copy(update={"secret": None, "operator_key": None})
    server = ServerThread(settings).start()
    try:
        assert server.service.secrets.operator.value == printed["operator_key"]
        feed = httpx.get(
            f"{server.url}/v1/feed", headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
        assert feed.status_code == 200, "the CLI's token verifies on the server"
    finally:
        server.stop()


def test_config_says_where_each_secret_comes_from(tmp_path: Path) -> None:
    secret = "e" * 40
    r = _cli(tmp_path, "config", "--json", TIDINGS_SECRET=secret)
    assert r.returncode == 0, r.stderr
    shown = json.loads(r.stdout)
    assert shown["secret"] == shown["operator_key"] == "**********"
    assert shown["secret_source"] == "environment"
    assert shown["operator_key_source"].startswith("generated, kept in the store since ")
    operator = _cli(tmp_path, "operator-key").stdout.strip()
    assert secret not in r.stdout and operator and operator not in r.stdout
    text = _cli(tmp_path, "config", TIDINGS_SECRET=secret).stdout
    assert "secret = ********** (environment)" in text.splitlines()
    assert operator not in text and secret not in text
    (tmp_path / ".env").write_text(f"TIDINGS_OPERATOR_KEY={'k' * 30}\n")
    shown = json.loads(_cli(tmp_path, "config", "--json").stdout)
    assert shown["operator_key_source"] == ".env file"
    assert shown["secret_source"].startswith("generated, kept in the store since ")
    assert "k" * 30 not in json.dumps(shown)


def test_config_still_prints_when_the_store_is_unreachable(tmp_path: Path) -> None:
    closed = f"postgresql+asyncpg://u:pw@127.0.0.1:{free_port()}/x"
    r = _cli(tmp_path, "config", "--json", TIDINGS_DATABASE_URL=closed, TIDINGS_SECRET="e" * 40)
    assert r.returncode == 0, r.stderr
    shown = json.loads(r.stdout)
    assert shown["secret_source"] == "environment"
    assert shown["operator_key_source"].startswith("in the store, which is not reachable")
