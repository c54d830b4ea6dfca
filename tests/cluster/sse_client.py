"""A lightweight asyncio SSE client for hundreds of streams: raw sockets, HTTP/1.1 chunked,
reconnects with ``Last-Event-ID`` like a browser's EventSource, and records when each id
first arrived (and any duplicate, reorder, reset or error).

Nothing is swallowed: every transport error (refused, reset, timed out, cut mid-response) is
kept in ``errors``, every parse error in ``fatal``, every non-200 answer in ``http_errors``, and
every reconnect is counted, so the checker can demand zero of each in runs without faults."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from dataclasses import dataclass, field

import orjson


@dataclass
class SseStream:
    """One EventSource-like stream: reconnects with Last-Event-ID, records first arrivals."""

    host: str
    port: int
    tenant: str
    user: str
    roles: frozenset[str]
    token: str
    arrivals: dict[int, float] = field(default_factory=dict)
    order: list[int] = field(default_factory=list)
    titles: dict[int, str] = field(default_factory=dict)
    duplicates: int = 0
    out_of_order: int = 0
    resets: int = 0
    byes: int = 0
    connects: int = 0
    connected_at: list[float] = field(default_factory=list)
    http_errors: dict[int, int] = field(default_factory=dict)
    fatal: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # transport errors, each kept
    last_id: int | None = None
    retry: float = 0.5
    ready_at: float = 0.0
    baseline: int = 0  # latest seq when the stream first opened: it is owed everything after

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            writer: asyncio.StreamWriter | None = None
            try:
                reader, opened = await asyncio.wait_for(
                    asyncio.open_connection(self.host, self.port, limit=1 << 20), 5
                )
                writer = opened
                resume = f"Last-Event-ID: {self.last_id}\r\n" if self.last_id is not None else ""
                opened.write(
                    (
                        f"GET /v1/stream HTTP/1.1\r\nHost: {self.host}\r\n"
                        f"Authorization: Bearer {self.token}\r\n"
                        f"Accept: text/event-stream\r\n{resume}\r\n"
                    ).encode()
                )
                await opened.drain()
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 15)
                status = int(head.split(b" ", 2)[1])
                if status != 200:
                    self.http_errors[status] = self.http_errors.get(status, 0) + 1
                    if status not in (429, 502, 503, 504):
                        self.fatal.append(f"HTTP {status}")
                    continue
                self.connects += 1
                self.connected_at.append(time.monotonic())
                chunked = b"transfer-encoding: chunked" in head.lower()
                await self._read_body(reader, chunked, stop)
            except (OSError, asyncio.IncompleteReadError, TimeoutError) as error:
                self.errors.append(f"{type(error).__name__}: {error}")
            except (ValueError, KeyError) as error:  # a malformed answer is never expected
                self.fatal.append(f"parse error {type(error).__name__}: {error}")
            finally:
                if writer is not None:
                    writer.close()
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(writer.wait_closed(), 1)
            if not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.retry * random.uniform(0.5, 1.5))

    async def _read_body(
        self, reader: asyncio.StreamReader, chunked: bool, stop: asyncio.Event
    ) -> None:
        raw = b""
        pending = b""
        ended = False
        while not stop.is_set() and not ended:
            data = await asyncio.wait_for(reader.read(65536), 20)  # pings every 5 s
            if not data:
                if chunked:  # closed without the last chunk: the response was cut off
                    raise asyncio.IncompleteReadError(raw, None)
                ended = True
            elif not chunked:
                pending += data
            else:
                raw += data
                while True:
                    end = raw.find(b"\r\n")
                    if end < 0:
                        break
                    size = int(raw[:end].split(b";", 1)[0], 16)
                    if size == 0:  # the last chunk: the server ended the response
                        ended = True
                        break
                    if len(raw) < end + 2 + size + 2:
                        break
                    pending += raw[end + 2 : end + 2 + size]
                    raw = raw[end + 4 + size :]
            *events, pending = pending.split(b"\n\n")
            for event in events:
                if self._event(event):
                    return

    def _event(self, block: bytes) -> bool:
        """Handle one SSE event; True when the stream must be reopened."""
        name, ident, data = b"message", None, b""
        for line in block.split(b"\n"):
            if line.startswith(b"id: "):
                ident = line[4:]
            elif line.startswith(b"event: "):
                name = line[7:]
            elif line.startswith(b"data: "):
                data = line[6:]
            elif line.startswith(b"retry: "):
                self.retry = int(line[7:]) / 1000
        if name == b"notification" and ident is not None:
            seq = int(ident)
            if seq in self.arrivals:
                self.duplicates += 1
            else:
                self.arrivals[seq] = time.monotonic()
                if self.order and seq < self.order[-1]:
                    self.out_of_order += 1
                self.order.append(seq)
                self.titles[seq] = orjson.loads(data)["title"]
            self.last_id = seq
        elif name == b"ready":
            if self.last_id is None:
                self.last_id = self.baseline = orjson.loads(data)["latest_seq"]
            self.ready_at = self.ready_at or time.monotonic()
        elif name == b"reset":
            self.resets += 1
            self.last_id = orjson.loads(data)["latest_seq"]
        elif name == b"bye":
            self.byes += 1
            return True
        elif name == b"expired":
            self.fatal.append("expired")
            return True
        return False
