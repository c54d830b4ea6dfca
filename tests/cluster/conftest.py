"""Cluster fixtures: a work dir per test; the session's PostgreSQL and Redis."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.services import PostgresServer, RedisServer


@pytest.fixture
def redis_live(redis_server: RedisServer) -> Iterator[RedisServer]:
    """The session's Redis, emptied, and started again after a test that stopped it."""
    if redis_server.proc is None or redis_server.proc.poll() is not None:
        redis_server.start()
    redis_server.flush()
    yield redis_server
    if redis_server.proc is None or redis_server.proc.poll() is not None:
        redis_server.start()


@pytest.fixture
def pg_live(postgres_server: PostgresServer) -> Iterator[PostgresServer]:
    """The session's PostgreSQL, started again after a test that stopped it."""
    yield postgres_server
    try:
        postgres_server.sql("SELECT 1")
    except Exception:
        postgres_server.start()


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path
