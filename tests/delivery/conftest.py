"""Hub-level fixtures: a real store on a temp SQLite file and a hub over it (no server)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tidings.delivery.hub import Hub
from tidings.domain.notifications import utcnow
from tidings.metrics import Metrics
from tidings.store import Store
from tidings.store import tenants as tq

TENANT = "jump-joy"
BUFFER = 4


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = Store(f"sqlite+aiosqlite:///{tmp_path}/hub.db")
    try:
        await store.migrate()
        async with store.write() as conn:
            await tq.create_tenant(conn, TENANT, TENANT, now=utcnow())
        yield store
    finally:
        await store.close()


@pytest.fixture
def hub(store: Store) -> Hub:
    return Hub(store, Metrics(), buffer=BUFFER, max_per_user=10, max_per_tenant=100)
