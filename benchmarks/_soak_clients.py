"""The soak's actors: stream clients that come and go, and a steady publisher.

A :class:`StreamClient` is one browser tab of a user of tenant ``soak``. It mints a short-lived
stream token (``POST /v1/tokens``), opens ``GET /v1/stream`` (a raw HTTP/1.1 socket, like
``_clients.py``), stays a random while, leaves, comes back with ``Last-Event-ID`` after a random
pause, and now and then marks what it has read (``POST /v1/feed/read``). When its token expires
(``event: expired``) it mints a new one and resumes; when the server says ``bye`` or the
connection breaks (restart, kill -9) it reconnects after the retry hint. Some clients leave for
good; the driver starts fresh ones in their place.

Every notification is for the whole tenant, so a client must see, exactly once and in order,
every seq from its first ``ready`` id + 1 up to the highest it saw (a hole is a loss), and a
client still there at the end must reach the last published seq. Delivery latency is receipt
wall clock minus the publisher's ``data.t``, counted only for notifications published while the
client was connected (what it replays after a pause is late by design, not slow).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from benchmarks._clients import _Dechunker


@dataclass
class Totals:
    """Counters over all clients (the driver reports them)."""

    connects: int = 0
    leaves: int = 0
    expiries: int = 0
    renewals: int = 0
    byes: int = 0
    breaks: int = 0
    resets: int = 0
    reads: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    latencies: list[tuple[float, float]] = field(default_factory=list)  # (receipt, ms)

    def error(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1


@dataclass(frozen=True)
class Behaviour:
    token_ttl: int = 40  # s: tokens expire mid-stream
    stay_mean: float = 30.0  # s connected before leaving, exponential
    away_mean: float = 3.0  # s away before coming back
    quit_chance: float = 0.2  # a leave is for good
    read_chance: float = 0.3  # per stay: mark read once


class StreamClient:
    def __init__(
        self,
        name: str,
        user: str,
        host: str,
        port: int,
        api: httpx.AsyncClient,
        totals: Totals,
        behaviour: Behaviour,
        rng: random.Random,
    ) -> None:
        self.name = name
        self.user = user
        self.host = host
        self.port = port
        self.api = api
        self.totals = totals
        self.how = behaviour
        self.rng = rng
        self.token = ""
        self.start: int | None = None  # the id of its first `ready`
        self.seen: set[int] = set()
        self.max_seen = 0
        self.last_id: int | None = None
        self.dupes = 0
        self.disorder = 0
        self.connected = False
        self.quit = False

    # -- the record ----------------------------------------------------------------------------

    def missing(self, until: int | None = None) -> int:
        """Seqs in ``(start, until or max_seen]`` it never saw."""
        if self.start is None:
            return 0
        top = self.max_seen if until is None else until
        return sum(1 for n in range(self.start + 1, top + 1) if n not in self.seen)

    # -- the life ------------------------------------------------------------------------------

    async def renew(self) -> None:
        for attempt in range(60):
            try:
                r = await self.api.post(
                    "/v1/tokens", json={"user": self.user, "ttl": self.how.token_ttl}
                )
                if r.status_code == 201:
                    self.token = r.json()["token"]
                    self.totals.renewals += 1
                    return
                self.totals.error(f"token {r.status_code}")
            except httpx.HTTPError as error:
                self.totals.error(f"token {type(error).__name__}")
            await asyncio.sleep(min(0.2 * (attempt + 1), 2.0))
        raise RuntimeError(f"{self.name}: could not mint a token")

    async def live(self, stop: asyncio.Event) -> None:
        """Connect, stay, leave, come back … until ``stop`` or it quits for good."""
        await self.renew()
        while not stop.is_set():
            stay = self.rng.expovariate(1 / self.how.stay_mean)
            outcome = await self._session(stay, stop)
            if stop.is_set():
                return
            if outcome == "expired":
                self.totals.expiries += 1
                await self.renew()
                continue
            if outcome == "left":
                self.totals.leaves += 1
                if self.rng.random() < self.how.quit_chance:
                    self.quit = True
                    return
                with contextlib.suppress(TimeoutError):
                    away = min(self.rng.expovariate(1 / self.how.away_mean), 20.0)
                    await asyncio.wait_for(stop.wait(), away)
                continue
            if outcome == "unauthorized":
                await self.renew()
                continue
            await asyncio.sleep(0.5)  # bye, a broken connection, 503 while restarting

    async def _session(self, stay: float, stop: asyncio.Event) -> str:
        writer: asyncio.StreamWriter | None = None
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port), 10
            )
            resume = b"" if self.last_id is None else b"Last-Event-ID: %d\r\n" % self.last_id
            writer.write(
                b"GET /v1/stream HTTP/1.1\r\nHost: %s:%d\r\nAuthorization: Bearer %s\r\n"
                b"Accept: text/event-stream\r\n%s\r\n"
                % (self.host.encode(), self.port, self.token.encode(), resume)
            )
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
            status = int(head.split(b" ", 2)[1])
            if status == 401:
                return "unauthorized"
            if status != 200:
                self.totals.error(f"stream {status}")
                return "error"
            dechunk = _Dechunker() if b"transfer-encoding: chunked" in head.lower() else None
            leave_at = time.monotonic() + stay
            read_at = time.monotonic() + self.rng.uniform(0, stay) if self._reads() else None
            buf = b""
            opened_at = 0.0
            while True:
                if stop.is_set() or time.monotonic() >= leave_at:
                    return "left"
                if read_at is not None and time.monotonic() >= read_at and self.max_seen:
                    read_at = None
                    asyncio.create_task(self._mark_read(self.max_seen))  # noqa: RUF006
                wait = min(leave_at, read_at or leave_at) - time.monotonic()
                try:
                    data = await asyncio.wait_for(reader.read(65536), max(0.01, wait))
                except TimeoutError:
                    continue
                if not data:
                    self.totals.breaks += 1
                    return "eof"
                now = time.time()
                if dechunk is not None:
                    data = dechunk.feed(data)
                buf += data
                *blocks, buf = buf.split(b"\n\n")
                for block in blocks:
                    event = self._event(block, now, opened_at)
                    if event == "ready":
                        opened_at = now
                        self.connected = True
                        self.totals.connects += 1
                    elif event in ("expired", "bye"):
                        return event
                if dechunk is not None and dechunk.finished:
                    self.totals.breaks += 1
                    return "eof"
        except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as error:
            self.totals.error(f"stream {type(error).__name__}")
            self.totals.breaks += 1
            return "error"
        finally:
            self.connected = False
            if writer is not None:
                writer.close()

    def _reads(self) -> bool:
        return self.rng.random() < self.how.read_chance

    async def _mark_read(self, up_to: int) -> None:
        try:
            r = await self.api.post(
                "/v1/feed/read",
                json={"all": True, "up_to": up_to},
                headers={"Authorization": f"Bearer {self.token}"},
            )
        except httpx.HTTPError as error:
            self.totals.error(f"read {type(error).__name__}")
            return
        if r.status_code == 200:
            self.totals.reads += 1
        elif r.status_code != 401:  # the token may expire on the way
            self.totals.error(f"read {r.status_code}")

    def _event(self, block: bytes, now: float, opened_at: float) -> str | None:
        name = b"message"
        ident: int | None = None
        data = b""
        for line in block.split(b"\n"):
            if line.startswith(b"data: "):
                data = line[6:]
            elif line.startswith(b"id: "):
                ident = int(line[4:])
            elif line.startswith(b"event: "):
                name = line[7:]
        if name in (b"ready", b"reset"):
            if name == b"reset":
                self.totals.resets += 1
            if ident is not None:
                if self.start is None:
                    self.start = ident
                self.last_id = ident
            return "ready"
        if name == b"notification" and ident is not None:
            self.last_id = ident
            if ident in self.seen:
                self.dupes += 1
                return None
            if ident < self.max_seen:
                self.disorder += 1
            self.max_seen = max(self.max_seen, ident)
            self.seen.add(ident)
            sent: Any = orjson.loads(data).get("data", {}).get("t")
            if isinstance(sent, float) and opened_at and sent >= opened_at:
                self.totals.latencies.append((now, (now - sent) * 1000.0))
            return None
        if name == b"expired":
            return "expired"
        if name == b"bye":
            self.totals.byes += 1
            return "bye"
        return None


class Publisher:
    """``rate`` notifications a second, each retried with its Idempotency-Key until 2xx."""

    def __init__(self, api: httpx.AsyncClient, rate: float, totals: Totals) -> None:
        self.api = api
        self.rate = rate
        self.totals = totals
        self.acked: dict[int, str] = {}  # seq -> idempotency key
        self.attempts = 0

    async def run(self, stop: asyncio.Event) -> None:
        n = 0
        began = time.monotonic()
        while not stop.is_set():
            await self.one(n)
            n += 1
            ahead = began + n / self.rate - time.monotonic()
            if ahead > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), ahead)

    async def one(self, n: int) -> None:
        key = f"soak-{n}"
        body = {  # the same body on every retry: the Idempotency-Key promises it
            "type": "booking_created",
            "title": f"soak #{n}",
            "body": "a notification of the soak",
            "data": {"t": time.time(), "n": n},
        }
        attempt = 0
        while True:
            attempt += 1
            self.attempts += 1
            try:
                r = await self.api.post(
                    "/v1/notifications", json=body, headers={"Idempotency-Key": key}
                )
            except httpx.HTTPError as error:
                self.totals.error(f"publish {type(error).__name__}")
            else:
                if r.status_code in (200, 201):
                    self.acked[r.json()["id"]] = key
                    return
                if r.status_code not in (502, 503, 504):
                    self.totals.error(f"publish {r.status_code}")
            await asyncio.sleep(min(0.1 * attempt, 1.0))
