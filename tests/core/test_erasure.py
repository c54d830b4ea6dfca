"""Operator removals through the operator API: deleting a tenant, erasing a user (GDPR).

Each against a real server with the channels on (SQLite and PostgreSQL): what goes, what
stays, open streams, resume of the other users across an erased seq, and bad input.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from sqlalchemy import func, insert, inspect, select, text

from tests.channels.conftest import (
    Device,
    bearer,
    channel_settings,
    on_server,
    start_server,
    wait_until,
)
from tests.conftest import STORES
from tests.support import OPERATOR, ServerThread, Stream, Tenant, create_tenant, mark, publish

pytestmark = pytest.mark.anyio
OP = {"Authorization": f"Bearer {OPERATOR}"}
LATER = (dt.datetime.now(dt.UTC) + dt.timedelta(days=30)).isoformat()


@pytest.fixture(params=STORES)
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServerThread]:
    overrides: dict[str, Any] = {}
    if request.param == "postgres":
        overrides["database_url"] = request.getfixturevalue("postgres_url")
    srv = start_server(channel_settings(tmp_path, **overrides))
    try:
        yield srv
    finally:
        srv.stop()


def user_token(tenant: Tenant, user: str, roles: list[str] | None = None) -> str:
    return tenant.token(user, roles)


async def problem(r: httpx.Response, status: int, code: str | None = None) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    if code is not None:
        assert r.json()["code"] == code, r.text


async def rows_of(server: ServerThread, tenant: str, user: str | None = None) -> dict[str, int]:
    """Rows per table of the live database (every table that has a ``tenant_id``, found in
    the database itself, not in our metadata) for the tenant, or for one user of it."""

    async def count(channels: Any) -> dict[str, int]:
        out: dict[str, int] = {}
        async with channels.service.store.read() as conn:

            def tables(sync: Any) -> list[tuple[str, set[str]]]:
                found = inspect(sync)
                return [
                    (name, {c["name"] for c in found.get_columns(name)})
                    for name in found.get_table_names()
                ]

            for name, columns in await conn.run_sync(tables):
                if "tenant_id" not in columns or (user is not None and "user_id" not in columns):
                    continue
                where = "tenant_id = :t" + (" AND user_id = :u" if user else "")
                n = (
                    await conn.execute(
                        text(f"SELECT count(*) FROM {name} WHERE {where}"),
                        {"t": tenant, "u": user},
                    )
                ).scalar_one()
                if n:
                    out[name] = int(n)
            if user is None:
                n = (
                    await conn.execute(
                        text("SELECT count(*) FROM tenants WHERE id = :t"), {"t": tenant}
                    )
                ).scalar_one()
                if n:
                    out["tenants"] = int(n)
        return out

    return await on_server(server, count)


async def add_digest_run(server: ServerThread, tenant: str, user: str) -> None:
    """Digest state as the digest worker leaves it (a sent run), written on the server's loop."""
    from tidings.channels.tables import digest_runs

    async def write(channels: Any) -> None:
        now = dt.datetime.now(dt.UTC)
        async with channels.service.store.write() as conn:
            await conn.execute(
                insert(digest_runs).values(
                    tenant_id=tenant,
                    user_id=user,
                    period="2026-01-01",
                    state="sent",
                    owner="test",
                    lease_until=now,
                    attempts=1,
                    last_seq=1,
                    seqs=[1],
                    sent_at=now,
                    created_at=now,
                )
            )

    await on_server(server, write)


async def seed(client: httpx.AsyncClient, server: ServerThread, tenant: Tenant) -> dict[str, int]:
    """ann and bob of ``tenant`` with everything tidings keeps about a user. Returns seqs."""
    seqs: dict[str, int] = {}
    for name, audience in (
        ("everyone", None),
        ("ann only", {"users": ["ann"]}),
        ("ann and bob", {"users": ["ann", "bob"]}),
        ("owners", {"roles": ["owner"]}),
        ("ann and owners", {"users": ["ann"], "roles": ["owner"]}),
    ):
        extra = {"audience": audience} if audience else {}
        seqs[name] = (await publish(client, tenant, name, **extra))["id"]
    for user in ("ann", "bob"):
        r = await client.post(
            f"{server.url}/v1/feed/read",
            json={"ids": [seqs["everyone"], seqs["ann and bob"]]},
            headers=bearer(user_token(tenant, user)),
        )
        assert r.status_code == 200, r.text
        r = await client.post(
            f"{server.url}/v1/feed/read",
            json={"all": True, "up_to": seqs["everyone"]},
            headers=bearer(user_token(tenant, user)),
        )
        assert r.status_code == 200, r.text
        r = await client.put(
            f"{server.url}/v1/preferences",
            json={"time_zone": "Europe/Berlin"},
            headers=bearer(user_token(tenant, user)),
        )
        assert r.status_code == 200, r.text
        sub = Device(user, f"https://127.0.0.1:9/push/{tenant.id}-{user}").subscription()
        r = await client.post(
            f"{server.url}/v1/push/subscriptions",
            json=sub,
            headers=bearer(user_token(tenant, user)),
        )
        assert r.status_code == 201, r.text
        await add_digest_run(server, tenant.id, user)
    for key, names in (("r-ann", ["ann"]), ("r-both", ["ann", "bob"]), ("r-bob", ["bob"])):
        r = await client.post(
            f"{server.url}/v1/reminders",
            json={"key": key, "due_at": LATER, "title": key, "audience": {"users": names}},
            headers=tenant.auth,
        )
        assert r.status_code == 201, r.text
    return seqs


async def titles(client: httpx.AsyncClient, server: ServerThread, token: str) -> list[str]:
    r = await client.get(f"{server.url}/v1/feed", headers=bearer(token))
    assert r.status_code == 200, r.text
    return sorted(item["title"] for item in r.json()["items"])


# Tables whose rows only tests and API calls write (no background worker adds to them while
# a test looks): compared before and after.
STABLE = {
    "api_keys",
    "audience_targets",
    "channel_users",
    "digest_runs",
    "notifications",
    "push_subscriptions",
    "read_state",
    "receipts",
    "scheduled_reminders",
    "signing_keys",
    "tenants",
}


def stable(rows: dict[str, int]) -> dict[str, int]:
    return {k: v for k, v in rows.items() if k in STABLE}


async def settle(server: ServerThread, tenant: str) -> None:
    """Wait until the channels' fan-out has handled every notification of the tenant, so no
    worker writes a delivery row for it while the test looks."""
    from tidings.channels.tables import channel_cursors
    from tidings.store.tables import tenants

    async def done(channels: Any) -> bool:
        async with channels.service.store.read() as conn:
            latest = (
                await conn.execute(select(tenants.c.last_seq).where(tenants.c.id == tenant))
            ).scalar_one()
            cursor = (
                await conn.execute(
                    select(func.coalesce(func.max(channel_cursors.c.last_seq), 0)).where(
                        channel_cursors.c.tenant_id == tenant
                    )
                )
            ).scalar_one()
        return bool(cursor >= latest)

    await wait_until(lambda: on_server(server, done), what="the channels' fan-out")


async def test_erase_user(server: ServerThread, tenant: Tenant, other_tenant: Tenant) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        seqs = await seed(client, server, tenant)
        await seed(client, server, other_tenant)
        await settle(server, tenant.id)
        await settle(server, other_tenant.id)
        before_other = stable(await rows_of(server, other_tenant.id))
        bob_before = stable(await rows_of(server, tenant.id, "bob"))
        ann, bob, carol = (
            user_token(tenant, "ann"),
            user_token(tenant, "bob"),
            user_token(tenant, "carol", ["owner"]),
        )
        assert (await rows_of(server, tenant.id, "ann")).keys() >= {
            "read_state",
            "receipts",
            "channel_users",
            "push_subscriptions",
            "digest_runs",
        }
        url = f"{server.url}/v1/admin/tenants/{tenant.id}/users/ann"

        # Bad input first: refused, and nothing changes.
        await problem(await client.delete(url), 401)
        await problem(await client.delete(url, headers=tenant.auth), 401)
        await problem(
            await client.delete(f"{server.url}/v1/admin/tenants/ghost/users/ann", headers=OP),
            404,
            "tenant_not_found",
        )
        await problem(
            await client.delete(f"{server.url}/v1/admin/tenants/No%20Such/users/ann", headers=OP),
            404,
            "tenant_not_found",
        )
        for bad in ("a%20b", "x" * 129, "%E2%9C%93"):
            await problem(
                await client.delete(
                    f"{server.url}/v1/admin/tenants/{tenant.id}/users/{bad}", headers=OP
                ),
                422,
                "validation_failed",
            )
        assert stable(await rows_of(server, tenant.id, "bob")) == bob_before
        assert "ann only" in await titles(client, server, ann)

        r = await client.delete(url, headers=OP)
        assert r.status_code == 200, r.text
        done = r.json()
        assert done["tenant"] == tenant.id and done["user"] == "ann"
        removed = done["removed"]
        assert removed["notifications"] == 1  # "ann only"; the rest are someone else's too
        assert removed["audiences"] == 2  # "ann and bob", "ann and owners"
        assert (removed["receipts"], removed["read_state"]) == (2, 1)
        assert (removed["preferences"], removed["push_subscriptions"]) == (1, 1)
        assert (removed["digest_runs"], removed["reminders"], removed["reminder_audiences"]) == (
            1,
            1,
            1,
        )
        # Nothing of ann is left in any table with a user_id, nor in any audience.
        assert await rows_of(server, tenant.id, "ann") == {}
        assert await titles(client, server, ann) == ["everyone"]
        r = await client.get(f"{server.url}/v1/feed", headers=bearer(bob))
        shared = next(i for i in r.json()["items"] if i["title"] == "ann and bob")
        assert shared["audience"] == {"users": ["bob"]}
        assert await titles(client, server, carol) == ["ann and owners", "everyone", "owners"]
        r = await client.get(f"{server.url}/v1/reminders/r-both", headers=tenant.auth)
        assert r.json()["notification"]["audience"] == {"users": ["bob"]}
        r = await client.get(f"{server.url}/v1/reminders/r-ann", headers=tenant.auth)
        assert r.status_code == 404
        # bob and the other tenant keep everything (bob's read state is his own).
        assert stable(await rows_of(server, tenant.id, "bob")) == bob_before
        assert stable(await rows_of(server, other_tenant.id)) == before_other
        other_ann = user_token(other_tenant, "ann")
        assert "ann only" in await titles(client, server, other_ann)

        # A user with an open stream: it ends; other streams stay live.
        dora = user_token(tenant, "dora")
        async with Stream(server.url, dora) as dora_stream, Stream(server.url, bob) as bob_stream:
            await dora_stream.next_event("ready")
            await bob_stream.next_event("ready")
            r = await client.delete(
                f"{server.url}/v1/admin/tenants/{tenant.id}/users/dora", headers=OP
            )
            assert r.status_code == 200 and r.json()["streams_closed"] == 1, r.text
            assert (await dora_stream.next_event("bye")).data == {"reason": "erased"}
            marker = await mark(tenant, "after erasure")
            assert [f.event for f in await bob_stream.until(marker)] == []

        # Resume across the erased seq: bob is answered `ready` (no reset) and replayed all
        # that is his after it, in order.
        async with Stream(server.url, bob, last_event_id=seqs["everyone"]) as again:
            first = await again.next()
            assert first.event == "ready", first
            got = await again.until("after erasure")
            assert [f.data["title"] for f in got if f.event == "notification"] == ["ann and bob"]

        # Erasing again (or a user never seen) is not an error: nothing left to remove.
        await settle(server, tenant.id)
        r = await client.delete(url, headers=OP)
        assert r.status_code == 200 and not any(r.json()["removed"].values()), r.text


async def test_delete_tenant(server: ServerThread, tenant: Tenant, other_tenant: Tenant) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        await seed(client, server, tenant)
        await seed(client, server, other_tenant)
        r = await client.post(
            f"{server.url}/v1/admin/tenants/{tenant.id}/signing-keys", headers=OP, json={}
        )
        assert r.status_code == 201, r.text
        kid, secret = r.json()["kid"], r.json()["secret"]
        now = int(dt.datetime.now(dt.UTC).timestamp())
        host_signed = jwt.encode(
            {"tenant": tenant.id, "sub": "ann", "iat": now, "exp": now + 300},
            secret,
            algorithm="HS256",
            headers={"kid": kid},
        )
        before = await rows_of(server, tenant.id)
        assert {"notifications", "api_keys", "signing_keys", "push_subscriptions"} <= set(before)
        before_other = stable(await rows_of(server, other_tenant.id))
        url = f"{server.url}/v1/admin/tenants/{tenant.id}"

        await problem(await client.delete(url), 401)
        await problem(await client.delete(url, headers=tenant.auth), 401)
        await problem(
            await client.delete(f"{server.url}/v1/admin/tenants/ghost", headers=OP),
            404,
            "tenant_not_found",
        )
        await problem(
            await client.delete(f"{server.url}/v1/admin/tenants/Bad%20Id", headers=OP),
            404,
            "tenant_not_found",
        )
        assert stable(await rows_of(server, tenant.id)) == stable(before)

        async with (
            Stream(server.url, host_signed) as doomed,
            Stream(server.url, user_token(other_tenant, "ann")) as other,
        ):
            await doomed.next_event("ready")
            await other.next_event("ready")
            r = await client.delete(url, headers=OP)
            assert r.status_code == 200, r.text
            assert (await doomed.next_event("bye")).data == {"reason": "tenant_deleted"}
            marker = await mark(other_tenant, "still here")
            assert [f.event for f in await other.until(marker)] == []
        done = r.json()
        assert done["tenant"] == tenant.id and done["streams_closed"] == 1
        assert all(done["removed"].get(table, 0) >= n for table, n in before.items()), done
        assert set(done["removed"]) - set(before) <= {"presence", "delivery_log", "push_outbox"}
        assert await rows_of(server, tenant.id) == {}
        after_other = stable(await rows_of(server, other_tenant.id))
        assert after_other == {**before_other, "notifications": before_other["notifications"] + 1}

        # Gone for every credential: its keys, its signing keys, its tokens.
        await problem(
            await client.post(
                f"{server.url}/v1/notifications",
                json={"type": "x", "title": "t"},
                headers=tenant.auth,
            ),
            401,
        )
        async with Stream(server.url, host_signed) as s:
            assert s.status == 401
        async with Stream(server.url, user_token(other_tenant, "ann")) as s:
            assert s.status == 200
        tenants = (await client.get(f"{server.url}/v1/admin/tenants", headers=OP)).json()
        assert [t["id"] for t in tenants["tenants"]] == [other_tenant.id]
        await problem(await client.delete(url, headers=OP), 404, "tenant_not_found")
        # The id can be used again, from seq 1.
        again = create_tenant(server.url, tenant.id)
        assert (await publish(client, again, "fresh"))["id"] == 1


async def test_key_list_of_unknown_tenant(server: ServerThread) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        r = await client.get(f"{server.url}/v1/admin/tenants/ghost/keys", headers=OP)
        await problem(r, 404, "tenant_not_found")
