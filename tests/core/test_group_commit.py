"""Group commit: publishes that arrive together share one transaction (store/groupcommit.py).

Each test runs on SQLite and on PostgreSQL (the ``settings``/``server`` fixtures). Concurrent
in-process publishes are started on the server's own loop in one go, so they are queued before
the writer task runs and form one group by construction.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from sqlalchemy import Engine, event, text
from sqlalchemy.exc import IntegrityError

from tests.support import ServerThread, Tenant, create_tenant
from tidings.app import create_app
from tidings.config import Settings
from tidings.domain.notifications import Audience, NewNotification
from tidings.errors import NotFound, ValidationFailed
from tidings.store import Store, groupcommit
from tidings.store import notifications as nq

pytestmark = pytest.mark.anyio

T = TypeVar("T")


async def on_server(server: ServerThread, make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run ``make()`` on the server's event loop (where its store and committer live)."""
    loop = server.server.servers[0].get_loop()
    future = asyncio.run_coroutine_threadsafe(make(), loop)
    return await asyncio.wait_for(asyncio.wrap_future(future), 30)


@asynccontextmanager
async def sqlite_app(tmp_path: Path) -> AsyncIterator[tuple[Settings, Any, Store, Engine]]:
    """The app's service on SQLite in a file (its lifespan running), tenant ``t1`` created:
    its settings, service, store and the store's synchronous (writer) engine."""
    from tests.support import make_settings

    settings = make_settings(str(tmp_path))
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        service = app.state.tidings
        store: Store = service.store
        await service.create_tenant("t1", "One")
        writer = store.writer_engine
        assert store.writes_in_thread and writer is not None
        yield settings, service, store, writer


async def stored_seqs(server: ServerThread, tenant: str) -> list[int]:
    async def read() -> list[int]:
        async with server.service.store.read() as conn:
            rows = await nq.fetch_after(conn, tenant, 0, limit=10_000)
        return [n.seq for n in rows]

    return await on_server(server, read)


def note(title: str, **extra: Any) -> NewNotification:
    return NewNotification(type="booking_created", title=title, **extra)


def broken_note() -> NewNotification:
    """A notification whose rows break a primary key at insert: validation would drop the
    repeated user, so it is built around validation."""
    return NewNotification.model_construct(
        type="booking_created",
        title="broken",
        body="",
        data={},
        link=None,
        audience=Audience.model_construct(users=("dup", "dup"), roles=()),
    )


async def test_publishes_arriving_together_share_one_commit(
    server: ServerThread, tenant: Tenant
) -> None:
    service = server.service

    async def publish_32() -> list[tuple[Any, bool]]:
        return list(
            await asyncio.gather(*(service.publish(tenant.id, note(f"n{i}")) for i in range(32)))
        )

    results = await on_server(server, publish_32)
    assert [n.seq for n, created in results] == list(range(1, 33))
    assert all(created for _, created in results)
    assert list(service.committer.group_sizes)[-1:] == [32], "32 publishes, one transaction"
    assert await stored_seqs(server, tenant.id) == list(range(1, 33))


async def test_32_concurrent_http_publishers_with_keys_replayed_mid_batch(
    server: ServerThread, tenant: Tenant
) -> None:
    url = f"{server.url}/v1/notifications"
    workers, per_worker = 32, 6

    def body(key: str) -> dict[str, Any]:
        return {"type": "booking_created", "title": f"booking {key}", "data": {"key": key}}

    def plan(w: int) -> list[str]:
        own = [f"w{w}-{i}" for i in range(per_worker)]
        # Mid-batch: a replay of its own first key, a key another worker also sends, and one
        # of its keys with a different body (refused alone: 422, nothing stored).
        return [*own[:3], own[0], f"w{(w + 1) % workers}-2", f"!{own[1]}", *own[3:]]

    answers: list[tuple[str, int, int]] = []
    refused: list[tuple[int, str]] = []
    limits = httpx.Limits(max_connections=workers)
    async with httpx.AsyncClient(timeout=20, limits=limits) as client:

        async def worker(w: int) -> None:
            for step in plan(w):
                key = step.removeprefix("!")
                payload = body(key) if key == step else {**body(key), "title": "different"}
                headers = {**tenant.auth, "Idempotency-Key": key}
                r = await client.post(url, json=payload, headers=headers)
                if key != step:
                    refused.append((r.status_code, r.json()["code"]))
                    continue
                assert r.status_code in (200, 201), r.text
                answers.append((key, r.status_code, r.json()["id"]))

        await asyncio.gather(*(worker(w) for w in range(workers)))
        after = await client.post(url, json=body("after"), headers=tenant.auth)

    assert refused == [(422, "idempotency_key_mismatch")] * workers
    total = workers * per_worker
    assert len(answers) == workers * (per_worker + 2), "every publish answered exactly once"
    ids: dict[str, set[int]] = {}
    created: dict[str, int] = {}
    for key, status, seq in answers:
        ids.setdefault(key, set()).add(seq)
        created[key] = created.get(key, 0) + (status == 201)
    assert len(ids) == total
    assert all(len(seqs) == 1 for seqs in ids.values()), "a replay returns the same notification"
    assert set(created.values()) == {1}, "exactly one 201 per key, the replays answer 200"
    assert sorted(seq for (seq,) in ids.values()) == list(range(1, total + 1))
    assert after.status_code == 201 and after.json()["id"] == total + 1, "no seq burned"
    assert await stored_seqs(server, tenant.id) == list(range(1, total + 2)), "nothing doubled"
    assert max(server.service.committer.group_sizes) > 1, "concurrent publishes were grouped"


async def test_a_publish_refused_inside_a_group_fails_alone(
    server: ServerThread, tenant: Tenant
) -> None:
    service = server.service
    first, _ = await on_server(
        server, lambda: service.publish(tenant.id, note("original"), idempotency_key="k")
    )

    async def group() -> list[Any]:
        calls: list[Awaitable[Any]] = [
            service.publish(tenant.id, note("a")),
            service.publish("no-such-tenant", note("lost")),
            service.publish(tenant.id, note("different"), idempotency_key="k"),
            service.publish(tenant.id, note("original"), idempotency_key="k"),
            service.publish_many(tenant.id, [note("b1"), note("b2")], idempotency_key="b"),
            service.publish(tenant.id, note("c"), idempotency_key="c"),
            service.publish(tenant.id, note("c"), idempotency_key="c"),
        ]
        return list(await asyncio.gather(*calls, return_exceptions=True))

    a, lost, mismatch, replay, batch, c, c_again = await on_server(server, group)
    assert list(service.committer.group_sizes)[-1] == 7, "all seven went through one group"
    assert isinstance(lost, NotFound) and lost.code == "tenant_not_found"
    assert isinstance(mismatch, ValidationFailed) and mismatch.code == "idempotency_key_mismatch"
    assert (replay[0].seq, replay[0].title, replay[1]) == (first.seq, "original", False)
    assert (a[0].seq, a[1]) == (2, True)
    assert [(n.seq, created) for n, created in batch] == [(3, True), (4, True)]
    assert (c[0].seq, c[1]) == (5, True)
    assert c_again == (c[0], False), "a key replayed within the group returns the same one"
    assert await stored_seqs(server, tenant.id) == [1, 2, 3, 4, 5]


async def test_a_group_of_several_tenants_gives_each_its_own_seqs(
    server: ServerThread, tenant: Tenant
) -> None:
    """Publishes to three tenants in one group (the tenants locked together, in id order): each
    tenant's seqs continue from its own last one, gap-free, and its ``last_seq`` is written;
    each audience's rows land under their own tenant and seq (on PostgreSQL one statement over
    arrays for the whole group)."""
    other = create_tenant(server.url, "group-other")
    third = create_tenant(server.url, "group-third")
    service = server.service
    await on_server(server, lambda: service.publish(other.id, note("before")))
    to_users = Audience(users=("u1", "u2"))
    to_staff = Audience(roles=("staff",))

    async def group() -> list[Any]:
        calls = [
            service.publish(tenant.id, note("a1")),
            service.publish(other.id, note("b1", audience=to_users)),
            service.publish_many(third.id, [note("c1"), note("c2", audience=to_staff)]),
            service.publish(other.id, note("b2")),
            service.publish(tenant.id, note("a2")),
        ]
        return list(await asyncio.gather(*calls))

    a1, b1, c12, b2, a2 = await on_server(server, group)
    assert list(service.committer.group_sizes)[-1] == 5
    assert [a1[0].seq, a2[0].seq] == [1, 2]
    assert [b1[0].seq, b2[0].seq] == [2, 3]
    assert [n.seq for n, _ in c12] == [1, 2]
    assert await stored_seqs(server, other.id) == [1, 2, 3]
    more, _ = await on_server(server, lambda: service.publish(third.id, note("c3")))
    assert more.seq == 3  # last_seq was written for the group

    async def targets() -> list[tuple[Any, ...]]:
        async with service.store.read() as conn:
            rows = await conn.execute(
                text("SELECT tenant_id, seq, kind, value FROM audience_targets")
            )
            return [tuple(row) for row in rows]

    assert sorted(await on_server(server, targets)) == sorted(
        [(other.id, 2, "u", "u1"), (other.id, 2, "u", "u2"), (third.id, 2, "r", "staff")]
    )


async def test_a_constraint_error_inside_a_group_fails_alone(
    server: ServerThread, tenant: Tenant
) -> None:
    service = server.service
    other = create_tenant(server.url, "bounce-bros")
    broken = broken_note()

    async def group() -> list[Any]:
        calls = [
            service.publish(tenant.id, note("before")),
            service.publish(other.id, note("elsewhere")),
            service.publish(tenant.id, broken),
            service.publish_many(tenant.id, [note("x"), note("y")]),
        ]
        return list(await asyncio.gather(*calls, return_exceptions=True))

    before, elsewhere, failed, batch = await on_server(server, group)
    assert isinstance(failed, IntegrityError)
    assert before[0].seq == 1 and elsewhere[0].seq == 1
    assert [n.seq for n, _ in batch] == [2, 3]
    assert await stored_seqs(server, tenant.id) == [1, 2, 3], "no gap where it failed"
    assert await stored_seqs(server, other.id) == [1]


async def test_a_lone_publish_commits_at_once(settings: Settings, tmp_path: Path) -> None:
    """Nothing in the committer waits for company: no timer is set by its code while a lone
    publish goes through, and it commits in a group of one."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        service = app.state.tidings
        await service.create_tenant("solo", "Solo")
        loop = asyncio.get_running_loop()
        timers: list[str] = []
        call_at = loop.call_at

        def spy(when: float, callback: Any, *args: Any, **kwargs: Any) -> Any:
            callers = [
                frame.filename
                for frame in traceback.extract_stack()[:-1]
                if "/asyncio/" not in frame.filename
            ]
            if callers and callers[-1] == groupcommit.__file__:
                timers.append(f"{callback!r} from {callers[-1]}")
            return call_at(when, callback, *args, **kwargs)

        loop.call_at = spy  # type: ignore[method-assign,assignment]
        try:
            publish = asyncio.ensure_future(service.publish("solo", note("alone")))
            done, _ = await asyncio.wait({publish}, timeout=20)
        finally:
            del loop.call_at
        assert publish in done
        stored, created = publish.result()
        assert (stored.seq, created) == (1, True)
        assert list(service.committer.group_sizes) == [1]
        assert timers == [], "the group committer set a timer for a lone publish"


async def test_on_sqlite_a_group_is_one_synchronous_transaction_on_the_loop(tmp_path: Path) -> None:
    """SQLite in a file, the write lock free: the group committer's transaction runs whole on
    the loop's synchronous connection (``Store.run_write``, no hand-off to any thread): one
    ``BEGIN IMMEDIATE`` … ``COMMIT`` for 32 concurrent publishes, and one for a group of
    three batches of 60 (whatever its size), none through aiosqlite, every seq stored once.
    Its inserts run on the DBAPI cursor (no SQLAlchemy cursor event), as multi-row statements:
    they are seen by SQLite's own statement trace, with the thread that ran them."""
    async with sqlite_app(tmp_path) as (_settings, service, store, writer):
        threads: list[str] = []
        inserts: dict[str, int] = {"writer": 0, "loop": 0}  # SQLAlchemy's executemanys

        # each INSERT of notification rows the writer ran: its thread and its rows (SQLite's
        # trace shows the statement with its values; none of these titles holds "), (")
        traced: list[tuple[str, int]] = []

        def trace(statement: str) -> None:
            if statement.startswith("INSERT INTO notifications"):
                traced.append((threading.current_thread().name, statement.count("), (") + 1))

        def seen(_c: Any, _cur: Any, statement: str, *_: Any) -> None:
            if statement.startswith("INSERT INTO notifications"):
                inserts["loop"] += 1

        event.listen(writer, "connect", lambda dbapi, _r: dbapi.set_trace_callback(trace))
        event.listen(writer, "commit", lambda _c: threads.append(threading.current_thread().name))
        event.listen(store.engine.sync_engine, "before_cursor_execute", seen)
        published = await asyncio.wait_for(
            asyncio.gather(*(service.publish("t1", note(f"n{i}")) for i in range(32))), 30
        )
        assert sorted(n.seq for n, _ in published) == list(range(1, 33))
        here = threading.current_thread().name  # the loop's
        assert threads == [here], threads
        assert traced == [(here, 32)], traced  # every row, in one statement, on the loop
        assert inserts == {"writer": 0, "loop": 0}, inserts
        # A large group (three batches, 180 rows) the same way: one transaction on the loop.
        many = [[note(f"b{b}-{i}") for i in range(60)] for b in range(3)]
        batches = await asyncio.wait_for(
            asyncio.gather(*(service.publish_many("t1", items) for items in many)), 30
        )
        assert sorted(n.seq for batch in batches for n, _ in batch) == list(range(33, 213))
        assert threads == [here, here], threads
        # 180 rows: multi-row statements of 32 rows and smaller powers of two
        assert traced[1:] == [(here, n) for n in (32, 32, 32, 32, 32, 16, 4)], traced
        assert inserts == {"writer": 0, "loop": 0}, inserts
        assert list(service.committer.group_sizes)[-1] == 3
        async with store.read() as conn:
            seqs = [n.seq for n in await nq.fetch_after(conn, "t1", 0, limit=1000)]
        assert seqs == list(range(1, 213))


async def test_on_sqlite_groups_stay_small_and_the_loop_runs_between_them(tmp_path: Path) -> None:
    """A group on SQLite holds the loop for its whole transaction, so there groups are at most
    ``LOOP_MAX_NOTIFICATIONS`` and the writer task lets the loop run what its poll found (a due
    timer here, as the streams' clock is; a socket's callbacks alike) before the next group:
    ten batches of 100 at once commit as groups of 3, 3, 3 and 1, the timer between each two."""
    async with sqlite_app(tmp_path) as (_settings, service, _store, writer):
        assert service.committer.max_notifications == groupcommit.LOOP_MAX_NOTIFICATIONS == 300
        events: list[str] = []
        event.listen(writer, "commit", lambda _c: events.append("commit"))
        loop = asyncio.get_running_loop()
        ticking: list[asyncio.TimerHandle] = []

        def tick() -> None:  # a timer's callback, as the streams' clock is one
            events.append("tick")
            ticking[:] = [loop.call_later(0.0001, tick)]  # due long before a group ends

        tick()
        await asyncio.sleep(0.01)
        events.clear()
        many = [[note(f"b{b}-{i}") for i in range(100)] for b in range(10)]
        try:
            batches = await asyncio.wait_for(
                asyncio.gather(*(service.publish_many("t1", items) for items in many)), 30
            )
        finally:
            ticking[0].cancel()
        assert sorted(n.seq for batch in batches for n, _ in batch) == list(range(1, 1001))
        assert list(service.committer.group_sizes) == [3, 3, 3, 1]
        commits = [i for i, e in enumerate(events) if e == "commit"]
        assert len(commits) == 4
        for a, b in itertools.pairwise(commits):
            assert "tick" in events[a + 1 : b], events


async def test_on_sqlite_a_lock_held_elsewhere_is_waited_for_on_the_writer_thread(
    tmp_path: Path,
) -> None:
    """Another process holds SQLite's write lock: the loop does not wait for it (its
    connection's busy timeout is 0); the transaction goes to the writer thread, which waits,
    and commits there once the lock is released."""
    import sqlite3

    async with sqlite_app(tmp_path) as (settings, service, _store, writer):
        threads: list[str] = []
        event.listen(writer, "commit", lambda _c: threads.append(threading.current_thread().name))
        await asyncio.wait_for(service.publish("t1", note("first")), 30)
        other = sqlite3.connect(settings.database_url.split("///", 1)[1], isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            waiting = asyncio.ensure_future(service.publish("t1", note("waits")))
            await asyncio.sleep(0.3)
            assert not waiting.done()  # the loop went on meanwhile (this line runs)
        finally:
            other.execute("ROLLBACK")
            other.close()
        stored, _ = await asyncio.wait_for(waiting, 30)
        assert stored.seq == 2
        here = threading.current_thread().name
        assert threads[0] == here and threads[1].startswith("tidings-sqlite-writer"), threads


async def test_on_sqlite_the_loop_leaves_checkpoints_to_the_writer_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Commits on the loop never checkpoint there (a checkpoint syncs the disk): every
    ``CHECKPOINT_EVERY`` of them one is asked of the writer thread, which copies the WAL into
    the database file, so the WAL does not grow without bound."""
    from tidings.store import engine

    monkeypatch.setattr(engine, "CHECKPOINT_EVERY", 5)
    async with sqlite_app(tmp_path) as (_settings, service, _store, writer):
        checkpoints: list[str] = []

        def trace(statement: str) -> None:
            if "wal_checkpoint" in statement:
                checkpoints.append(threading.current_thread().name)

        event.listen(writer, "connect", lambda dbapi, _r: dbapi.set_trace_callback(trace))
        for i in range(12):
            await asyncio.wait_for(service.publish("t1", note(f"n{i}")), 30)
        for _ in range(100):  # asked, not awaited: the thread runs it soon after
            if len(checkpoints) == 2:
                break
            await asyncio.sleep(0.02)
        assert len(checkpoints) == 2, checkpoints  # after the 5th and the 10th commit
        assert all(t.startswith("tidings-sqlite-writer") for t in checkpoints), checkpoints


async def test_on_sqlite_a_writer_that_cannot_lock_answers_unavailable_and_recovers(
    tmp_path: Path,
) -> None:
    """Another process holds SQLite's write lock past the writer's busy timeout: the publish is
    refused as the store being unavailable (503, a ``BEGIN IMMEDIATE`` run on the DBAPI
    connection raised as SQLAlchemy raises it), nothing is stored, and once the lock is gone
    the writer's kept connection publishes again, the seqs without a gap."""
    import sqlite3

    from tidings.errors import Unavailable

    async with sqlite_app(tmp_path) as (settings, service, store, writer):
        quick = "PRAGMA busy_timeout=200"
        event.listen(writer, "connect", lambda dbapi, _r: dbapi.execute(quick), insert=False)
        first, _ = await asyncio.wait_for(service.publish("t1", note("before")), 30)
        path = settings.database_url.split("///", 1)[1]
        other = sqlite3.connect(path, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")  # the write lock, held as another process would
            with pytest.raises(Unavailable):
                await asyncio.wait_for(service.publish("t1", note("locked out")), 30)
        finally:
            other.execute("ROLLBACK")
            other.close()
        after, _ = await asyncio.wait_for(service.publish("t1", note("after")), 30)
        assert (first.seq, after.seq) == (1, 2)
        async with store.read() as conn:
            titles = [n.title for n in await nq.fetch_after(conn, "t1", 0, limit=10)]
        assert titles == ["before", "after"]


async def test_a_burst_of_transactions_reuses_pooled_connections(settings: Settings) -> None:
    """32 concurrent transactions, twice: the second burst opens no connection (the pool keeps
    what it opened; an overflow connection used to be opened and closed per transaction)."""
    store = Store(settings.database_url)
    opened: list[object] = []
    event.listen(store.engine.sync_engine, "connect", lambda conn, _record: opened.append(conn))
    try:

        async def one() -> None:
            async with store.read() as conn:
                await conn.execute(text("SELECT 1"))

        await asyncio.wait_for(asyncio.gather(*(one() for _ in range(32))), 30)
        first = len(opened)
        await asyncio.wait_for(asyncio.gather(*(one() for _ in range(32))), 30)
        assert first > 0 and len(opened) == first, f"{len(opened) - first} opened again"
    finally:
        await store.close()


async def test_a_one_tenant_group_reserves_its_seqs_and_leaves_no_gap(
    server: ServerThread, tenant: Tenant
) -> None:
    """A group of one tenant reserves a seq per item when it locks the tenant: replays give
    theirs back before the commit, and a group that fails as a whole (a constraint error)
    rolls its reservation back, so the next publishes continue without a gap."""
    service = server.service
    await on_server(server, lambda: service.publish(tenant.id, note("k"), idempotency_key="k"))
    broken = broken_note()

    async def group() -> list[Any]:
        calls = [
            service.publish(tenant.id, note("k"), idempotency_key="k"),  # a replay: no seq
            service.publish(tenant.id, note("a")),
            service.publish(tenant.id, broken),
            service.publish_many(tenant.id, [note("b"), note("c")], idempotency_key="b"),
            service.publish(tenant.id, note("k"), idempotency_key="k"),
        ]
        return list(await asyncio.gather(*calls, return_exceptions=True))

    replay, a, failed, batch, again = await on_server(server, group)
    assert isinstance(failed, IntegrityError)
    assert (replay[0].seq, replay[1]) == (1, False) and again == replay
    assert (a[0].seq, [n.seq for n, _ in batch]) == (2, [3, 4])
    after, _ = await on_server(server, lambda: service.publish(tenant.id, note("after")))
    assert after.seq == 5
    assert await stored_seqs(server, tenant.id) == [1, 2, 3, 4, 5], "no seq burned or doubled"


def test_rows_json_is_json_dumps_text() -> None:
    """A group's JSON columns hold exactly the text ``json.dumps`` gives (the encoder is built
    once, not per value), and refuse what it refuses, with the same errors, every time."""
    import json

    values: list[Any] = [
        {"booking_id": 1},
        {"s": 'é ü \u2028 😀 "q" \\ \n', "f": [0.1, 1e300, -0.0, 2**70], "b": [True, None]},
        {"nested": {"a": [{"b": {}}, []], "": ""}},
        [],
        "text",
        None,
        3,
    ]
    for value in values:
        assert nq._json_dumps(value) == json.dumps(value)
    circular: dict[str, Any] = {}
    circular["self"] = circular
    for bad in (circular, {"when": object()}, {"n": float("nan"), "x": [circular]}):
        for _ in range(2):  # a failed encoding leaves nothing behind for the next one
            try:
                json.dumps(bad)
                expected: BaseException | None = None
            except (ValueError, TypeError) as error:
                expected = error
            if expected is None:
                assert nq._json_dumps(bad) == json.dumps(bad)
                continue
            with pytest.raises(type(expected)) as raised:
                nq._json_dumps(bad)
            assert str(raised.value) == str(expected)
    assert nq._json_dumps({"again": [1]}) == '{"again": [1]}'
