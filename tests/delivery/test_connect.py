"""The connect path without SQL (delivery/recent.py, delivery/opening.py, auth.TokenCache).

The property: whatever was published (by whichever actor), read, marked unread, archived,
unarchived, snoozed, woken or muted, the opening the hub answers
from memory (ring + kept view) is the opening the store alone gives (``from_store`` + its
replay): the same ``ready`` data, the same replayed seqs, the same ``sent``."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st
from sqlalchemy import event

from tests.support import ServerThread, Stream, create_tenant, make_settings, open_service, publish
from tidings.auth import TokenCache
from tidings.delivery.hub import Hub
from tidings.delivery.opening import Opening, from_memory, from_store
from tidings.delivery.opening import open_many as _open_many
from tidings.domain.notifications import Actor, Audience, NewNotification
from tidings.domain.principals import Principal
from tidings.errors import NotFound, Unauthorized
from tidings.service import Tidings
from tidings.store import notifications as nq
from tidings.store import snapshot as sq
from tidings.store.tables import notifications

USERS = ("ann", "bob", "cy")
ROLES = {"ann": frozenset({"staff"}), "bob": frozenset(), "cy": frozenset({"staff", "owner"})}
TYPES = ("booking_created", "payment_failed", "system")
RING = 6
LIMIT = 12


def principal(tenant: str, user: str, ttl: float = 3600) -> Principal:
    expires = datetime.now(UTC) + timedelta(seconds=ttl)
    return Principal(tenant=tenant, user=user, roles=ROLES[user], expires_at=expires)


# -- the token cache ----------------------------------------------------------------------------


def test_a_cached_token_is_answered_until_its_exp_then_as_expired() -> None:
    cache = TokenCache(size=2)
    p = principal("jump-joy", "ann", ttl=10)
    cache.put("t1", p, None)
    exp = p.expires_at.timestamp()
    assert cache.get("t1", now=exp - 0.5) == (p, None)
    with pytest.raises(Unauthorized) as caught:
        cache.get("t1", now=exp)  # no leeway, as PyJWT
    assert caught.value.code == "token_expired"
    assert cache.get("t1", now=exp - 5) is None, "an expired token is dropped"


def test_the_token_cache_is_bounded_least_recently_used_out() -> None:
    cache = TokenCache(size=2)
    for name in ("a", "b"):
        cache.put(name, principal("jump-joy", "ann"), None)
    assert cache.get("a") is not None
    cache.put("c", principal("jump-joy", "bob"), "tsk_1")
    assert len(cache) == 2 and cache.get("b") is None
    hit = cache.get("c")
    assert hit is not None and hit[1] == "tsk_1"
    off = TokenCache(size=0)
    off.put("a", principal("jump-joy", "ann"), None)
    assert len(off) == 0


@pytest.mark.anyio
async def test_a_token_is_verified_once_then_served_from_the_cache(tmp_path: Path) -> None:
    async with open_service(make_settings(str(tmp_path))) as service:
        await service.load_secrets()
        token, _ = service.mint_token("jump-joy", "ann", ["staff"], ttl=60)
        first = await service.verify_token(token)
        assert len(service.tokens) == 1
        assert await service.verify_token(token) is first  # no second verification
        with pytest.raises(Unauthorized):
            await service.verify_token(token[:-2] + "xx")  # a forged signature is not a hit
        assert len(service.tokens) == 1, "only verified tokens are kept"


# -- the opening: memory against the store ------------------------------------------------------

Op = tuple[Any, ...]
GROUPS = ("booking:1", "booking:2")
ops = st.lists(
    st.one_of(
        st.tuples(
            st.just("publish"),
            st.sampled_from(TYPES),
            st.one_of(st.none(), st.sampled_from([("ann",), ("bob",), ("staff",), ("owner",)])),
            st.integers(1, 3),
            st.one_of(st.none(), st.sampled_from(USERS)),  # the actor: read for them
            st.one_of(st.none(), st.sampled_from(GROUPS)),  # the collapse key (issue 10)
        ),
        st.tuples(st.just("read_group"), st.sampled_from(USERS), st.sampled_from(GROUPS)),
        st.tuples(
            st.sampled_from(("read", "archive", "unread", "unarchive", "snooze")),
            st.sampled_from(USERS),
            st.integers(1, 10),
        ),
        st.tuples(st.just("wake")),  # every snooze ends
        st.tuples(st.just("restart")),  # a new process: its ring warmed from the store
        st.tuples(st.just("read_all"), st.sampled_from(USERS), st.integers(0, 12)),
        st.tuples(
            st.just("connect"),
            st.sampled_from(USERS),
            st.frozensets(st.sampled_from(TYPES), max_size=1),
            st.one_of(st.none(), st.integers(0, 20)),
        ),
    ),
    min_size=1,
    max_size=25,
)


def _ready(opening: Opening) -> tuple[str, dict[str, Any]]:
    """The first frame's event (with its id, if any) and data."""
    head = opening.data.split(b"\n\n", 1)[0]
    lines = dict(line.split(b": ", 1) for line in head.split(b"\n"))
    event = lines[b"event"].decode() + (f"#{int(lines[b'id'])}" if b"id" in lines else "")
    return event, orjson.loads(lines[b"data"])


def _seqs(data: bytes) -> list[int]:
    """The ids of the frames after the first (the replay)."""
    rest = data.split(b"\n\n", 1)[1]
    return [int(line[4:]) for line in rest.split(b"\n") if line.startswith(b"id: ")]


async def _store_replay(service: Tidings, p: Principal, muted: frozenset[str], op: Opening) -> Any:
    if op.replay_to is None:
        return []
    async with service.store.read() as conn:
        rows = await nq.fetch_after(conn, p.tenant, op.sent, upto=op.replay_to, limit=1000)
    return [r.seq for r in rows if r.visible_to(p.user, p.roles) and r.type not in muted]


async def _check_connect(
    service: Tidings, tenant: str, user: str, muted: frozenset[str], resume: int | None
) -> None:
    hub, p = service.hub, principal(tenant, user)
    sub = await hub.subscribe(p)
    sub.muted = muted
    try:
        memory = await from_memory(hub, service.store, sub, resume, replay_limit=LIMIT)
        store = await from_store(service.store, sub, resume, replay_limit=LIMIT)
    finally:
        hub.unsubscribe(sub)
    replayed = await _store_replay(service, p, muted, store)
    s_event, s_data = _ready(store)
    if not muted:  # the statements of the store's snapshot give what the feed queries give
        assert s_data == orjson.loads(orjson.dumps(await service.snapshot(p)))
    if memory is None:  # only when the store must answer: a resume beyond the ring (or ahead)
        state = hub.tenant_state(tenant)
        assert state is not None and resume is not None
        assert resume > state.last or not state.ring.covers(resume)
        return
    m_event, m_data = _ready(memory)
    assert (m_event, m_data) == (s_event, s_data)
    assert _seqs(memory.data) == replayed
    assert memory.sent == (store.replay_to if store.replay_to is not None else store.sent)


async def _run(service: Tidings, tenant: str, program: list[Op]) -> None:
    await service.create_tenant(tenant, tenant)
    watcher = await service.hub.subscribe(principal(tenant, "bob"))  # the tenant is served
    try:
        for op in program:
            kind = op[0]
            if kind == "publish":
                _, type_, target, count, actor, *rest = op
                group = rest[0] if rest else None
                by = None if actor is None else Actor(id=actor)
                audience = None
                if target is not None:
                    name = target[0]
                    audience = Audience(users=(name,)) if name in USERS else Audience(roles=target)
                for i in range(count):
                    new = NewNotification(
                        type=type_, title=f"n{i}", audience=audience, actor=by, group=group
                    )
                    await service.publish(tenant, new)
            elif kind == "snooze":
                _, user, seq = op
                until = datetime.now(UTC) + timedelta(days=1)
                with contextlib.suppress(NotFound):  # not visible to them, or not yet published
                    await service.snooze(principal(tenant, user), [seq], until)
            elif kind in ("read", "archive", "unread", "unarchive"):
                _, user, seq = op
                act = {
                    "read": service.mark_read,
                    "archive": service.archive,
                    "unread": service.mark_unread,
                    "unarchive": service.unarchive,
                }[kind]
                with contextlib.suppress(NotFound):  # not visible to them, or not yet published
                    await act(principal(tenant, user), [seq])
            elif kind == "read_group":
                with contextlib.suppress(NotFound):  # none of the group visible to them yet
                    await service.mark_groups_read(principal(tenant, op[1]), [op[2]])
            elif kind == "wake":
                await service.wake_snoozed(datetime.now(UTC) + timedelta(days=2))
            elif kind == "restart":  # nothing in memory but what the new hub reads itself
                service.hub.unsubscribe(watcher)
                service.hub = _hub(service)
                watcher = await service.hub.subscribe(principal(tenant, "bob"))
            elif kind == "read_all":
                await service.mark_all_read(principal(tenant, op[1]), op[2] or None)
            else:
                _, user, muted, resume = op
                await _check_connect(service, tenant, user, muted, resume)
        for user in USERS:  # and once more at the end, each (kept views rolled forward)
            await _check_connect(service, tenant, user, frozenset(), None)
    finally:
        service.hub.unsubscribe(watcher)


# The inbox's read rule, each reached for sure (hypothesis explores around them): a kept view
# rolled over the user's own notifications (read, not counted) ...
OWN_IN_A_KEPT_VIEW: list[Op] = [
    ("connect", "ann", frozenset(), None),
    ("publish", "system", None, 2, "ann"),
]
# ... and the store's: the actor's own, an unread mark below the line, a snooze, its end.
INBOX_STATES: list[Op] = [
    ("publish", "system", None, 3, "cy"),
    ("read_all", "ann", 0),
    ("unread", "ann", 2),
    ("snooze", "bob", 3),
    ("connect", "bob", frozenset(), None),
    ("wake",),
]
# ... and a restart: the new hub's ring, read from the store, replays what the old one would.
RESTARTED: list[Op] = [
    ("publish", "system", None, 2, "cy"),
    ("publish", "booking_created", ("ann",), 3, None, "booking:1"),
    ("publish", "payment_failed", ("staff",), 2, None),
    ("restart",),
    ("connect", "ann", frozenset(), 3),
    ("connect", "cy", frozenset({"system"}), 4),
    ("publish", "system", None, 1, "ann"),
    ("connect", "ann", frozenset(), 5),
]
# ... and a group: items in the ring carry it, marking the group read reaches the kept view.
GROUPED: list[Op] = [
    ("connect", "ann", frozenset(), None),
    ("publish", "system", None, 2, None, "booking:1"),
    ("publish", "system", ("ann",), 1, None, "booking:2"),
    ("publish", "system", None, 1, "ann", "booking:1"),
    ("read_group", "ann", "booking:1"),
    ("connect", "ann", frozenset(), 1),
]


def _hub(service: Tidings) -> Hub:
    return Hub(
        service.store, service.metrics, buffer=1000, max_per_user=50, max_per_tenant=50, ring=RING
    )


@pytest.fixture
def service_loop(tmp_path: Path) -> Iterator[tuple[asyncio.AbstractEventLoop, Tidings]]:
    loop = asyncio.new_event_loop()
    context = open_service(make_settings(str(tmp_path), replay_limit=LIMIT))
    service = loop.run_until_complete(context.__aenter__())
    service.hub = _hub(service)
    try:
        yield loop, service
    finally:
        loop.run_until_complete(context.__aexit__(None, None, None))
        loop.close()


def test_the_opening_from_memory_is_the_opening_from_the_store(
    service_loop: tuple[asyncio.AbstractEventLoop, Tidings],
) -> None:
    loop, service = service_loop
    names = (f"t{i}" for i in itertools.count())

    @hyp_settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(program=ops)
    @example(program=OWN_IN_A_KEPT_VIEW)
    @example(program=INBOX_STATES)
    @example(program=GROUPED)
    @example(program=RESTARTED)
    def check(program: list[Op]) -> None:
        loop.run_until_complete(_run(service, next(names), program))

    check()


@pytest.mark.postgres
@pytest.mark.anyio
async def test_the_opening_statements_on_postgresql(tmp_path: Path, postgres_url: str) -> None:
    """The same property on PostgreSQL for the programs above (its SQL differs: ``ANY``
    arrays for the expanding parameters, the watermark as a scalar subquery)."""
    settings = make_settings(str(tmp_path), replay_limit=LIMIT, database_url=postgres_url)
    async with open_service(settings) as service:
        service.hub = Hub(
            service.store,
            service.metrics,
            buffer=1000,
            max_per_user=50,
            max_per_tenant=50,
            ring=RING,
        )
        for n, program in enumerate((OWN_IN_A_KEPT_VIEW, INBOX_STATES)):
            await _run(service, f"pg{n}", program)


@pytest.mark.postgres
@pytest.mark.anyio
async def test_a_batch_of_views_is_one_statement_on_postgresql(
    tmp_path: Path, postgres_url: str
) -> None:
    """On PostgreSQL the views an opener batch misses are read in ONE statement (a row per
    user, the two statements per row as LATERAL subqueries): one round trip for the batch,
    each opening the one the store alone gives (two statements for its user): targeted and
    tenant-wide notifications, the actor's own, an unread mark below the line, a snooze, an
    inbox all but one muted, an empty one, the same user twice, another tenant."""
    settings = make_settings(str(tmp_path), replay_limit=LIMIT, database_url=postgres_url)
    async with open_service(settings) as service:
        hub = Hub(service.store, service.metrics, buffer=100, max_per_user=5, max_per_tenant=50)
        await service.create_tenant("t", "t")
        for title, audience, actor, type_ in (
            ("all", None, None, "system"),
            ("by cy", None, Actor(id="cy"), "booking_created"),
            ("to ann", Audience(users=("ann",)), None, "payment_failed"),
            ("to staff", Audience(roles=("staff",)), None, "system"),
            ("to owner", Audience(roles=("owner",)), None, "booking_created"),
            ("late", None, None, "payment_failed"),
        ):
            await service.publish(
                "t", NewNotification(type=type_, title=title, audience=audience, actor=actor)
            )
        await service.mark_all_read(principal("t", "ann"), 4)
        await service.mark_unread(principal("t", "ann"), [1])
        await service.snooze(principal("t", "cy"), [6], datetime.now(UTC) + timedelta(days=1))
        await service.create_tenant("u", "u")  # another tenant in the same batch
        await service.publish("u", NewNotification(type="system", title="elsewhere"))
        wanted = [
            (principal("t", "ann"), frozenset[str]()),
            (principal("t", "bob"), frozenset({"system"})),
            (principal("t", "cy"), frozenset[str]()),
            (principal("t", "ann"), frozenset({"payment_failed", "system"})),
            (principal("u", "bob"), frozenset[str]()),
            (principal("t", "bob"), frozenset(TYPES)),  # every type muted: an empty inbox
        ]
        subs = []
        for p, muted in wanted:
            sub = await hub.subscribe(p)
            sub.muted = muted
            subs.append(sub)
        statements: list[str] = []

        def seen(_c: Any, _cur: Any, statement: str, *_: Any) -> None:
            statements.append(statement)

        engine = service.store.engine.sync_engine
        event.listen(engine, "before_cursor_execute", seen)
        try:
            openings = await _open_many(
                hub, service.store, [(s, None) for s in subs], replay_limit=LIMIT
            )
        finally:
            event.remove(engine, "before_cursor_execute", seen)
        assert len(statements) == 1 and "jsonb_to_recordset" in statements[0]
        for sub, opening in zip(subs, openings, strict=True):
            assert opening is not None
            alone = await from_store(service.store, sub, None, replay_limit=LIMIT)
            assert _ready(opening) == _ready(alone)
        unread = [_ready(o)[1]["unread"]["count"] for o in openings if o is not None]
        assert unread == [2, 2, 3, 0, 1, 0]  # as counted by hand from what is published above


@pytest.mark.anyio
async def test_after_a_restart_a_resume_a_little_behind_opens_from_memory(tmp_path: Path) -> None:
    """A new process (a new hub) starting to serve a tenant reads its ring from the store: a
    stream resuming within it (the publishes of a downtime landed before it came back) opens
    from memory with the replay the store gives; one older than the ring, or past a hole in
    the store's seqs, is left to the store as before."""
    async with open_service(make_settings(str(tmp_path), replay_limit=LIMIT)) as service:
        await service.create_tenant("t", "t")
        for i in range(10):
            audience = Audience(users=("ann",)) if i % 3 == 0 else None
            await service.publish(
                "t", NewNotification(type="system", title=f"n{i}", audience=audience)
            )

        async def resume(after: int) -> tuple[Opening | None, Opening]:
            hub = _hub(service)  # a fresh process's hub
            sub = await hub.subscribe(principal("t", "ann"))
            memory = await from_memory(hub, service.store, sub, after, replay_limit=LIMIT)
            store = await from_store(service.store, sub, after, replay_limit=LIMIT)
            hub.unsubscribe(sub)
            return memory, store

        memory, store = await resume(7)
        assert memory is not None, "opened from the ring the new hub read"
        assert _seqs(memory.data) == await _store_replay(
            service, principal("t", "ann"), frozenset(), store
        )
        assert _seqs(memory.data) == [8, 9, 10] and memory.sent == 10
        assert _ready(memory) == _ready(store)
        assert (await resume(10 - RING))[0] is not None  # the ring's oldest edge
        assert (await resume(10 - RING - 1))[0] is None  # older than the ring: the store's
        async with service.store.write() as conn:  # a hole in the store's seqs
            await conn.execute(notifications.delete().where(notifications.c.seq == 9))
        assert (await resume(7))[0] is None


@pytest.mark.anyio
async def test_a_resume_ahead_of_the_hub_is_told_apart_by_the_store(tmp_path: Path) -> None:
    """A ``Last-Event-ID`` above the hub's last seq: if the store has more than the hub
    (committed through another instance, not yet announced here) the store opens the stream
    (``None``); if nothing was committed that far (a store restored from a backup, an id of
    another deployment) it is ``reset`` from memory, as the store alone answers it. One read
    of the store's latest seqs serves a whole batch."""
    async with open_service(make_settings(str(tmp_path), replay_limit=LIMIT)) as service:
        await service.create_tenant("t", "t")
        for i in range(3):
            await service.publish("t", NewNotification(type="system", title=f"n{i}"))
        other = _hub(service)  # another instance's hub: it hears nothing published here
        late = [await other.subscribe(principal("t", user)) for user in ("ann", "bob")]
        for i in range(2):
            await service.publish("t", NewNotification(type="system", title=f"m{i}"))
        subs = [await service.hub.subscribe(principal("t", user)) for user in USERS]
        asked: list[Any] = []
        for hub in (service.hub, other):
            committed = hub.committed

            async def counted(tenants: Any, committed: Any = committed) -> Any:
                asked.append(list(tenants))
                return await committed(tenants)

            hub.committed = counted  # type: ignore[method-assign]
        try:
            stale = await _open_many(
                other, service.store, [(late[0], 5), (late[1], 9)], replay_limit=LIMIT
            )
            assert stale == [None, None], "the store has seqs this hub has not offered"
            resumes = [9, 6, 5]  # ahead of everything, twice; at the last seq
            openings = await _open_many(
                service.hub,
                service.store,
                list(zip(subs, resumes, strict=True)),
                replay_limit=LIMIT,
            )
            assert asked == [["t"], ["t"]], "one read per batch with streams ahead"
            for sub, resume, opening in zip(subs, resumes, openings, strict=True):
                assert opening is not None
                alone = await from_store(service.store, sub, resume, replay_limit=LIMIT)
                assert _ready(opening) == _ready(alone)
                assert opening.sent == alone.sent == 5
            assert [_ready(o)[0] for o in openings if o is not None] == [
                "reset#5",
                "reset#5",
                "ready#5",
            ]
        finally:
            for sub in subs:
                service.hub.unsubscribe(sub)


@pytest.mark.anyio
async def test_a_batch_of_views_not_kept_is_read_in_one_hand_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reconnect storm once the ring has moved past the users' views (or after a restart):
    on SQLite the views of a whole opener batch are read on the store's reader thread in ONE
    hand-off (``Store.run_read``), not a hand-off to aiosqlite's thread per statement, each
    notification the batch's users share is built once, and each opening is the one the
    store alone gives."""
    async with open_service(make_settings(str(tmp_path), replay_limit=LIMIT)) as service:
        hub = Hub(service.store, service.metrics, buffer=100, max_per_user=5, max_per_tenant=50)
        await service.create_tenant("t", "t")
        for i in range(3):
            await service.publish("t", NewNotification(type="system", title=f"n{i}"))
        await service.mark_read(principal("t", "bob"), [2])
        subs = [await hub.subscribe(principal("t", user)) for user in ("ann", "bob", "cy")]
        store = service.store
        assert store.writes_in_thread
        hand_offs = []
        run_read = store.run_read

        async def counted(work: Any) -> Any:
            hand_offs.append(work)
            return await run_read(work)

        def per_statement() -> Any:
            raise AssertionError("the batch's views were read a statement per hand-off")

        built = []

        def from_row(row: Any) -> Any:
            built.append(int(row.seq))
            return nq.from_row(row)

        with monkeypatch.context() as patched:
            patched.setattr(store, "run_read", counted)
            patched.setattr(store, "read", per_statement)
            patched.setattr(sq, "from_row", from_row)
            openings = await _open_many(hub, store, [(s, None) for s in subs], replay_limit=LIMIT)
        assert len(hand_offs) == 1
        # The three users' latest are the same three notifications: each built once (and
        # encoded once) for the batch, each user's read flags their own (bob's below).
        assert sorted(built) == [1, 2, 3]
        for sub, opening in zip(subs, openings, strict=True):
            assert opening is not None
            alone = await from_store(store, sub, None, replay_limit=LIMIT)
            assert _ready(opening) == _ready(alone)
        bob = openings[1]
        assert bob is not None and _ready(bob)[1]["unread"]["count"] == 2  # one of 3 read


@pytest.mark.anyio
async def test_a_relayed_notification_of_the_users_own_rolls_in_read(tmp_path: Path) -> None:
    """A notification another instance committed arrives as bytes (``deliver_raw``, through
    the broker): the ring takes its actor from the payload, so the kept view rolls it in read
    for its actor and unread for the others, as the store says."""
    async with open_service(make_settings(str(tmp_path))) as service:
        await service.create_tenant("jump-joy", "jump-joy")
        here = Hub(service.store, service.metrics, buffer=100, max_per_user=5, max_per_tenant=5)
        subs = {u: await here.subscribe(principal("jump-joy", u)) for u in ("ann", "cy")}
        for sub in subs.values():  # both views kept here, as of seq 0
            assert await from_memory(here, service.store, sub, None, replay_limit=100)
        own = NewNotification(type="system", title="mine", actor=Actor(id="ann", name="Ann"))
        stored, _ = await service.publish("jump-joy", own)  # on "another instance"
        await here.deliver_raw("jump-joy", stored.seq, stored.encode())
        for user, unread in (("ann", 0), ("cy", 1)):
            memory = await from_memory(here, service.store, subs[user], None, replay_limit=100)
            store = await from_store(service.store, subs[user], None, replay_limit=100)
            assert memory is not None and _ready(memory) == _ready(store)
            data = _ready(memory)[1]
            assert data["unread"]["count"] == unread and data["user"] == user
            assert data["latest"][0]["read"] is (user == "ann")


@pytest.mark.anyio
async def test_a_read_elsewhere_drops_the_kept_view(tmp_path: Path) -> None:
    """The event alone (as the broker brings it from another instance) makes the next
    opening read the store again: the view is forgotten, not patched."""
    async with open_service(make_settings(str(tmp_path))) as service:
        await service.create_tenant("jump-joy", "jump-joy")
        hub, ann = service.hub, principal("jump-joy", "ann")
        watcher = await hub.subscribe(ann)
        for i in range(3):
            await service.publish("jump-joy", NewNotification(type="system", title=f"n{i}"))
        opening = await from_memory(hub, service.store, watcher, None, replay_limit=100)
        assert opening is not None and _ready(opening)[1]["unread"]["count"] == 3
        async with service.store.write() as conn:  # committed by another instance
            from tidings.store import readstate as rq

            await rq.mark_read(conn, "jump-joy", "ann", ["staff"], [1], now=datetime.now(UTC))
        hub.deliver_ephemeral("jump-joy", "ann", "read", b'{"ids":[1]}')  # its broker event
        opening = await from_memory(hub, service.store, watcher, None, replay_limit=100)
        assert opening is not None and _ready(opening)[1]["unread"]["count"] == 2
        hub.broker_changed(connected=False)  # events may be lost: nothing kept is trusted
        async with service.store.write() as conn:
            await rq.mark_read(conn, "jump-joy", "ann", ["staff"], [2], now=datetime.now(UTC))
        opening = await from_memory(hub, service.store, watcher, None, replay_limit=100)
        assert opening is not None and _ready(opening)[1]["unread"]["count"] == 1
        hub.unsubscribe(watcher)


@pytest.mark.redis
@pytest.mark.anyio
async def test_a_read_on_another_instance_reaches_the_count_this_one_keeps(
    tmp_path: Path, redis_url: str
) -> None:
    """Two instances, one store, the Redis broker: ann's view is kept on A; she reads and
    archives through B; once B's events reach A, a new stream on A counts right."""
    settings = make_settings(str(tmp_path), broker_url=redis_url)
    a, b = ServerThread(settings).start(), ServerThread(settings).start()
    try:
        tenant = create_tenant(a.url, "jump-joy")
        token = tenant.token("ann")
        auth = {"Authorization": f"Bearer {token}"}
        async with Stream(a.url, token) as first, httpx.AsyncClient(timeout=10) as client:
            assert (await first.next_event("ready")).data["unread"]["count"] == 0
            for i in range(4):
                await publish(client, tenant, f"n{i}")
            await first.notifications(4)
            steps = [
                ("read", {"ids": [1]}, 4, [4, 3, 2, 1]),
                ("archive", {"ids": [2]}, 3, [4, 3, 1]),
                ("read", {"all": True}, 2, [4, 3, 1]),
            ]
            for path, body, before, latest in steps:
                async with Stream(a.url, token) as probe:  # opened on A: the view is kept there
                    assert (await probe.next_event("ready")).data["unread"]["count"] == before
                r = await client.post(f"{b.url}/v1/feed/{path}", json=body, headers=auth)
                assert r.status_code == 200, r.text
                await first.next_event("read" if path == "read" else "archived")  # via Redis
                async with Stream(a.url, token) as after:
                    ready = (await after.next_event("ready")).data
                assert ready["unread"] == r.json()["unread"]
                assert [item["id"] for item in ready["latest"]] == latest
    finally:
        a.stop()
        b.stop()
