"""The hub's per-role index: a role-targeted notification is offered to exactly the open streams
its audience admits (users named, or members of a role named), through streams opening and
closing in any order; the index holds exactly the open streams per role and no empty entry.

A real hub and store, subscribers without an edge (what they were offered stays in their
buffer); hypothesis drives the opens, closes and notifications.
"""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st

from tidings.delivery.hub import Hub, Subscriber
from tidings.domain.notifications import Audience, NewNotification, utcnow
from tidings.domain.principals import Principal
from tidings.metrics import Metrics
from tidings.store import Store
from tidings.store import notifications as nq
from tidings.store import tenants as tq

USERS = ["ann", "bob", "cy"]
ROLES = ["staff", "owner", "crew"]
_tenants = itertools.count(1)

names = st.frozensets(st.sampled_from(USERS), max_size=2)
roles = st.frozensets(st.sampled_from(ROLES), max_size=2)
steps = st.lists(
    st.one_of(
        st.tuples(st.just("open"), st.sampled_from(USERS), roles),
        st.tuples(st.just("close"), st.integers(0, 30)),
        st.tuples(st.just("send"), names, roles),
    ),
    max_size=30,
)


async def _run(store: Store, program: list[tuple[Any, ...]]) -> None:
    tenant = f"t{next(_tenants)}"
    async with store.write() as conn:
        await tq.create_tenant(conn, tenant, tenant, now=utcnow())
    hub = Hub(store, Metrics(), buffer=1000, max_per_user=100, max_per_tenant=1000)
    expires = datetime.now(UTC) + timedelta(hours=1)
    open_: list[Subscriber] = []
    expected: dict[Subscriber, list[int]] = {}
    for step in program:
        if step[0] == "open":
            sub = await hub.subscribe(Principal(tenant, step[1], step[2], expires))
            open_.append(sub)
            expected[sub] = []
        elif step[0] == "close":
            if open_:
                hub.unsubscribe(open_.pop(step[1] % len(open_)))
        else:
            users, wanted = step[1], step[2]
            audience = (
                Audience(users=tuple(users), roles=tuple(wanted)) if users or wanted else None
            )
            item = NewNotification(type="system", title="t", audience=audience)
            async with store.write() as conn:
                stored, _ = await nq.insert(conn, tenant, item, now=utcnow())
            await hub.deliver(stored)
            for sub in open_:
                if audience is None or audience.admits(sub.user, sub.roles):
                    expected[sub].append(stored.seq)
        state = hub.tenant_state(tenant)
        if state is not None:
            index = {role: set(subs) for role, subs in state.by_role.items()}
            truth = {r: {s for s in open_ if r in s.roles} for r in ROLES}
            assert index == {r: subs for r, subs in truth.items() if subs}
            assert all(len(subs) == len(set(subs)) for subs in state.by_role.values())
    for sub, seqs in expected.items():
        assert [seq for seq, _ in sub.buffer] == seqs, (sub.user, sorted(sub.roles))
    for sub in open_:
        hub.unsubscribe(sub)


def test_each_notification_reaches_exactly_the_open_streams_it_admits(
    loop_store: tuple[asyncio.AbstractEventLoop, Store],
) -> None:
    loop, store = loop_store

    @hyp_settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(program=steps)
    def check(program: list[tuple[Any, ...]]) -> None:
        loop.run_until_complete(asyncio.wait_for(_run(store, program), 30))

    check()
