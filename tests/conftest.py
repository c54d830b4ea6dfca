"""Shared fixtures: settings in a temp dir, a real uvicorn server, a tenant with a key."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import ServerThread, Tenant, create_tenant, make_settings
from tidings.config import Settings


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
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
