"""Load, faults and the checker for the cluster tests and ``benchmarks/faults.py``.

- :func:`run_load`: N streams (:class:`~tests.cluster.sse_client.SseStream`) through the
  cluster's front, M notifications from P concurrent publishers round-robin over the instances
  (each retried with its Idempotency-Key until answered 2xx), optional faults at set points,
  injected one after the other.
- The checker compares every stream's ids and titles with the store: lost, duplicated, out of
  order, not visible to it; every 2xx publish stored exactly once; and how long streams stayed
  short of a notification around each fault. In a run without faults it also demands zero
  reconnects, zero HTTP errors, zero transport errors and a bounded delivery lag
  (:data:`CALM_LAG`): a stream that silently reconnected and replayed would pass the rest.

The processes are in :mod:`tests.cluster.processes`. Nothing here mocks tidings, Redis,
PostgreSQL or nginx.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.cluster.processes import (
    ROOT,
    Cluster,
    Instance,
    Nginx,
    TenantKey,
    cluster_of,
    token,
)
from tests.cluster.sse_client import SseStream
from tests.services import run_sync

__all__ = [
    "ROOT",
    "Ack",
    "Cluster",
    "Fault",
    "Instance",
    "Nginx",
    "PublishLog",
    "Result",
    "SseStream",
    "TenantKey",
    "cluster_of",
    "make_streams",
    "publish_all",
    "run_load",
    "store_rows",
    "token",
]

# A run without faults: delivery lag (2xx → arrival) p99 and max bounds, in seconds. Measured
# p99 0.1-0.6 s on a loaded 2-core machine (docs/reliability.md); a few times that.
CALM_LAG = {"p99": 2.0, "max": 5.0}

# -- publishing ----------------------------------------------------------------------------------


@dataclass
class Ack:
    tenant: str
    key: str
    seq: int
    title: str
    at: float
    url: str = ""


@dataclass
class PublishLog:
    acks: list[Ack] = field(default_factory=list)
    attempts: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    unclear: list[str] = field(default_factory=list)

    def note(self, what: str) -> None:
        self.statuses[what] = self.statuses.get(what, 0) + 1


AUDIENCES: list[dict[str, list[str]] | None] = [
    *([None] * 14),
    {"roles": ["staff"]},
    {"roles": ["staff"]},
    {"roles": ["owner"]},
    {"users": ["u1", "u2", "u3"]},
    {"users": ["u7"], "roles": ["owner"]},
    {"users": ["u4", "u40", "u99"]},
]


async def publish_all(
    urls: list[str],
    tenants: list[TenantKey],
    total: int,
    *,
    publishers: int = 10,
    log: PublishLog,
    progress: Callable[[int], None] | None = None,
    pace: float = 0.0,
    big: bool = False,
) -> None:
    """``total`` notifications, round-robin over ``urls`` and ``tenants``; each one retried with
    its Idempotency-Key (on the next instance) until it is answered 2xx."""
    counter = iter(range(total))
    rng = random.Random(7)
    audiences = [rng.choice(AUDIENCES) for _ in range(total)]

    async def worker(w: int, client: httpx.AsyncClient) -> None:
        for n in counter:
            tenant = tenants[n % len(tenants)]
            key = f"load-{n}"
            title = f"{tenant.id} #{n}"
            text = "x" * (1900 if big else 40)
            body: dict[str, Any] = {"type": "booking_created", "title": title, "body": text}
            if big:  # ~8 KB per notification
                body["data"] = {"blob": "y" * 6000}
            if audiences[n] is not None:
                body["audience"] = audiences[n]
            attempt = 0
            while True:
                url = urls[(n + attempt) % len(urls)]
                attempt += 1
                log.attempts += 1
                try:
                    r = await client.post(
                        f"{url}/v1/notifications",
                        json=body,
                        headers={"Authorization": f"Bearer {tenant.key}", "Idempotency-Key": key},
                    )
                except httpx.HTTPError as error:
                    log.note(type(error).__name__)
                    await asyncio.sleep(0.1 * min(attempt, 10))
                    continue
                log.note(str(r.status_code))
                if r.status_code in (200, 201):
                    ack = Ack(tenant.id, key, r.json()["id"], title, time.monotonic(), url)
                    log.acks.append(ack)
                    break
                if r.status_code == 503:
                    try:
                        problem = r.json()
                    except ValueError:
                        problem = {}
                    if problem.get("code") not in ("store_unavailable", "shutting_down") or (
                        "retry-after" not in r.headers
                    ):
                        log.unclear.append(r.text[:300])
                elif r.status_code not in (502, 504):
                    log.unclear.append(f"{r.status_code} {r.text[:300]}")
                await asyncio.sleep(0.1 * min(attempt, 10))
            if progress is not None:
                progress(len(log.acks))
            if pace:
                await asyncio.sleep(pace)

    limits = httpx.Limits(max_connections=publishers * 2, max_keepalive_connections=publishers)
    async with httpx.AsyncClient(timeout=httpx.Timeout(15), limits=limits) as client:
        await asyncio.gather(*(worker(w, client) for w in range(publishers)))


# -- faults and the run --------------------------------------------------------------------------


@dataclass
class Fault:
    """``action`` runs (in a thread) once ``at`` of the notifications are acknowledged."""

    name: str
    at: float
    action: Callable[[], None]
    started: float = 0.0
    restored: float = 0.0
    recovery: float = 0.0
    worst: str = ""


@dataclass
class Result:
    notifications: int
    streams: int
    faults: list[Fault]
    lost: int
    duplicated: int
    out_of_order: int
    resets: int
    wrong_content: int
    publish_doubled: int
    publish_missing: int
    whole_after: float
    lag: dict[str, float]
    byes: int
    reconnects: int
    http_errors: dict[int, int]
    transport_errors: int
    elapsed: float
    log: PublishLog
    problems: list[str]

    def figures(self) -> dict[str, Any]:
        return {
            "notifications": self.notifications,
            "streams": self.streams,
            "faults": [
                {
                    "fault": f.name,
                    "recovery_s": round(f.recovery, 2),
                    "outage_s": round(f.restored - f.started, 2),
                    "worst": f.worst,
                }
                for f in self.faults
            ],
            "lost": self.lost,
            "duplicated": self.duplicated,
            "out_of_order": self.out_of_order,
            "resets": self.resets,
            "byes": self.byes,
            "reconnects": self.reconnects,
            "stream_http_errors": self.http_errors,
            "stream_transport_errors": self.transport_errors,
            "publish_doubled": self.publish_doubled,
            "publish_missing": self.publish_missing,
            "whole_after_last_publish_s": round(self.whole_after, 2),
            "delivery_lag_s": self.lag,
            "elapsed_s": round(self.elapsed, 1),
            "publish_attempts": self.log.attempts,
            "publish_statuses": self.log.statuses,
        }

    def assert_perfect(self) -> None:
        assert self.problems == [], self.problems[:20]
        assert self.lost == 0 and self.duplicated == 0 and self.out_of_order == 0
        assert self.publish_doubled == 0 and self.publish_missing == 0


def make_streams(front: str, tenants: list[str], count: int) -> list[SseStream]:
    host, port = front.removeprefix("http://").split(":")
    streams = []
    for n in range(count):
        tenant = tenants[n % len(tenants)]
        user = f"u{n // len(tenants)}"
        index = n // len(tenants)
        roles = ["staff"] if index % 2 == 0 else []
        if index % 10 == 0:
            roles.append("owner")
        streams.append(
            SseStream(host, int(port), tenant, user, frozenset(roles), token(tenant, user, roles))
        )
    return streams


async def run_load(
    cluster: Cluster,
    *,
    streams: int = 200,
    notifications: int = 2000,
    publishers: int = 10,
    faults: list[Fault] | None = None,
    settle: float = 60.0,
    pace: float = 0.0,
) -> Result:
    faults = faults or []
    tenants = [cluster.tenant("alpha"), cluster.tenant("beta")]
    clients = make_streams(cluster.front, [t.id for t in tenants], streams)
    stop = asyncio.Event()
    tasks = [asyncio.create_task(s.run(stop)) for s in clients]
    problems: list[str] = []
    async with asyncio.timeout(30):
        while any(s.ready_at == 0 for s in clients):
            await asyncio.sleep(0.05)
    log = PublishLog()
    pending = sorted(faults, key=lambda f: f.at)
    fault_tasks: list[asyncio.Task[None]] = []

    one_at_a_time = asyncio.Lock()

    async def inject(fault: Fault) -> None:
        async with one_at_a_time:  # a fault begins once the one before it is repaired
            fault.started = time.monotonic()
            await asyncio.to_thread(fault.action)
            fault.restored = time.monotonic()

    def progress(done: int) -> None:
        while pending and done >= pending[0].at * notifications:
            fault_tasks.append(asyncio.create_task(inject(pending.pop(0))))

    started = time.monotonic()
    urls = [i.url for i in cluster.instances]
    await publish_all(
        urls, tenants, notifications, publishers=publishers, log=log, progress=progress, pace=pace
    )
    for task in fault_tasks:
        await asyncio.wait_for(task, 120)
    published_at = time.monotonic()
    expected = await asyncio.to_thread(store_rows, cluster, [t.id for t in tenants])
    wants = {id(s): _visible(expected[s.tenant], s) for s in clients}
    deadline = time.monotonic() + settle
    while time.monotonic() < deadline:
        if all(set(wants[id(s)]) <= s.arrivals.keys() for s in clients):
            break
        await asyncio.sleep(0.1)
    whole_at = time.monotonic()
    stop.set()
    for task in tasks:
        task.cancel()
    for outcome in await asyncio.gather(*tasks, return_exceptions=True):
        if isinstance(outcome, Exception):
            problems.append(f"stream client crashed: {outcome!r}")

    lost = duplicated = wrong = resets = disorder = 0
    for s in clients:
        want = wants[id(s)]
        got = s.order
        missing = set(want) - s.arrivals.keys()
        extra = s.arrivals.keys() - set(want)
        lost += len(missing)
        duplicated += s.duplicates
        resets += s.resets
        disorder += s.out_of_order
        if extra:
            problems.append(f"{s.tenant}/{s.user} got ids not visible to it: {sorted(extra)[:5]}")
        if got != sorted(got):
            problems.append(f"{s.tenant}/{s.user} out of order")
        titles = expected[s.tenant]
        wrong += sum(1 for seq, title in s.titles.items() if titles.get(seq, (None,))[0] != title)
        if s.fatal:
            problems.append(f"{s.tenant}/{s.user}: {s.fatal[:3]}")
        if missing:
            problems.append(f"{s.tenant}/{s.user} missing {len(missing)}: {sorted(missing)[:5]}")
    for inst in cluster.instances:
        errors = [line for line in inst.tail(2_000_000).splitlines() if " ERROR " in line]
        if errors:
            problems.append(f"{inst.name} logged {len(errors)} errors: {errors[:3]}")
    for fault in faults:
        fault.recovery = _recovery(fault, clients, wants, log)
    doubled, missing_acks = _publish_integrity(log, expected)
    if log.unclear:
        problems.append(f"unclear publish errors: {log.unclear[:3]}")
    if wrong:
        problems.append(f"{wrong} notifications with content that differs from the store")
    if resets:
        problems.append(f"{resets} reset events")
    lag = _lag(clients, log)
    reconnects = sum(s.connects - 1 for s in clients)
    http_errors: dict[int, int] = {}
    for s in clients:
        for status, n in s.http_errors.items():
            http_errors[status] = http_errors.get(status, 0) + n
    transport = [f"{s.tenant}/{s.user}: {e}" for s in clients for e in s.errors]
    if not faults:  # nothing was broken, so nothing may have gone wrong on the way either
        if reconnects:
            problems.append(f"{reconnects} reconnects in a run without faults")
        if http_errors:
            problems.append(f"HTTP errors on streams in a run without faults: {http_errors}")
        if transport:
            problems.append(f"{len(transport)} stream transport errors: {transport[:3]}")
        for name, bound in CALM_LAG.items():
            if lag.get(name, 0.0) > bound:
                problems.append(f"delivery lag {name} {lag[name]} s > {bound} s: {lag}")
    return Result(
        notifications=notifications,
        streams=streams,
        faults=faults,
        lost=lost,
        duplicated=duplicated,
        out_of_order=disorder,
        resets=resets,
        wrong_content=wrong,
        publish_doubled=doubled,
        publish_missing=missing_acks,
        whole_after=max(0.0, whole_at - published_at),
        lag=lag,
        byes=sum(s.byes for s in clients),
        reconnects=reconnects,
        http_errors=http_errors,
        transport_errors=len(transport),
        elapsed=time.monotonic() - started,
        log=log,
        problems=problems,
    )


Rows = dict[int, tuple[str, dict[str, list[str]] | None, str | None]]


def store_rows(cluster: Cluster, tenants: list[str]) -> dict[str, Rows]:
    """Every stored notification of ``tenants``: seq → (title, audience, idempotency key)."""
    import asyncpg

    async def read() -> dict[str, Rows]:
        conn = await asyncpg.connect(cluster.pg.broker_url(cluster.database), timeout=10)
        try:
            out: dict[str, Rows] = {}
            for tenant in tenants:
                rows = await conn.fetch(
                    "SELECT seq, title, audience::text AS audience, idempotency_key "
                    "FROM notifications WHERE tenant_id = $1 ORDER BY seq",
                    tenant,
                )
                out[tenant] = {
                    int(r["seq"]): (
                        r["title"],
                        json.loads(r["audience"]) if r["audience"] else None,
                        r["idempotency_key"],
                    )
                    for r in rows
                }
            return out
        finally:
            await conn.close()

    return run_sync(read)


def _visible(rows: Rows, s: SseStream) -> list[int]:
    out = []
    for seq, (_title, audience, _key) in rows.items():
        if seq > s.baseline and (
            audience is None
            or s.user in audience.get("users", [])
            or not s.roles.isdisjoint(audience.get("roles", []))
        ):
            out.append(seq)
    return out


def _recovery(
    fault: Fault, clients: list[SseStream], wants: dict[int, list[int]], log: PublishLog
) -> float:
    """How long a stream stayed short of a notification around the fault: the worst delay,
    over every stream, between a notification's 2xx and its arrival on that stream, for the
    notifications acknowledged from 1 s before the fault until 5 s after it was restored."""
    start, end = fault.started - 1.0, fault.restored + 5.0
    acked = {(a.tenant, a.seq): a.at for a in log.acks if start <= a.at <= end}
    worst = 0.0
    for s in clients:
        for seq in wants[id(s)]:
            at = acked.get((s.tenant, seq))
            if at is not None and s.arrivals.get(seq, float("inf")) - at > worst:
                worst = s.arrivals.get(seq, float("inf")) - at
                opened = ", ".join(f"{t - fault.started:+.2f}s" for t in s.connected_at[1:])
                fault.worst = (
                    f"{s.tenant}/{s.user} #{seq} acked {at - fault.started:+.2f}s after the "
                    f"fault began, arrived {worst:.2f}s later; stream reopened at [{opened}]"
                )
    return worst


def _lag(clients: list[SseStream], log: PublishLog) -> dict[str, float]:
    """Delay from a publish's 2xx to the arrival on a stream, over all (stream, notification)."""
    acked = {(a.tenant, a.seq): a.at for a in log.acks}
    lags = sorted(
        max(0.0, at - acked[(s.tenant, seq)])
        for s in clients
        for seq, at in s.arrivals.items()
        if (s.tenant, seq) in acked
    )
    if not lags:
        return {}

    def pick(q: float) -> float:
        return round(lags[min(len(lags) - 1, int(q * len(lags)))], 3)

    return {"p50": pick(0.5), "p99": pick(0.99), "max": round(lags[-1], 3)}


def _publish_integrity(log: PublishLog, expected: dict[str, Rows]) -> tuple[int, int]:
    """(notifications stored twice for one Idempotency-Key, 2xx answers not in the store)."""
    doubled = 0
    missing = 0
    for tenant, rows in expected.items():
        keys = [key for (_t, _a, key) in rows.values()]
        doubled += len(keys) - len(set(keys))
        seqs = sorted(rows)
        if seqs != list(range(1, len(seqs) + 1)):
            doubled += 1  # a hole in the per-tenant seq
        by_seq = {seq: key for seq, (_t, _a, key) in rows.items()}
        for ack in log.acks:
            if ack.tenant == tenant and by_seq.get(ack.seq) != ack.key:
                missing += 1
    return doubled, missing
