"""Shared fixtures: settings in a temp dir, a real uvicorn server, a tenant with a key."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.services import (  # noqa: F401 - fixtures
    postgres_server,
    postgres_url,
    redis_server,
    redis_url,
)
from tests.support import ServerThread, Tenant, create_tenant, make_settings
from tidings.config import Settings

STORES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=STORES)
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Every test that uses ``settings`` (or ``server``) runs on SQLite and on PostgreSQL; on
    PostgreSQL it gets a fresh migrated database of its own."""
    if request.param == "postgres":
        return make_settings(str(tmp_path), database_url=request.getfixturevalue("postgres_url"))
    return make_settings(str(tmp_path))


@pytest.fixture
def server(settings: Settings) -> Iterator[ServerThread]:
    srv = ServerThread(settings).start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def tenant(server: ServerThread) -> Tenant:
    return create_tenant(server.url, "jump-joy")


@pytest.fixture
def other_tenant(server: ServerThread) -> Tenant:
    return create_tenant(server.url, "bounce-bros")
