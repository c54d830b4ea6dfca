"""Outbox fixtures: a host's own PostgreSQL database (empty, not a tidings store) with the
outbox DDL applied, and small host-side helpers (asyncpg, as a host would use)."""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections.abc import Iterator
from typing import Any

import asyncpg
import orjson
import pytest

from tests.services import PostgresServer, run_sync
from tidings.outbox.schema import SQL

_names = itertools.count(1)


def host_database(server: PostgresServer, *, ddl: bool = True) -> tuple[str, str]:
    """A fresh, empty database of "the host" (name, asyncpg URL), with the outbox DDL."""
    name = f"host_{os.getpid()}_{next(_names)}"
    server.sql(f"CREATE DATABASE {name}")
    if ddl:
        server.sql(SQL, database=name)
    return name, server.url(name, driver="postgresql")


@pytest.fixture
def outbox_url(postgres_server: PostgresServer) -> Iterator[str]:
    name, url = host_database(postgres_server)
    try:
        yield url
    finally:
        postgres_server.drop_database(name)


def note(tenant: str, title: str, **fields: Any) -> tuple[str, str]:
    return tenant, orjson.dumps({"type": "system", "title": title, **fields}).decode()


async def insert(url: str, rows: list[tuple[str, str]]) -> list[int]:
    """Insert (tenant, payload JSON) rows in one host transaction; their ids."""
    conn = await asyncpg.connect(url, timeout=10)
    try:
        async with conn.transaction():
            found = await conn.fetch(
                "INSERT INTO tidings_outbox (tenant, payload) "
                "SELECT t, p::jsonb FROM unnest($1::text[], $2::text[]) WITH ORDINALITY "
                "AS u(t, p, n) ORDER BY n RETURNING id",
                [t for t, _ in rows],
                [p for _, p in rows],
                timeout=30,
            )
        return [r["id"] for r in found]
    finally:
        await conn.close()


async def fetch(url: str, query: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url, timeout=10)
    try:
        rows: list[asyncpg.Record] = await conn.fetch(query, *args, timeout=30)
        return rows
    finally:
        await conn.close()


async def waiting(url: str) -> int:
    return int((await fetch(url, "SELECT count(*) AS n FROM tidings_outbox"))[0]["n"])


async def drained(url: str, timeout: float = 20.0) -> None:
    """Until tidings_outbox is empty (bounded)."""
    deadline = time.monotonic() + timeout
    while (left := await waiting(url)) > 0:
        assert time.monotonic() < deadline, f"{left} outbox rows still waiting after {timeout}s"
        await asyncio.sleep(0.05)


def insert_sync(url: str, rows: list[tuple[str, str]]) -> list[int]:
    return run_sync(lambda: insert(url, rows))
