"""An in-process service over a real, migrated SQLite store: no server, no HTTP.

The tests written to kill mutants (``tests/core/direct/``, docs/testing.md) run here, at the
lowest level that can see each invariant, so ``make mutants`` spends its time on them in
milliseconds. The database is migrated once per session and copied for each test.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tidings.config import Settings
from tidings.delivery.broker import from_url
from tidings.delivery.hub import Hub
from tidings.domain.notifications import NewNotification
from tidings.domain.principals import Principal
from tidings.metrics import Metrics
from tidings.service import Tidings
from tidings.store import Store

SECRET = "test-secret-0123456789-0123456789-abcdef"


def principal(tenant: str, user: str, *roles: str) -> Principal:
    return Principal(
        tenant=tenant,
        user=user,
        roles=frozenset(roles),
        expires_at=datetime.now(UTC) + timedelta(hours=1),
    )


async def migrated_template(directory: Path) -> Path:
    """A migrated, empty SQLite database file (made once, copied per test)."""
    path = directory / "template.db"
    store = Store(f"sqlite+aiosqlite:///{path}")
    try:
        await store.migrate()
    finally:
        await store.close()
    return path


@asynccontextmanager
async def service_on(
    template: Path, directory: Path, broker_url: str = "memory://", **settings: Any
) -> AsyncIterator[Tidings]:
    """A ``Tidings`` wired as ``create_app`` wires it, over a fresh copy of ``template``."""
    path = directory / "tidings.db"
    shutil.copyfile(template, path)
    url = f"sqlite+aiosqlite:///{path}"
    values: dict[str, Any] = {
        "env": "test",
        "database_url": url,
        "secret": SECRET,
        "operator_key": "test-operator-key",
        "publish_rate": "100000/second",
    }
    values.update(settings)
    config = Settings(**values)
    store = Store(url)
    metrics = Metrics()
    hub = Hub(
        store,
        metrics,
        buffer=config.subscriber_buffer,
        max_per_user=config.max_streams_per_user,
        max_per_tenant=config.max_streams_per_tenant,
    )
    try:
        async with from_url(broker_url) as broker:
            service = Tidings(config, store, broker, hub, metrics)
            await service.load_secrets()
            yield service
    finally:
        hub.shutdown()
        await store.close()


def new(title: str, *, type_: str = "booking_created", **fields: Any) -> NewNotification:
    return NewNotification(type=type_, title=title, **fields)
