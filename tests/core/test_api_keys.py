"""API keys on the request path (:mod:`tidings.apikeys`): checked once, then served from memory.

A key revoked through an instance fails there at once, on other instances within
``TIDINGS_API_KEY_CACHE`` seconds; refused keys are remembered too, and keys that miss the
cache together share one read. Every test runs on SQLite and on PostgreSQL (``settings``).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from tests.support import OPERATOR, ServerThread, Tenant, open_service
from tidings.config import Settings
from tidings.errors import Unauthorized
from tidings.service import Tidings
from tidings.store import Store

pytestmark = pytest.mark.anyio
OP = {"Authorization": f"Bearer {OPERATOR}"}
NOTE = {"type": "booking_created", "title": "Booking #1"}


@contextmanager
def key_reads(store: Store) -> Iterator[list[str]]:
    """The SQL statements that read ``api_keys`` while the block runs (on the real engine)."""
    seen: list[str] = []

    def on_execute(*args: Any) -> None:
        statement = str(args[2])
        if "FROM api_keys" in statement:
            seen.append(statement)

    engine = store.engine.sync_engine
    event.listen(engine, "before_cursor_execute", on_execute)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", on_execute)


def key_id(key: str) -> str:
    return key.split("_")[1]


def random_key() -> str:
    return f"tdg_{secrets.token_hex(6)}_{secrets.token_urlsafe(32)}"


async def publish(client: httpx.AsyncClient, url: str, key: str) -> httpx.Response:
    return await client.post(
        f"{url}/v1/notifications", json=NOTE, headers={"Authorization": f"Bearer {key}"}
    )


async def test_a_checked_key_costs_no_read_and_a_revoked_one_fails_at_once(
    server: ServerThread, tenant: Tenant
) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        assert (await publish(client, server.url, tenant.key)).status_code == 201
        with key_reads(server.service.store) as reads:
            for _ in range(20):
                assert (await publish(client, server.url, tenant.key)).status_code == 201
        assert reads == [], "a key checked a moment ago is not read again"

        r = await client.delete(f"{server.url}/v1/admin/keys/{key_id(tenant.key)}", headers=OP)
        assert r.status_code == 200, r.text
        r = await publish(client, server.url, tenant.key)
        assert (r.status_code, r.json()["code"]) == (401, "key_revoked")
        r = await client.post(f"{server.url}/v1/tokens", json={"user": "ann"}, headers=tenant.auth)
        assert (r.status_code, r.json()["code"]) == (401, "key_revoked")


async def test_revocation_reaches_other_instances_within_the_cache_bound(
    settings: Settings, server: ServerThread, tenant: Tenant
) -> None:
    bound = 1.0
    other = ServerThread(settings.model_copy(update={"api_key_cache": bound})).start()
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            assert (await publish(client, other.url, tenant.key)).status_code == 201  # cached
            r = await client.delete(f"{server.url}/v1/admin/keys/{key_id(tenant.key)}", headers=OP)
            assert r.status_code == 200, r.text
            revoked_at = time.monotonic()
            assert (await publish(client, server.url, tenant.key)).status_code == 401
            while (r := await publish(client, other.url, tenant.key)).status_code == 201:
                assert time.monotonic() - revoked_at < bound + 2.0, "still accepted"
            assert (r.status_code, r.json()["code"]) == (401, "key_revoked")
    finally:
        other.stop()


async def test_a_new_key_works_at_once_everywhere(
    settings: Settings, server: ServerThread, tenant: Tenant
) -> None:
    """Refused keys are remembered by the whole presented key, so nothing hides a new key."""
    other = ServerThread(settings).start()
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            r = await client.post(
                f"{server.url}/v1/admin/tenants/{tenant.id}/keys",
                json={"name": "second", "scopes": ["publish"]},
                headers=OP,
            )
            assert r.status_code == 201, r.text
            fresh = r.json()["key"]
            assert (await publish(client, other.url, fresh)).status_code == 201
            wrong = fresh[:-4] + ("AAAA" if not fresh.endswith("AAAA") else "BBBB")
            for _ in range(2):  # the second answer comes from the cache, alike
                r = await publish(client, other.url, wrong)
                assert (r.status_code, r.json()["code"]) == (401, "invalid_credentials")
            assert (await publish(client, other.url, fresh)).status_code == 201
    finally:
        other.stop()


async def test_a_flood_of_unknown_keys_shares_reads(settings: Settings) -> None:
    async with open_service(settings) as service:
        flood = [random_key() for _ in range(300)]
        with key_reads(service.store) as reads:
            answers = await asyncio.gather(
                *(service.api_keys.authenticate(k) for k in flood), return_exceptions=True
            )
        assert all(isinstance(a, Unauthorized) and a.code == "invalid_credentials" for a in answers)
        assert 1 <= len(reads) <= 3, f"{len(reads)} reads for 300 keys: not shared"

        with key_reads(service.store) as reads:  # the same keys again: remembered as refused
            for key in flood[:50]:
                with pytest.raises(Unauthorized):
                    await service.api_keys.authenticate(key)
            for malformed in ("tdg_short", "tdg_" + "x" * 80, "nope"):  # refused by shape
                with pytest.raises(Unauthorized) as caught:
                    await service.api_keys.authenticate(malformed)
                assert caught.value.detail == "The API key is malformed."
        assert reads == []


async def test_the_cache_is_bounded_and_can_be_turned_off(settings: Settings) -> None:
    async with open_service(settings) as service:
        keys = await _keys(service, 5)
        cache = service.api_keys
        cache.size = 3
        for key in keys:
            assert (await cache.authenticate(key)).tenant == "jump-joy"
        assert len(cache._valid) == 3, "least recently used out past the bound"
        with key_reads(service.store) as reads:
            await cache.authenticate(keys[-1])
            await cache.authenticate(keys[0])  # was dropped: read again
        assert len(reads) == 1

        cache.forget_tenant("jump-joy")  # e.g. its keys deleted through this instance
        assert len(cache._valid) == 0

        cache.ttl = 0  # TIDINGS_API_KEY_CACHE=0: the store on every request
        cache._valid.clear()
        with key_reads(service.store) as reads:
            for _ in range(3):
                await cache.authenticate(keys[1])
        assert len(reads) == 3


async def _keys(service: Tidings, count: int) -> list[str]:
    await service.create_tenant("jump-joy", "J")
    return [(await service.create_key("jump-joy", f"k{i}", ["publish"]))[1] for i in range(count)]
