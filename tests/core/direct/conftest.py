"""Fixtures of the mutant-killing tests: a service over a migrated SQLite copy (support.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from tests.core.direct.support import migrated_template, service_on
from tidings.service import Tidings


@pytest.fixture(scope="session")
def store_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return anyio.run(migrated_template, tmp_path_factory.mktemp("template"))


@pytest.fixture
async def service(store_template: Path, tmp_path: Path) -> AsyncIterator[Tidings]:
    """A service with tenants ``t1`` and ``t2`` (no streams, no server)."""
    async with service_on(store_template, tmp_path) as svc:
        await svc.create_tenant("t1", "Tenant one")
        await svc.create_tenant("t2", "Tenant two")
        yield svc
