"""Cheap SSE stream clients for the load generator: raw asyncio sockets, one process each.

A client process opens its share of the streams with a hand-written HTTP/1.1 ``GET
/v1/stream`` (chunked decoding and SSE line parsing by hand, no HTTP library), reports once all
are open, then records every notification frame it receives: the id per stream, to count
missing and duplicated ids, and the delivery latency, receipt wall clock minus the publish
timestamp the publisher put in ``data.t`` (same machine, same clock).

A stream the server ends (``event: bye``, EOF, a reset socket) reconnects with
``Last-Event-ID`` like a browser would; reconnects are counted, and what the store replays
counts as delivered (late, with its latency).

With ``ClientConfig.anchor_channel`` set, the same process speaks to the Nchan anchor instead
(``benchmarks/anchor.py``): ``GET /sub/CHANNEL`` with ``Accept: text/event-stream`` and no
token; a stream is open once the ``200`` head arrives, and a notification is any ``data:``
event whose JSON carries ``data.i`` (the publisher's sequence number, counted like an id) and
``data.t`` (its publish time). Nchan's own ids (``TIME:TAG``) are only sent back as
``Last-Event-ID`` on a reconnect.

Protocol with the parent over a ``multiprocessing`` pipe:

    child  -> ("connected", ConnectReport)
    parent -> ("expect", ids, deadline)      # ids published; deadline as time.time()
    child  -> ("done", DeliveryReport)
    parent -> ("reopen",)                    # optional: drop every stream at once, reopen
    child  -> ("reopened", ReopenReport)     # all reopened (with Last-Event-ID), in seconds
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import time
from array import array
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import orjson

READ_SIZE = 65536


def raise_nofile() -> None:
    """Raise the soft open-files limit to the hard limit (streams are file descriptors)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


@dataclass(frozen=True)
class ClientConfig:
    host: str
    port: int
    tokens: list[str]
    concurrency: int = 100  # connection attempts in flight at once
    connect_timeout: float = 60.0  # one attempt: TCP connect to the `ready` event
    connect_deadline: float = 600.0  # all streams of this process
    idle_timeout: float = 120.0  # no byte at all for this long: the stream is dead
    max_reconnects: int = 20
    anchor_channel: str | None = None  # speak to the Nchan anchor: GET /sub/<channel>


class _HttpError(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"http {status}")
        self.status = status


class _Dechunker:
    """Undo ``Transfer-Encoding: chunked`` incrementally."""

    __slots__ = ("finished", "left", "raw")

    def __init__(self) -> None:
        self.raw = b""
        self.left = 0  # bytes of the current chunk still to come, then its CRLF
        self.finished = False

    def feed(self, data: bytes) -> bytes:
        if self.finished:  # the last chunk was seen; what follows is the (empty) trailer
            return b""
        raw = self.raw + data if self.raw else data
        out: list[bytes] = []
        pos = 0
        while pos < len(raw):
            if self.left > 0:
                take = min(self.left, len(raw) - pos)
                out.append(raw[pos : pos + take])
                pos += take
                self.left -= take
                if self.left == 0:
                    self.left = -2  # the CRLF after the chunk data
                continue
            if self.left < 0:
                skip = min(-self.left, len(raw) - pos)
                pos += skip
                self.left += skip
                continue
            end = raw.find(b"\r\n", pos)
            if end < 0:
                break
            size = int(raw[pos:end].split(b";", 1)[0], 16)
            pos = end + 2
            if size == 0:
                self.finished = True
                break
            self.left = size
        self.raw = raw[pos:] if pos < len(raw) and not self.finished else b""
        return b"".join(out)


class _Stream:
    """One stream's state across reconnects."""

    __slots__ = (
        "connect_s",
        "disorder",
        "dupes",
        "last_id",
        "last_raw_id",
        "max_seen",
        "opened",
        "reconnects",
        "reopening",
        "resets",
        "seen",
        "token",
    )

    def __init__(self, token: str) -> None:
        self.token = token
        self.last_id: int | None = None
        self.last_raw_id: bytes | None = None  # the anchor's own event id (not a number)
        self.seen: set[int] = set()
        self.max_seen = 0
        self.dupes = 0
        self.disorder = 0
        self.reconnects = 0
        self.resets = 0
        self.connect_s: float | None = None
        self.opened = False
        self.reopening = False  # dropped on purpose: reconnect at once, count when open


class _Process:
    """All streams of one client process."""

    def __init__(self, cfg: ClientConfig) -> None:
        self.cfg = cfg
        self.streams = [_Stream(t) for t in cfg.tokens]
        self.latencies_ms = array("d")
        self.first_receipt = 0.0
        self.last_receipt = 0.0
        self.data_bytes = 0  # bytes of the `data:` lines of notification frames received
        self.errors: Counter[str] = Counter()
        self.byes: Counter[str] = Counter()
        self.sem = asyncio.Semaphore(cfg.concurrency)
        self.closing = False
        self.settled = 0  # streams opened or given up
        self.all_settled = asyncio.Event()
        self.writers: set[asyncio.StreamWriter] = set()
        self.reopen_left = 0
        self.reopen_done = asyncio.Event()

    # -- one stream ----------------------------------------------------------------------------

    async def run(self, s: _Stream) -> None:
        attempts = 0
        try:
            while not self.closing:
                try:
                    outcome = await self._session(s)
                except _HttpError as error:
                    self.errors[str(error)] += 1
                    if error.status not in (429, 503) or attempts >= 5:
                        return
                    outcome = "retry"
                except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as error:
                    self.errors[type(error).__name__] += 1
                    outcome = "error"
                attempts += 1
                if self.closing:
                    return
                if not s.opened and attempts > 5:
                    return
                if s.opened:
                    s.reconnects += 1
                    if s.reconnects > self.cfg.max_reconnects:
                        self.errors["gave-up"] += 1
                        return
                if not s.reopening:
                    await asyncio.sleep(0.5 if outcome != "retry" else 1.0)
        finally:
            if not s.opened:
                self._settle()

    def _settle(self) -> None:
        self.settled += 1
        if self.settled >= len(self.streams):
            self.all_settled.set()

    async def _session(self, s: _Stream) -> str:
        """One connection: open it (holding a slot of the connect semaphore until `ready`),
        then read it until it ends."""
        cfg = self.cfg
        await self.sem.acquire()
        started = time.perf_counter()  # a connection's own time, not its wait for a slot
        held = True

        def release() -> None:
            nonlocal held
            if held:
                held = False
                self.sem.release()

        writer: asyncio.StreamWriter | None = None
        try:
            reader, opened = await asyncio.wait_for(
                asyncio.open_connection(cfg.host, cfg.port), cfg.connect_timeout
            )
            writer = opened
            self.writers.add(opened)
            return await self._talk(s, reader, opened, started, release)
        finally:
            release()
            if writer is not None:
                self.writers.discard(writer)
                writer.close()

    async def _talk(
        self,
        s: _Stream,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        started: float,
        release: Callable[[], None],
    ) -> str:
        cfg = self.cfg
        anchor = cfg.anchor_channel
        if anchor is None:
            resume = b"" if s.last_id is None else b"Last-Event-ID: %d\r\n" % s.last_id
            writer.write(
                b"GET /v1/stream HTTP/1.1\r\nHost: %s:%d\r\nAuthorization: Bearer %s\r\n"
                b"Accept: text/event-stream\r\n%s\r\n"
                % (cfg.host.encode(), cfg.port, s.token.encode(), resume)
            )
        else:
            resume = b"" if s.last_raw_id is None else b"Last-Event-ID: %s\r\n" % s.last_raw_id
            writer.write(
                b"GET /sub/%s HTTP/1.1\r\nHost: %s:%d\r\nAccept: text/event-stream\r\n%s\r\n"
                % (anchor.encode(), cfg.host.encode(), cfg.port, resume)
            )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), cfg.connect_timeout)
        status = int(head.split(b" ", 2)[1])
        if status != 200:
            raise _HttpError(status)
        dechunk = _Dechunker() if b"transfer-encoding: chunked" in head.lower() else None
        buf = b""
        ready = False
        timeout = cfg.connect_timeout
        if anchor is not None:  # Nchan has subscribed the stream once it sends the head
            ready = True
            timeout = cfg.idle_timeout
            self._opened(s, started)
            release()
        while True:
            data = await asyncio.wait_for(reader.read(READ_SIZE), timeout)
            if not data:
                return "eof"
            now = time.time()
            if dechunk is not None:
                data = dechunk.feed(data)
            buf = buf + data if buf else data
            if b"\n\n" not in buf:
                if dechunk is not None and dechunk.finished:
                    return "eof"
                continue
            *blocks, buf = buf.split(b"\n\n")
            for block in blocks:
                event = (
                    self._event(s, block, now) if anchor is None else self._anchor(s, block, now)
                )
                if event == "ready" and not ready:
                    ready = True
                    timeout = cfg.idle_timeout
                    self._opened(s, started)
                    release()  # this one is open: let the next connection attempt start
                elif event == "bye":
                    return "bye"
            if dechunk is not None and dechunk.finished:
                return "eof"

    def _opened(self, s: _Stream, started: float) -> None:
        if s.reopening:
            s.reopening = False
            self.reopen_left -= 1
            if self.reopen_left <= 0:
                self.reopen_done.set()
        if not s.opened:
            s.opened = True
            s.connect_s = time.perf_counter() - started
            self._settle()

    def _count(self, s: _Stream, ident: int, data: bytes, now: float) -> None:
        """One notification frame numbered ``ident`` (an id, or the anchor's sequence number)."""
        if ident in s.seen:
            s.dupes += 1
            return
        if ident < s.max_seen:
            s.disorder += 1
        else:
            s.max_seen = ident
        s.seen.add(ident)
        self.data_bytes += len(data)
        sent_at = orjson.loads(data).get("data", {}).get("t")
        if isinstance(sent_at, float):
            self.latencies_ms.append((now - sent_at) * 1000.0)
        if not self.first_receipt:
            self.first_receipt = now
        self.last_receipt = now

    def _anchor(self, s: _Stream, block: bytes, now: float) -> str | None:
        """One event from the Nchan anchor: ``id: TIME:TAG`` and ``data: {"data": {"i", "t"}}``;
        comments (``: hi``) are not events."""
        data = b""
        for line in block.split(b"\n"):
            if line.startswith(b"data: "):
                data = line[6:]
            elif line.startswith(b"id: "):
                s.last_raw_id = line[4:]
        if not data:
            return None
        seq = orjson.loads(data).get("data", {}).get("i")
        if not isinstance(seq, int):
            return None
        self._count(s, seq, data, now)
        return "notification"

    def _event(self, s: _Stream, block: bytes, now: float) -> str | None:
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
        if ident is not None:
            s.last_id = ident
        if name == b"notification" and ident is not None:
            self._count(s, ident, data, now)
            return "notification"
        if name in (b"ready", b"reset"):
            if name == b"reset":
                s.resets += 1
            return "ready"
        if name in (b"bye", b"expired"):
            reason = orjson.loads(data).get("reason", "?") if data else "?"
            self.byes[f"{name.decode()}:{reason}"] += 1
            return "bye"
        return None

    # -- the process ---------------------------------------------------------------------------

    def connect_report(self, seconds: float) -> dict[str, Any]:
        return {
            "opened": sum(1 for s in self.streams if s.opened),
            "failed": sum(1 for s in self.streams if not s.opened),
            "connect_s": [s.connect_s for s in self.streams if s.connect_s is not None],
            "errors": dict(self.errors),
            "seconds": seconds,
            "cpu_s": _cpu(),
        }

    def delivery_report(self, expected: list[int]) -> dict[str, Any]:
        want = set(expected)
        missing = sum(len(want - s.seen) for s in self.streams if s.opened)
        complete = sum(1 for s in self.streams if s.opened and want <= s.seen)
        return {
            "streams": sum(1 for s in self.streams if s.opened),
            "complete": complete,
            "received": sum(len(s.seen & want) for s in self.streams),
            "missing": missing,
            "duplicates": sum(s.dupes for s in self.streams),
            "out_of_order": sum(s.disorder for s in self.streams),
            "unexpected": sum(len(s.seen - want) for s in self.streams),
            "reconnects": sum(s.reconnects for s in self.streams),
            "resets": sum(s.resets for s in self.streams),
            "byes": dict(self.byes),
            "errors": dict(self.errors),
            "cpu_s": _cpu(),
            "first_receipt": self.first_receipt,
            "last_receipt": self.last_receipt,
            "data_bytes": self.data_bytes,
            "latencies_ms": self.latencies_ms,
        }

    async def wait_for(self, expected: list[int], deadline: float) -> None:
        n = len(set(expected))
        while time.time() < deadline:
            if all(len(s.seen) >= n for s in self.streams if s.opened):
                return
            await asyncio.sleep(0.1)

    async def reopen(self, deadline: float) -> dict[str, Any]:
        """Drop every open stream at once (a reconnect storm) and wait until all are open
        again, each resuming with ``Last-Event-ID``."""
        live = [s for s in self.streams if s.opened]
        self.reopen_left = len(live)
        self.reopen_done.clear()
        if not live:
            self.reopen_done.set()
        started = time.perf_counter()
        for s in live:
            s.reopening = True
        for writer in list(self.writers):
            writer.transport.abort()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.reopen_done.wait(), deadline)
        return {
            "seconds": time.perf_counter() - started,
            "streams": len(live),
            "reopened": len(live) - self.reopen_left,
        }


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _main(conn: Connection, cfg: ClientConfig) -> None:
    loop = asyncio.get_running_loop()
    proc = _Process(cfg)
    started = time.perf_counter()
    tasks = [asyncio.create_task(proc.run(s)) for s in proc.streams]
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(proc.all_settled.wait(), cfg.connect_deadline)
    conn.send(("connected", proc.connect_report(time.perf_counter() - started)))
    try:
        message = await loop.run_in_executor(None, conn.recv)
    except EOFError:
        message = ("abort",)
    if message[0] == "expect":
        _, expected, deadline = message
        await proc.wait_for(expected, deadline)
        conn.send(("done", proc.delivery_report(expected)))
        try:
            message = await loop.run_in_executor(None, conn.recv)
        except EOFError:
            message = ("end",)
        if message[0] == "reopen":
            conn.send(("reopened", await proc.reopen(cfg.connect_deadline)))
    proc.closing = True
    for writer in list(proc.writers):
        writer.close()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def run_process(conn: Connection, cfg: ClientConfig) -> None:
    """Entry point of one client process (``multiprocessing`` target)."""
    raise_nofile()
    try:
        import uvloop

        factory: Any = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(_main(conn, cfg))
    conn.close()
