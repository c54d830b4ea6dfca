"""The operator's removals from the command line (``key list``, ``tenant delete``, ``user
erase``), over a store holding the demo's two rental businesses, and a tenant's deletion
reaching every table that has a ``tenant_id`` (the demo's included)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, text
from typer.testing import CliRunner

from tests.support import SECRET, make_settings, open_service
from tidings.cli import app
from tidings.config import Settings
from tidings.domain.notifications import Audience, NewNotification, utcnow
from tidings.domain.principals import Principal
from tidings.errors import NotFound
from tidings.service import Tidings


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


def cli(tmp_path: Path, *args: str) -> Ran:
    """The ``tidings`` command, in this process (as its entry point runs it), on the test's
    store: a dozen runs take a second instead of half a minute of interpreter starts."""
    env = {
        "TIDINGS_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/tidings.db",
        "TIDINGS_SECRET": SECRET,
        "TIDINGS_LOG_LEVEL": "WARNING",
    }
    result = CliRunner().invoke(app, list(args), env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Ran(result.exit_code, result.stdout, result.stderr)


def cli_process(tmp_path: Path, *args: str) -> Ran:
    """The installed entry point in a process of its own: only what it imports itself."""
    env = {
        **os.environ,
        "TIDINGS_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/tidings.db",
        "TIDINGS_SECRET": SECRET,
        "TIDINGS_LOG_LEVEL": "WARNING",
    }
    done = subprocess.run(
        [sys.executable, "-m", "tidings.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return Ran(done.returncode, done.stdout, done.stderr)


async def rows_by_tenant(service: Tidings) -> dict[str, dict[str, int]]:
    """tenant → table → rows, over every table of the database that has a ``tenant_id``."""
    out: dict[str, dict[str, int]] = {}
    async with service.store.read() as conn:

        def tables(sync: Any) -> list[str]:
            found = inspect(sync)
            return [
                name
                for name in found.get_table_names()
                if "tenant_id" in {c["name"] for c in found.get_columns(name)}
            ]

        for name in await conn.run_sync(tables):
            rows = await conn.execute(
                text(f"SELECT tenant_id, count(*) FROM {name} GROUP BY tenant_id")
            )
            for tenant, count in rows:
                out.setdefault(tenant, {})[name] = int(count)
        for (tenant,) in await conn.execute(text("SELECT id FROM tenants")):
            out.setdefault(tenant, {})["tenants"] = 1
    return out


def prepare(tmp_path: Path) -> tuple[list[str], dict[str, dict[str, int]]]:
    """The demo's tenants, plus notifications for ``ann`` of the first and her read state."""
    from tidings.demo.seed import seed

    settings = make_settings(str(tmp_path))

    async def run() -> tuple[list[str], dict[str, dict[str, int]]]:
        async with open_service(settings) as service:
            tenants = await seed(service)
            first = tenants[0]
            for title, audience in (
                ("ann only", Audience(users=("ann",))),
                ("ann and bob", Audience(users=("ann", "bob"))),
                ("everyone", None),
            ):
                await service.publish(
                    first, NewNotification(type="system", title=title, audience=audience)
                )
            ann = Principal(first, "ann", frozenset(), utcnow() + timedelta(minutes=5))
            await service.mark_all_read(ann, None)
            return tenants, await rows_by_tenant(service)

    return asyncio.run(run())


def after(tmp_path: Path) -> dict[str, dict[str, int]]:
    async def run() -> dict[str, dict[str, int]]:
        async with open_service(make_settings(str(tmp_path))) as service:
            return await rows_by_tenant(service)

    return asyncio.run(run())


def test_cli_removals(tmp_path: Path) -> None:
    tenants, before = prepare(tmp_path)
    doomed, kept = tenants
    assert {"bookings", "customers", "payments", "demo_users", "notifications"} <= set(
        before[doomed]
    )
    assert cli(tmp_path, "key", "create", doomed, "--json").returncode == 0

    listed = cli(tmp_path, "key", "list", doomed, "--json")
    assert listed.returncode == 0, listed.stderr
    keys = json.loads(listed.stdout)
    assert len(keys) == 1 and "key" not in keys[0] and keys[0]["tenant"] == doomed
    human = cli(tmp_path, "key", "list", doomed)
    assert keys[0]["id"] in human.stdout and "active" in human.stdout
    for args in (("key", "list", "ghost"), ("key", "list", "Not An Id")):
        r = cli(tmp_path, *args)
        assert r.returncode == 2 and "tenant_not_found" in r.stderr, r.stderr

    # user erase: what went, said; bad input refused with exit 2 and nothing changed.
    r = cli(tmp_path, "user", "erase", doomed, "a b")
    assert r.returncode == 2 and "validation_failed" in r.stderr, r.stderr
    r = cli(tmp_path, "user", "erase", "ghost", "ann")
    assert r.returncode == 2 and "tenant_not_found" in r.stderr, r.stderr
    r = cli(tmp_path, "user", "erase", doomed, "ann", "--json")
    assert r.returncode == 0, r.stderr
    erased = json.loads(r.stdout)
    assert erased["user"] == "ann" and erased["tenant"] == doomed
    assert erased["removed"]["notifications"] == 1 and erased["removed"]["audiences"] == 1
    assert erased["removed"]["read_state"] == 1
    r = cli(tmp_path, "user", "erase", doomed, "ann")
    assert r.returncode == 0 and r.stdout.strip() == (
        f"erased user ann of tenant {doomed}: nothing stored"
    )

    # tenant delete: refused without --yes (nothing changed), then everything of it goes.
    r = cli(tmp_path, "tenant", "delete", doomed)
    assert r.returncode == 2 and "--yes" in r.stderr, r.stderr
    assert doomed in cli(tmp_path, "tenant", "list").stdout
    r = cli(tmp_path, "tenant", "delete", "ghost", "--yes")
    assert r.returncode == 2 and "tenant_not_found" in r.stderr, r.stderr
    # In a process of its own: the command itself must make every extension's table known.
    r = cli_process(tmp_path, "tenant", "delete", doomed, "--yes", "--json")
    assert r.returncode == 0, r.stderr
    deleted = json.loads(r.stdout)
    assert deleted["removed"]["tenants"] == 1 and deleted["removed"]["bookings"] > 0
    assert deleted["removed"]["api_keys"] == 1
    now = after(tmp_path)
    assert doomed not in now, now.get(doomed)
    kept_before = {k: v for k, v in before[kept].items() if k != "presence"}
    assert {k: v for k, v in now[kept].items() if k != "presence"} == kept_before
    r = cli(tmp_path, "tenant", "delete", doomed, "--yes")
    assert r.returncode == 2 and "tenant_not_found" in r.stderr


@pytest.mark.anyio
async def test_delete_tenant_racing_publishes(settings: Settings) -> None:
    """Publishes racing with the deletion either committed before it (and are gone with the
    rest) or are refused ``tenant_not_found``: no row of the tenant survives."""
    from tidings import erasure

    async with open_service(settings) as service:
        await service.create_tenant("doomed", "Doomed")
        await service.create_tenant("kept", "Kept")

        async def one(tenant: str, i: int) -> str:
            await asyncio.sleep(i * 0.002)  # spread over the deletion
            try:
                new = NewNotification(
                    type="system", title=f"n{i}", audience=Audience(users=("ann",))
                )
                await service.publish(tenant, new)
            except NotFound as error:
                return error.code
            return "published"

        racing = [asyncio.create_task(one("doomed", i)) for i in range(20)]
        kept = [asyncio.create_task(one("kept", i)) for i in range(5)]
        await asyncio.sleep(0.01)
        removal = await asyncio.wait_for(erasure.delete_tenant(service, "doomed"), 20)
        outcomes = await asyncio.wait_for(asyncio.gather(*racing, *kept), 20)
        assert set(outcomes[:20]) <= {"published", "tenant_not_found"}
        assert outcomes[20:] == ["published"] * 5
        published = outcomes[:20].count("published")
        assert removal.removed.get("notifications", 0) == published
        rows = await rows_by_tenant(service)
        assert "doomed" not in rows and rows["kept"]["notifications"] == 5


@pytest.mark.postgres
@pytest.mark.anyio
async def test_delete_tenant_waits_for_a_publishing_transaction(
    tmp_path: Path, postgres_url: str
) -> None:
    """PostgreSQL: a deletion that meets a publishing transaction still open waits for it (the
    tenant row is locked first) and then removes what it committed — its audience rows too,
    which no foreign key would take with the tenant."""
    from tidings import erasure

    async def lock_waiters(service: Tidings) -> int:
        async with service.store.read() as conn:
            query = text(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE wait_event_type = 'Lock' AND datname = current_database()"
            )
            return int((await conn.execute(query)).scalar_one())

    settings = make_settings(str(tmp_path), database_url=postgres_url)
    async with open_service(settings) as service:
        await service.create_tenant("doomed", "Doomed")
        async with service.transaction() as tx:
            new = NewNotification(type="system", title="late", audience=Audience(users=("ann",)))
            await tx.publish("doomed", new)
            deleting = asyncio.create_task(erasure.delete_tenant(service, "doomed"))
            for _ in range(400):  # until the deletion waits on the tenant's row lock (≤ 20 s)
                if await lock_waiters(service):
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("the deletion never waited for the publishing transaction")
        removal = await asyncio.wait_for(deleting, 20)
        assert removal.removed["notifications"] == 1
        assert removal.removed["audience_targets"] == 1
        assert "doomed" not in await rows_by_tenant(service)
