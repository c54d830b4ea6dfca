"""The hub over an in-memory :class:`~tidings.delivery.seqsource.SeqSource`: gap fill,
catch-up order and exactly-once, with no database (milliseconds each).

The fake keeps the source's invariants (latest = highest committed seq; ``after`` answers
``after < seq <= upto`` oldest first, at most ``limit``; a pruned seq is simply absent) and
records each call, so the tests can also see how the hub pages its reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from tidings.delivery.hub import Hub, Subscriber
from tidings.delivery.seqsource import SeqSource
from tidings.domain.notifications import Notification
from tidings.domain.principals import Principal
from tidings.errors import Code, NotFound
from tidings.metrics import Metrics

pytestmark = pytest.mark.anyio

T1, T2 = "t1", "t2"


class FakeSeqs:
    """Committed notifications per tenant, in memory."""

    def __init__(self, *tenants: str) -> None:
        self.last: dict[str, int] = dict.fromkeys(tenants, 0)
        self.rows: dict[str, dict[int, Notification]] = {t: {} for t in tenants}
        self.calls: list[tuple[str, object]] = []

    def commit(self, tenant: str, count: int = 1) -> list[Notification]:
        out = []
        for _ in range(count):
            self.last[tenant] += 1
            seq = self.last[tenant]
            row = Notification(
                tenant, seq, "system", f"n{seq}", "", {}, None, None, datetime.now(UTC)
            )
            self.rows[tenant][seq] = row
            out.append(row)
        return out

    def prune(self, tenant: str, upto: int) -> None:
        for seq in [s for s in self.rows[tenant] if s <= upto]:
            del self.rows[tenant][seq]

    async def latest(self, tenant: str) -> int:
        self.calls.append(("latest", tenant))
        if tenant not in self.last:
            raise NotFound(f"Tenant {tenant!r} does not exist.", code=Code.TENANT_NOT_FOUND)
        return self.last[tenant]

    async def latest_many(self, tenants: Sequence[str]) -> dict[str, int]:
        self.calls.append(("latest_many", list(tenants)))
        return {t: self.last[t] for t in tenants if t in self.last}

    async def after(self, tenant: str, after: int, *, upto: int, limit: int) -> list[Notification]:
        self.calls.append(("after", (tenant, after, upto, limit)))
        held = sorted(s for s in self.rows[tenant] if after < s <= upto)
        return [self.rows[tenant][s] for s in held[:limit]]


def principal(tenant: str = T1, user: str = "ana") -> Principal:
    return Principal(tenant, user, frozenset(), datetime.now(UTC) + timedelta(hours=1))


def hub_over(seqs: FakeSeqs, *, batch: int = 500) -> Hub:
    return Hub(seqs, Metrics(), buffer=100, max_per_user=5, max_per_tenant=10, batch=batch)


def taken(sub: Subscriber) -> list[int]:
    out = [seq for seq, _ in sub.buffer]
    sub.buffer.clear()
    return out


def test_the_fake_is_a_seq_source() -> None:
    assert isinstance(FakeSeqs(), SeqSource)


async def test_a_stream_opens_at_the_latest_committed_seq() -> None:
    seqs = FakeSeqs(T1)
    seqs.commit(T1, 3)
    hub = hub_over(seqs)
    sub = await hub.subscribe(principal())
    assert hub.last_seen(T1) == 3 and taken(sub) == []
    with pytest.raises(NotFound):
        await hub.subscribe(principal("nobody"))


async def test_a_gap_is_filled_in_order_before_the_arrival() -> None:
    seqs = FakeSeqs(T1)
    hub = hub_over(seqs)
    sub = await hub.subscribe(principal())
    rows = seqs.commit(T1, 5)  # the broker lost 1..4
    await hub.deliver(rows[4])
    assert taken(sub) == [1, 2, 3, 4, 5]
    assert seqs.calls[-1] == ("after", (T1, 0, 4, 500))  # the fill stops before the arrival


async def test_arrivals_already_offered_are_dropped() -> None:
    seqs = FakeSeqs(T1)
    hub = hub_over(seqs)
    sub = await hub.subscribe(principal())
    rows = seqs.commit(T1, 3)
    await hub.deliver(rows[2])  # fills 1, 2
    for row in rows:  # late and repeated arrivals, local and from the broker
        await hub.deliver(row)
        await hub.deliver_raw(T1, row.seq, row.encode())
        await hub.deliver_raw(T1, row.seq, b"")
    await hub.catch_up()
    assert taken(sub) == [1, 2, 3]
    marker = seqs.commit(T1)[0]
    await hub.deliver(marker)
    assert taken(sub) == [4]


async def test_catch_up_pages_every_tenant_in_seq_order() -> None:
    seqs = FakeSeqs(T1, T2)
    hub = hub_over(seqs, batch=2)
    one, two = await hub.subscribe(principal(T1)), await hub.subscribe(principal(T2))
    seqs.commit(T1, 5)
    seqs.commit(T2, 1)
    seqs.calls.clear()
    await hub.catch_up()
    assert taken(one) == [1, 2, 3, 4, 5] and taken(two) == [1]
    assert seqs.calls == [
        ("latest_many", [T1, T2]),
        ("after", (T1, 0, 5, 2)),
        ("after", (T1, 2, 5, 2)),
        ("after", (T1, 4, 5, 2)),
        ("after", (T2, 0, 1, 2)),
    ]
    await hub.catch_up(T1)  # nothing new: nothing offered again
    assert taken(one) == []


async def test_catch_up_asks_for_tenants_in_batches() -> None:
    names = [f"t{i}" for i in range(5)]
    seqs = FakeSeqs(*names)
    hub = hub_over(seqs, batch=2)
    for name in names:
        await hub.subscribe(principal(name))
    seqs.calls.clear()
    await hub.catch_up()
    asked = [arg for call, arg in seqs.calls if call == "latest_many"]
    assert asked == [names[0:2], names[2:4], names[4:5]]


async def test_a_gap_the_source_no_longer_holds_ends_the_streams() -> None:
    seqs = FakeSeqs(T1)
    hub = hub_over(seqs)
    sub = await hub.subscribe(principal())
    rows = seqs.commit(T1, 4)
    seqs.prune(T1, 2)  # 1 and 2 are gone: no stream may skip them silently
    await hub.deliver(rows[3])
    assert sub.reason == "gap"
    assert hub.last_seen(T1) == 4
    seqs.prune(T1, 4)
    seqs.commit(T1)  # 5: the hub is past the hole and carries on gap-free
    later = await hub.subscribe(principal(user="bo"))
    await hub.catch_up()
    assert taken(later) == [5]
