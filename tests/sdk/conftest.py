"""One live tidings (uvicorn on a free loopback port, SQLite) per SDK test module; each test
gets its own tenant on it, so tests do not see each other's notifications."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from tests.sdk.both import Clients
from tests.support import OPERATOR, ServerThread, Tenant, create_tenant, make_settings

_ids = itertools.count(1)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    srv = ServerThread(make_settings(str(tmp_path_factory.mktemp("sdk")))).start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def fresh(live: ServerThread) -> Tenant:
    """A new tenant with a ``publish, tokens, admin`` key."""
    return create_tenant(live.url, f"sdk-{next(_ids)}")


@pytest.fixture
def operator_key() -> str:
    return OPERATOR


@pytest.fixture(params=["sync", "async"])
def make(request: pytest.FixtureRequest) -> Iterator[Clients]:
    """``make(url, **options)``: a :class:`Client`, or an :class:`AsyncClient` driven the same
    way (``tests/sdk/both.py``), so each test body checks both surfaces."""
    factory = Clients(request.param)
    try:
        yield factory
    finally:
        factory.close()
