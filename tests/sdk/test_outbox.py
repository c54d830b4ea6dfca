"""The SDKs' outbox helpers against a real PostgreSQL and tidings' own outbox consumer.

- Both SDKs (``outbox_row`` here, ``outboxRow`` of js/server.js under node) refuse exactly the
  notifications tidings' consumer moves to ``tidings_outbox_dead``: every case of a table is
  put into a real outbox *without* the helpers, and what tidings published is the truth.
- ``insert_outbox`` / ``insert_outbox_async`` insert through each kind of connection a host
  has, inside its transaction: a commit publishes once, a rollback leaves nothing, and a
  connection that would commit on its own (an engine, asyncpg outside a transaction) is refused.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from tests.outbox.conftest import drained, fetch, host_database
from tests.sdk.node import host_app
from tests.services import PostgresServer
from tests.support import make_settings, open_service, require_binary
from tidings.client import (
    NotificationLimits,
    OutboxRow,
    insert_outbox,
    insert_outbox_async,
    outbox_row,
)
from tidings.config import Settings
from tidings.outbox import OutboxConsumer
from tidings.store import notifications as nq

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]

ROOT = Path(__file__).resolve().parents[2]
CASES = json.loads((Path(__file__).parent / "notification_cases.json").read_text())

# outboxRow of js/server.js over the cases on stdin: one verdict each.
JS_VERDICTS = """
import { outboxRow } from './js/server.js';
let input = '';
for await (const chunk of process.stdin) input += chunk;
const verdicts = JSON.parse(input).map((payload) => {
  try { outboxRow('acme', payload); return true; } catch (err) {
    if (!(err instanceof TypeError)) throw err;
    return false;
  }
});
console.log(JSON.stringify(verdicts));
"""


def _nested(depth: int, array: bool) -> dict[str, Any]:
    """``data`` of ``depth`` levels of objects (or of arrays inside it), data included."""
    if array:
        inner: Any = []
        for _ in range(depth - 2):
            inner = [inner]
        return {"a": inner}
    data: dict[str, Any] = {}
    for _ in range(depth - 1):
        data = {"a": data}
    return data


def edge_cases() -> list[dict[str, Any]]:
    """Each limit at its value and one past it (tidings' default settings)."""
    ids = [f"u{i}" for i in range(1001)]
    base = {"type": "system", "title": "t"}
    out: list[tuple[str, dict[str, Any]]] = [
        ("title 200", {**base, "title": "x" * 200}),
        ("title 201", {**base, "title": "x" * 201}),
        ("title 200 emoji", {**base, "title": "\U0001f389" * 200}),
        ("title 201 emoji", {**base, "title": "\U0001f389" * 201}),
        ("body 2000", {**base, "body": "\u00e9" * 2000}),
        ("body 2001", {**base, "body": "\u00e9" * 2001}),
        ("data 8192 bytes", {**base, "data": {"s": "x" * 8184}}),
        ("data 8193 bytes", {**base, "data": {"s": "x" * 8185}}),
        ("data 8194 bytes of two-byte characters", {**base, "data": {"s": "\u00e9" * 4093}}),
        ("data 200 levels of objects", {**base, "data": _nested(200, array=False)}),
        ("data 201 levels of objects", {**base, "data": _nested(201, array=False)}),
        ("data 200 levels with arrays", {**base, "data": _nested(200, array=True)}),
        ("data 201 levels with arrays", {**base, "data": _nested(201, array=True)}),
        ("link 2048", {**base, "link": "/" + "a" * 2047}),
        ("link 2049", {**base, "link": "/" + "a" * 2048}),
        ("link [ without ]", {**base, "link": "http://[::1/x"}),
        ("group 128", {**base, "group": "g" * 128}),
        ("group 129", {**base, "group": "g" * 129}),
        ("actor id 128", {**base, "actor": {"id": "a" * 128}}),
        ("actor id 129", {**base, "actor": {"id": "a" * 129}}),
        ("actor name 200", {**base, "actor": {"id": "a", "name": "n" * 200}}),
        ("actor name 201", {**base, "actor": {"id": "a", "name": "n" * 201}}),
        ("1000 users", {**base, "audience": {"users": ids[:1000]}}),
        ("1001 users", {**base, "audience": {"users": ids}}),
        ("100 roles", {**base, "audience": {"roles": ids[:100]}}),
        ("101 roles", {**base, "audience": {"roles": ids[:101]}}),
        ("1001 targets", {**base, "audience": {"users": ids[:999], "roles": ["r1", "r2"]}}),
        ("1001 users, 1000 distinct", {**base, "audience": {"users": [*ids[:1000], "u0"]}}),
    ]
    return [{"name": name, "payload": payload} for name, payload in out]


def python_verdict(payload: dict[str, Any]) -> bool:
    try:
        outbox_row("acme", **payload)
    except (ValueError, TypeError):
        return False
    return True


def js_verdicts(payloads: list[dict[str, Any]]) -> list[bool]:
    node = require_binary("node", "nodejs")
    done = subprocess.run(
        [node, "--input-type=module", "-e", JS_VERDICTS],
        input=json.dumps(payloads),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    verdicts: list[bool] = json.loads(done.stdout)
    return verdicts


async def consume(url: str, tmp_path: Path, tenant: str = "acme") -> Settings:
    """Run tidings' outbox consumer over ``url`` until the outbox is empty; its settings."""
    settings = make_settings(str(tmp_path), outbox_url=url)
    async with open_service(settings) as service:
        await service.create_tenant(tenant, tenant)
        async with OutboxConsumer(service):
            await drained(url)
    return settings


@pytest.fixture
def outbox(postgres_server: PostgresServer) -> Iterator[str]:
    name, url = host_database(postgres_server)
    try:
        yield url
    finally:
        postgres_server.drop_database(name)


async def test_the_sdks_refuse_exactly_what_tidings_dead_letters(
    outbox: str, tmp_path: Path
) -> None:
    cases = [*CASES, *edge_cases()]
    u64 = {"type": "system", "title": "t", "data": {"max": 2**64 - 1, "min": -(2**63)}}
    payloads = [case["payload"] for case in cases]
    conn = await asyncpg.connect(outbox, timeout=10)
    inserted: dict[int, int] = {}  # row id -> case index
    try:
        for index, payload in enumerate([*payloads, u64]):
            try:  # the raw insert a host without the SDK would make
                row_id = await conn.fetchval(
                    "INSERT INTO tidings_outbox (tenant, payload) VALUES ('acme', $1::jsonb) "
                    "RETURNING id",
                    json.dumps(payload),
                )
            except asyncpg.PostgresError:
                continue  # PostgreSQL itself refuses it (NUL, a lone surrogate)
            inserted[row_id] = index
    finally:
        await conn.close()
    await consume(outbox, tmp_path)
    dead = {r["id"] for r in await fetch(outbox, "SELECT id FROM tidings_outbox_dead")}
    published = {index for row_id, index in inserted.items() if row_id not in dead}
    truth = [index in published for index in range(len(payloads))]

    def differences(verdicts: list[bool]) -> list[str]:
        return [
            f"{case['name']}: tidings {'published' if ok else 'refused'} it"
            for case, ok, verdict in zip(cases, truth, verdicts, strict=True)
            if ok != verdict
        ]

    assert sum(truth) >= 20 and len(truth) - sum(truth) >= 40
    assert differences([bool(case.get("ok", truth[i])) for i, case in enumerate(cases)]) == []
    assert differences([python_verdict(p) for p in payloads]) == []
    assert differences(js_verdicts(payloads)) == []
    assert len(payloads) in published and python_verdict(u64)  # 64-bit integers (not in JS)


async def test_limits_other_than_the_defaults() -> None:
    long = "x" * 500
    with pytest.raises(ValueError, match="title is longer than 200"):
        outbox_row("acme", "system", long)
    row = outbox_row("acme", "system", long, limits=NotificationLimits(title_chars=1000))
    assert row.payload["title"] == "x" * 500
    with pytest.raises(ValueError, match="2 users and roles; at most 1"):
        outbox_row(
            "acme",
            "system",
            "t",
            audience={"users": ["a", "a", "b"]},
            limits=NotificationLimits(audience_targets=1),
        )
    for tenant in ("", "Acme", "-acme", "a" * 64, "a_b"):
        with pytest.raises(ValueError, match="tenant"):
            outbox_row(tenant, "system", "t")
    bad: list[dict[Any, Any]] = [{"n": float("nan")}, {"n": float("inf")}, {1: "x"}]
    for data in [*bad, {"s": {1, 2}}, {"i": 2**64}, {"f": 2e19}, {"f": -(2.0**63)}]:
        with pytest.raises(ValueError, match="data"):
            outbox_row("acme", "system", "t", data=data)
    # The SDK's conveniences: an actor as an id, tuples as lists; the JSON is compact.
    row = outbox_row("acme", "system", "t", actor="ann", data={"t": (1, 2)}, link="")
    assert row.payload == {
        "type": "system",
        "title": "t",
        "body": "",
        "data": {"t": [1, 2]},
        "actor": {"id": "ann", "name": None},
    }
    assert row.payload_json == (
        '{"type":"system","title":"t","body":"","data":{"t":[1,2]},"actor":{"id":"ann","name":null}}'
    )
    assert row.statement("format") == (
        "INSERT INTO tidings_outbox (tenant, payload) VALUES (%s, CAST(%s AS jsonb)) RETURNING id",
        ("acme", row.payload_json),
    )
    with pytest.raises(ValueError, match="paramstyle"):
        row.statement("weird")


async def test_each_kind_of_connection_inserts_in_the_callers_transaction(
    outbox: str, postgres_server: PostgresServer, tmp_path: Path
) -> None:
    """SQLAlchemy (async connection and session, sync connection and session), a DB-API
    cursor and connection, and asyncpg: committed rows are published once each, in order;
    rolled-back ones never."""
    sa_url = outbox.replace("postgresql://", "postgresql+asyncpg://", 1)
    engine = create_async_engine(sa_url)

    def row(title: str) -> OutboxRow:
        return outbox_row("acme", "system", title, data={"via": title})

    try:
        async with engine.begin() as conn:
            first = await insert_outbox_async(conn, row("async connection"))
        async with engine.connect() as conn:
            await insert_outbox_async(conn, row("rolled back"))
            await conn.rollback()
        async with AsyncSession(engine) as session, session.begin():
            await insert_outbox_async(session, row("async session"))

        def sync(conn: Connection) -> None:  # SQLAlchemy's sync API, and the driver's cursor
            insert_outbox(conn, row("sync connection"))
            dbapi = conn.connection.dbapi_connection
            assert dbapi is not None
            insert_outbox(dbapi.cursor(), row("DB-API cursor"), paramstyle="numeric_dollar")
            insert_outbox(dbapi, row("DB-API connection"), paramstyle="numeric_dollar")

        async with engine.begin() as conn:
            await conn.run_sync(sync)
        async with AsyncSession(engine) as session, session.begin():  # an ORM Session (sync)
            await session.run_sync(lambda sync_session: insert_outbox(sync_session, row("session")))
        with pytest.raises(TypeError, match="not the engine"):
            await insert_outbox_async(engine, row("engine"))
        with pytest.raises(TypeError, match="not the Engine"):
            insert_outbox(engine.sync_engine, row("engine"))
        async with engine.connect() as conn:
            with pytest.raises(TypeError, match="insert_outbox_async"):
                insert_outbox(conn, row("wrong flavour"))
    finally:
        await engine.dispose()

    pg = await asyncpg.connect(outbox, timeout=10)
    try:
        with pytest.raises(TypeError, match="not in a transaction"):
            await insert_outbox_async(pg, row("asyncpg outside a transaction"))
        async with pg.transaction():
            last = await insert_outbox_async(pg, row("asyncpg"))
    finally:
        await pg.close()
    assert last > first

    settings = await consume(outbox, tmp_path)
    async with open_service(settings) as service, service.store.read() as store:
        titles = [n.title for n in await nq.fetch_after(store, "acme", 0)]
    assert titles == [
        "async connection",
        "async session",
        "sync connection",
        "DB-API cursor",
        "DB-API connection",
        "session",
        "asyncpg",
    ]
    assert await fetch(outbox, "SELECT id FROM tidings_outbox_dead") == []


# insertOutbox of js/server.js with pg: a Client in a transaction, a Pool refused.
JS_PG = """
import pg from 'pg';
import { insertOutbox } from 'tidings/server';

const note = (title) => ({ type: 'system', title });
const client = new pg.Client({ connectionString: process.env.DATABASE_URL });
await client.connect();
await client.query('BEGIN');
await insertOutbox(client, 'acme', note('pg rolled back'));
await client.query('ROLLBACK');
await client.query('BEGIN');
const id = await insertOutbox(client, 'acme', note('pg client'));
await client.query('COMMIT');
await client.end();
const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL });
await insertOutbox(pool, 'acme', note('pool')).then(
  () => console.log('the pool was taken'),
  (err) => console.log(err.constructor.name, /not the Pool/.test(err.message)),
);
await pool.end();
console.log(typeof id, id);
"""


async def test_insert_outbox_of_node_with_pg(outbox: str, tmp_path: Path) -> None:
    app = host_app(tmp_path)
    (app / "insert.mjs").write_text(JS_PG)
    done = await asyncio.to_thread(
        subprocess.run,
        [require_binary("node", "nodejs"), "insert.mjs"],
        cwd=app,
        env={**os.environ, "DATABASE_URL": outbox},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["TypeError true", "number 2"]
    settings = await consume(outbox, tmp_path)
    async with open_service(settings) as service, service.store.read() as store:
        assert [n.title for n in await nq.fetch_after(store, "acme", 0)] == ["pg client"]
