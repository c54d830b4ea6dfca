"""The cast (delivery/edge.py): a tenant-wide notification goes to the tenant's steady edge
streams as one write of the same chunk to each transport, the others are offered it one by one.

Driven directly: a real hub and store, edge streams on real socket pairs behind the real protocol
of a handed-over stream (``server.Handed``), chunked as on the wire. What a reader receives is
the judge: every frame meant for it exactly once, in the order the hub offered them, whether it
was on the cast, left it (a targeted notification, a read event, muted types, a burst past its
buffer) or joined it late.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import socket
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st

from tests.delivery.conftest import handed_edge
from tidings.delivery.edge import Edge, Edges
from tidings.delivery.hub import Hub
from tidings.domain.notifications import Audience, NewNotification, Notification, utcnow
from tidings.domain.principals import Principal
from tidings.metrics import Metrics
from tidings.store import Store
from tidings.store import notifications as nq
from tidings.store import tenants as tq

FRAME = re.compile(rb"(?:id: (\d+)\n)?event: (\w+)\ndata: ([^\n]*)\n\n")
ROLES = {"ann": frozenset({"staff"}), "bob": frozenset(), "cy": frozenset({"owner"})}
Token = tuple[str, int]  # ("n", seq) a notification, ("r", n) the n-th read event


class Tenantry:
    """One tenant's hub, edge streams and store on one loop: what the tests drive."""

    def __init__(self, store: Store, tenant: str, buffer: int, keepalive: float = 60) -> None:
        self.store, self.tenant = store, tenant
        self.hub = Hub(store, Metrics(), buffer=buffer, max_per_user=10, max_per_tenant=100)
        self.edges = Edges(
            self.hub,
            store,
            Metrics(),
            keepalive=keepalive,
            send_timeout=10,
            retry_ms=500,
            buffer=buffer,
        )
        self.streams: list[tuple[Edge, socket.socket]] = []

    async def start(self) -> Tenantry:
        async with self.store.write() as conn:
            await tq.create_tenant(conn, self.tenant, self.tenant, now=utcnow())
        return self

    async def open(self, user: str, sent: int, muted: frozenset[str] = frozenset()) -> Edge:
        """An edge stream whose opening went up to ``sent`` (as the opener hands it over)."""
        expires = datetime.now(UTC) + timedelta(hours=1)
        sub = await self.hub.subscribe(Principal(self.tenant, user, ROLES[user], expires))
        sub.mute(muted)
        theirs = await handed_edge(self.edges, sub, sent, chunked=True)
        assert sub.edge is not None
        self.streams.append((sub.edge, theirs))
        return sub.edge

    async def commit(self, type_: str = "system", audience: Audience | None = None) -> Notification:
        item = NewNotification(type=type_, title="t", audience=audience)
        async with self.store.write() as conn:
            return (await nq.insert(conn, self.tenant, item, now=utcnow()))[0]

    @property
    def cast(self) -> Any:
        state = self.hub.tenant_state(self.tenant)
        assert state is not None
        return state.cast

    def close(self) -> None:
        for edge, peer in self.streams:
            if edge.sub.reason is None:
                edge.leave("shutdown")
            peer.close()


def drive(
    loop_store: tuple[asyncio.AbstractEventLoop, Store],
    tenant: str,
    buffer: int,
    body: Callable[[Tenantry], Awaitable[None]],
    keepalive: float = 60,
) -> None:
    """Run ``body`` against a fresh tenant's hub and streams, closing them after."""
    loop, store = loop_store

    async def run() -> None:
        t = await Tenantry(store, tenant, buffer, keepalive).start()
        try:
            await body(t)
        finally:
            t.close()

    loop.run_until_complete(run())


async def settle() -> None:
    """A few loop iterations: every flush scheduled so far has run."""
    for _ in range(3):
        await asyncio.sleep(0)


async def chunks_of(
    peer: socket.socket, seconds: float = 0.3, *, within: float | None = None
) -> list[bytes]:
    """The HTTP chunks ``peer`` received until nothing more came for ``seconds`` (or, given
    ``within``, all it received in that many seconds)."""
    data, loop = b"", asyncio.get_running_loop()
    end = None if within is None else loop.time() + within
    while True:
        wait = seconds if end is None else end - loop.time()
        try:
            async with asyncio.timeout(wait):
                more = await loop.sock_recv(peer, 1 << 20)
        except TimeoutError:
            break
        if not more:
            break
        data += more
    chunks = []
    while data:
        size, _, rest = data.partition(b"\r\n")
        length = int(size, 16)
        chunks.append(rest[:length])
        assert rest[length : length + 2] == b"\r\n", "chunk framing"
        data = rest[length + 2 :]
    return chunks


def tokens(chunks: list[bytes]) -> list[Token]:
    found: list[Token] = []
    for chunk in chunks:
        for seq, event, data in FRAME.findall(chunk):
            if event == b"notification":
                found.append(("n", int(seq)))
            elif event == b"read":
                found.append(("r", int(re.findall(rb"\d+", data)[0])))
    return found


def test_tenant_wide_frames_reach_steady_streams_as_one_write_each(
    loop_store: tuple[asyncio.AbstractEventLoop, Store],
) -> None:

    async def body(t: Tenantry) -> None:
        for user in ("ann", "bob", "cy"):
            await t.open(user, sent=0)
        await settle()
        assert len(t.cast.members) == 3 and not t.cast.off, "steady: all on the cast"
        items = [await t.commit() for _ in range(5)]
        for item in items:  # one loop iteration: no await that yields between them
            await t.hub.deliver(item)
        assert len(t.cast.frames) == 5
        await settle()
        for _, peer in t.streams:
            chunks = await chunks_of(peer)
            assert len(chunks) == 1, "five frames, one write"
            assert tokens(chunks) == [("n", i.seq) for i in items]
        assert len(t.cast.members) == 3

    drive(loop_store, "cast-one", 64, body)


def test_a_targeted_frame_takes_its_stream_off_the_cast_in_order_and_back_on(
    loop_store: tuple[asyncio.AbstractEventLoop, Store],
) -> None:

    async def body(t: Tenantry) -> None:
        ann = await t.open("ann", sent=0)
        await t.open("bob", sent=0)
        await settle()
        first, second = await t.commit(), await t.commit()
        mine = await t.commit(audience=Audience(users=("ann",)))
        last = await t.commit()
        await t.hub.deliver(first)
        await t.hub.deliver(second)
        await t.hub.deliver(mine)  # ann leaves the cast: first and second become hers
        assert ann.cast is None and ann.pending is not None and len(ann.pending) == 3
        await t.hub.deliver(last)  # offered to her one by one now
        t.hub.deliver_ephemeral(t.tenant, "ann", "read", b'{"ids":[7]}')
        await settle()
        (_, ann_peer), (_, bob_peer) = t.streams
        ann_chunks = await chunks_of(ann_peer)
        assert len(ann_chunks) == 1
        seqs = [("n", i.seq) for i in (first, second, mine, last)]
        assert tokens(ann_chunks) == [*seqs, ("r", 7)]
        assert tokens(await chunks_of(bob_peer)) == [seqs[0], seqs[1], seqs[3]]
        assert ann.cast is not None, "written, steady: back on the cast"
        assert ann.sent == last.seq
        # Opened up to the hub's last seq, a targeted one: it has all the cast has had.
        tail = await t.commit(audience=Audience(users=("bob",)))
        await t.hub.deliver(tail)
        cy = await t.open("cy", sent=tail.seq)
        await settle()
        assert cy.cast is not None
        late = await t.open("cy", sent=mine.seq)
        await settle()
        assert late.cast is None, "the cast has had ``last`` since: not on it"

    drive(loop_store, "cast-two", 64, body)


def test_a_burst_past_the_buffer_spills_the_cast_to_the_store(
    loop_store: tuple[asyncio.AbstractEventLoop, Store],
) -> None:
    buffer = 4

    async def body(t: Tenantry) -> None:
        edges = [await t.open(user, sent=0) for user in ("ann", "bob")]
        await settle()
        items = [await t.commit() for _ in range(3 * buffer)]
        for item in items:
            await t.hub.deliver(item)
            assert len(t.cast.frames) <= buffer
        assert all(e.cast is None and e.sub.lagging for e in edges), "spilled: catching up"
        async with asyncio.timeout(10):
            while any(e.task is not None or e.cast is None for e in edges):
                await asyncio.sleep(0.01)
        for _, peer in t.streams:
            assert tokens(await chunks_of(peer)) == [("n", i.seq) for i in items]

    drive(loop_store, "cast-spill", buffer, body)


def test_a_stream_paused_after_the_cast_wrote_to_it_catches_up_from_there(
    loop_store: tuple[asyncio.AbstractEventLoop, Store],
) -> None:
    """What the cast wrote is the stream's own ``sent`` once it leaves; frames the cast had not
    written yet and were then dropped (a pause) are read again from the store, from just
    before them: nothing twice, nothing skipped."""

    async def body(t: Tenantry) -> None:
        ann = await t.open("ann", sent=0)
        bob = await t.open("bob", sent=0)
        await settle()
        written = await t.commit()
        await t.hub.deliver(written)
        await settle()  # written to both by the cast
        bob.pause_writing()  # on the cast, nothing pending: what it wrote is his
        wide = await t.commit()
        mine = await t.commit(audience=Audience(users=("ann",)))
        await t.hub.deliver(wide)
        await t.hub.deliver(mine)  # ann leaves the cast with ``wide`` pending
        ann.pause_writing()  # as the transport would: her pending frames are dropped
        later = await t.commit()
        await t.hub.deliver(later)
        await settle()
        ann.resume_writing()  # drained: she catches up from the store
        bob.resume_writing()
        async with asyncio.timeout(10):
            while any(e.task is not None or e.cast is None for e in (ann, bob)):
                await asyncio.sleep(0.01)
        seqs = [("n", i.seq) for i in (written, wide, mine, later)]
        assert tokens(await chunks_of(t.streams[0][1])) == seqs
        assert tokens(await chunks_of(t.streams[1][1])) == [seqs[0], seqs[1], seqs[3]]

    drive(loop_store, "cast-pause", 64, body)


def test_a_stream_keeps_its_own_frames_beside_the_cast_and_drops_them_exactly(
    loop_store: tuple[asyncio.AbstractEventLoop, Store],
) -> None:
    """A frame of its own while the cast has none pending keeps a stream on the cast (written
    first at the flush); dropped with the cast's later ones (a pause), they are read again from
    the store from just before them: what the cast wrote earlier is not sent twice, and its own
    are not lost."""

    async def body(t: Tenantry) -> None:
        ann = await t.open("ann", sent=0)
        await t.open("bob", sent=0)
        await settle()
        written = await t.commit()
        await t.hub.deliver(written)
        await settle()  # by the cast, to both
        mine = await t.commit(audience=Audience(users=("ann",)))
        wide = await t.commit()
        await t.hub.deliver(mine)
        assert ann.cast is not None and ann.pending is not None, "its own, beside the cast"
        await t.hub.deliver(wide)
        ann.pause_writing()  # her own frame and the cast's, both dropped
        assert ann.cast is None and ann.pending is None and ann.sent == written.seq
        ann.resume_writing()
        async with asyncio.timeout(10):
            while ann.task is not None or ann.cast is None:
                await asyncio.sleep(0.01)
        seqs = [("n", i.seq) for i in (written, mine, wide)]
        assert tokens(await chunks_of(t.streams[0][1])) == seqs
        assert tokens(await chunks_of(t.streams[1][1])) == [seqs[0], seqs[2]]

    drive(loop_store, "cast-own", 64, body)


def test_its_own_frames_and_the_casts_together_stay_within_the_buffer(
    loop_store: tuple[asyncio.AbstractEventLoop, Store],
) -> None:
    buffer = 4

    async def body(t: Tenantry) -> None:
        ann = await t.open("ann", sent=0)
        await t.open("bob", sent=0)
        await settle()
        mine = [await t.commit(audience=Audience(users=("ann",))) for _ in range(3)]
        wide = [await t.commit() for _ in range(2)]
        for item in [*mine, *wide]:  # one loop iteration
            await t.hub.deliver(item)
        assert ann.cast is not None and ann.pending is not None and len(ann.pending) == 3
        ann.sub.mute(frozenset({"promo"}))  # off the cast: 3 of hers + 2 of the cast's
        assert ann.pending is None or len(ann.pending) <= buffer
        assert ann.cast is None and ann.sub.lagging, "past the bound: from the store"
        async with asyncio.timeout(10):
            while ann.task is not None:
                await asyncio.sleep(0.01)
        got = tokens(await chunks_of(t.streams[0][1]))
        assert got == [("n", i.seq) for i in [*mine, *wide]]

    drive(loop_store, "cast-own-bound", buffer, body)


def test_muted_types_take_a_stream_off_the_cast_and_back(
    loop_store: tuple[asyncio.AbstractEventLoop, Store],
) -> None:

    async def body(t: Tenantry) -> None:
        ann = await t.open("ann", sent=0)
        await settle()
        assert ann.cast is not None
        ann.sub.mute(frozenset({"promo"}))
        assert ann.cast is None, "a stream with muted types is written one by one"
        promo, plain = await t.commit("promo"), await t.commit()
        await t.hub.deliver(promo)
        await t.hub.deliver(plain)
        await settle()
        ann.sub.mute(frozenset())
        await settle()
        assert ann.cast is not None, "unmuted: back on the cast"
        again = await t.commit("promo")
        await t.hub.deliver(again)
        await settle()
        got = tokens(await chunks_of(t.streams[0][1]))
        assert got == [("n", plain.seq), ("n", again.seq)]

    drive(loop_store, "cast-mute", 64, body)


def test_a_stream_opened_past_the_hub_joins_only_once_the_hub_caught_up(
    loop_store: tuple[asyncio.AbstractEventLoop, Store],
) -> None:
    """Its opening read the store beyond what the hub has offered: on the cast it would get
    those seqs a second time."""

    async def body(t: Tenantry) -> None:
        await t.open("bob", sent=0)
        items = [await t.commit() for _ in range(3)]
        ahead = await t.open("ann", sent=items[1].seq)
        await settle()
        assert ahead.cast is None, "sent beyond the hub's last seq: off the cast"
        for item in items:
            await t.hub.deliver(item)
        await settle()
        assert ahead.cast is not None
        later = await t.commit()
        await t.hub.deliver(later)
        await settle()
        got = tokens(await chunks_of(t.streams[1][1]))
        assert got == [("n", items[2].seq), ("n", later.seq)]

    drive(loop_store, "cast-ahead", 64, body)


# A program: notifications committed (a type, an audience), then offered to the hub (all that
# is committed, in one loop iteration), read events, loop iterations, streams opened (their
# opening up to what the hub offered, or up to what the store holds: past the hub).
ops = st.lists(
    st.one_of(
        st.tuples(
            st.just("commit"),
            st.sampled_from(("system", "promo")),
            st.sampled_from((None, None, "ann", "bob", "staff")),
        ),
        st.tuples(st.just("deliver")),
        st.tuples(st.just("read"), st.sampled_from(tuple(ROLES))),
        st.tuples(st.just("flush")),
        st.tuples(st.just("open"), st.sampled_from(tuple(ROLES)), st.booleans(), st.booleans()),
    ),
    min_size=1,
    max_size=30,
)


async def _program(t: Tenantry, program: list[tuple[Any, ...]]) -> None:
    committed: list[Notification] = []
    offered = 0  # committed[:offered] were offered to the hub
    reads = itertools.count(1)
    expected: list[list[Token]] = []
    opened: list[tuple[str, int, frozenset[str]]] = []  # user, sent, muted per stream
    await t.open("bob", sent=0)
    expected.append([])
    opened.append(("bob", 0, frozenset()))
    for op in program:
        if op[0] == "commit":
            audience = None
            if op[2] in ("ann", "bob"):
                audience = Audience(users=(op[2],))
            elif op[2] == "staff":
                audience = Audience(roles=("staff",))
            committed.append(await t.commit(op[1], audience))
        elif op[0] == "deliver":
            for item in committed[offered:]:
                await t.hub.deliver(item)
                for (user, sent, muted), wants in zip(opened, expected, strict=True):
                    visible = item.visible_to(user, ROLES[user])
                    if item.seq > sent and visible and item.type not in muted:
                        wants.append(("n", item.seq))
            offered = len(committed)
        elif op[0] == "read":
            n = next(reads)
            t.hub.deliver_ephemeral(t.tenant, op[1], "read", b'{"ids":[%d]}' % n)
            for (user, _, _), wants in zip(opened, expected, strict=True):
                if user == op[1]:
                    wants.append(("r", n))
        elif op[0] == "flush":
            await settle()
        else:
            _, user, ahead, mute = op
            sent = committed[-1].seq if ahead and committed else 0
            if not ahead and offered:
                sent = committed[offered - 1].seq
            muted = frozenset({"promo"}) if mute else frozenset()
            await t.open(user, sent=sent, muted=muted)
            expected.append([])
            opened.append((user, sent, muted))
    # The rest, and one more for every stream: each has a frame past its opening, so each
    # steady one is back on the cast after the flush.
    committed.append(await t.commit())
    for item in committed[offered:]:
        await t.hub.deliver(item)
        for (user, sent, muted), wants in zip(opened, expected, strict=True):
            visible = item.visible_to(user, ROLES[user])
            if item.seq > sent and visible and item.type not in muted:
                wants.append(("n", item.seq))
    await settle()
    for (_, peer), wants in zip(t.streams, expected, strict=True):
        assert tokens(await chunks_of(peer, 0.05)) == wants
    steady = [edge for edge, _ in t.streams if not edge.sub.muted]
    assert all(edge.cast is not None for edge in steady), "all steady streams end on the cast"


def test_every_stream_gets_its_frames_exactly_once_in_order(
    loop_store: tuple[asyncio.AbstractEventLoop, Store],
) -> None:
    loop, store = loop_store
    names = (f"prop-{i}" for i in itertools.count())

    @hyp_settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(program=ops)
    def check(program: list[tuple[Any, ...]]) -> None:
        async def run() -> None:
            t = await Tenantry(store, next(names), buffer=1000).start()
            try:
                await _program(t, program)
            finally:
                t.close()

        loop.run_until_complete(run())

    check()


def test_a_stream_that_leaves_the_cast_is_pinged_a_keepalive_after_the_casts_last_write(
    loop_store: tuple[asyncio.AbstractEventLoop, Store],
) -> None:
    """The cast's writes count as the stream's own once it is off the cast (here: its user
    muted a type): no ping sooner than a keep-alive after the last of them."""

    async def body(t: Tenantry) -> None:
        ann = await t.open("ann", sent=0)
        peer = t.streams[0][1]
        loop = asyncio.get_running_loop()
        start = loop.time()
        await settle()
        while loop.time() - start < 0.8:  # busy on the cast
            await t.hub.deliver(await t.commit())
            await settle()
            last_write = loop.time()
            await asyncio.sleep(0.2)
        assert ann.cast is not None
        assert ann.last_write < ann.written() == ann.cast.time, "the cast's writes count"
        # The clock looks at it next a keep-alive after the cast's last write.
        now = loop.time()
        assert t.edges._due(ann, now, time.time()) == ann.cast.time + 1.0
        ann.sub.mute(frozenset({"promo"}))  # off the cast, for good
        assert ann.cast is None
        chunks = await chunks_of(peer, within=1.0 - (loop.time() - last_write) - 0.1)
        assert b": ping\n\n" not in chunks, "pinged within a keep-alive of the last write"
        assert b": ping\n\n" in await chunks_of(peer, within=1.2), "then idle: pinged"

    drive(loop_store, "cast-clock", 64, body, keepalive=1.0)  # the clock's tick: 0.5 s
