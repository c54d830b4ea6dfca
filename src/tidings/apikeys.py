"""API keys as the request path checks them: verified against the store, then kept in memory.

Checking an API key used to be a read transaction per request (on SQLite through aiosqlite,
~0.6 ms of CPU, eight times a grouped publish). :class:`ApiKeys` keeps each verified answer,
valid or not, keyed by ``sha256`` of the whole presented key (the key itself is never kept):

- **Valid keys** are trusted for at most ``ttl`` seconds (``TIDINGS_API_KEY_CACHE``), then
  checked against the store again. A key revoked through this instance
  (:meth:`ApiKeys.forget`) fails at once here; one revoked through another instance (or the
  CLI) fails here within ``ttl`` seconds. ``ttl = 0`` checks the store on every request.
- **Refused keys** (unknown id, wrong secret, revoked) are remembered for the same ``ttl``:
  a client retrying a bad key costs no read. Keys are random (32 bytes of secret), so an
  entry for a presented key can never hide a key created later.
- **Malformed keys** are refused by their shape (``tdg_<12>_<secret>``) before any of this.
- **Misses are batched**: at most one read is in flight; lookups that miss meanwhile wait and
  share the next one (``WHERE id IN (…)``, up to ``BATCH`` ids), so a flood of distinct unknown
  keys, or the first requests after a start, cost one read per batch, not one per request.
- **Bounded**: at most ``size`` entries of each kind, least recently used out first.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from typing import TypeVar

from tidings.domain.principals import KeyPrincipal
from tidings.errors import Code, Unauthorized
from tidings.store import Store
from tidings.store import tenants as tq

T = TypeVar("T")
SIZE = 10_000
BATCH = 256  # key ids per read


Waiting = list[tuple[str, "asyncio.Future[KeyPrincipal]"]]


class ApiKeys:
    """Presented API key → :class:`KeyPrincipal`, cached (see the module docstring)."""

    def __init__(self, store: Store, *, ttl: float, size: int = SIZE) -> None:
        self.store = store
        self.ttl = ttl
        self.size = size
        self._valid: OrderedDict[bytes, tuple[float, KeyPrincipal]] = OrderedDict()
        self._refused: OrderedDict[bytes, tuple[float, tuple[str, Code]]] = OrderedDict()
        self._queue: dict[str, Waiting] = {}  # key id -> presented keys waiting for a read
        self._reader: asyncio.Task[None] | None = None
        self._forgotten = 0  # bumped by forget*: a read that started before is not kept

    async def authenticate(self, presented: str) -> KeyPrincipal:
        """The principal of ``presented``, or ``Unauthorized`` (malformed, invalid, revoked)."""
        match = tq.KEY_FORMAT.match(presented)
        if match is None:
            raise Unauthorized("The API key is malformed.", code=Code.INVALID_CREDENTIALS)
        digest = hashlib.sha256(presented.encode()).digest()
        now = time.monotonic()
        valid = self._valid.get(digest)
        if valid is not None:
            if now < valid[0]:
                self._valid.move_to_end(digest)
                return valid[1]
            del self._valid[digest]
        refused = self._refused.get(digest)
        if refused is not None:
            if now < refused[0]:
                self._refused.move_to_end(digest)
                detail, code = refused[1]
                raise Unauthorized(detail, code=code)
            del self._refused[digest]
        generation = self._forgotten
        try:
            principal = await self._lookup(match.group(1), presented)
        except Unauthorized as error:
            self._remember(self._refused, digest, (error.detail, error.code))
            raise
        if generation == self._forgotten:
            self._remember(self._valid, digest, principal)
        return principal

    def forget(self, key_id: str) -> None:
        """Drop every cached answer for ``key_id`` (revoked through this instance)."""
        self._forgotten += 1
        for digest in [d for d, (_, p) in self._valid.items() if p.key_id == key_id]:
            del self._valid[digest]

    def forget_tenant(self, tenant: str) -> None:
        """Drop every cached key of ``tenant`` (its keys were deleted or rotated here)."""
        self._forgotten += 1
        for digest in [d for d, (_, p) in self._valid.items() if p.tenant == tenant]:
            del self._valid[digest]

    def _remember(self, cache: OrderedDict[bytes, tuple[float, T]], digest: bytes, v: T) -> None:
        if self.ttl <= 0:
            return
        cache[digest] = (time.monotonic() + self.ttl, v)
        cache.move_to_end(digest)
        while len(cache) > self.size:
            cache.popitem(last=False)

    # -- batched reads ---------------------------------------------------------------------------

    async def _lookup(self, key_id: str, presented: str) -> KeyPrincipal:
        future: asyncio.Future[KeyPrincipal] = asyncio.get_running_loop().create_future()
        self._queue.setdefault(key_id, []).append((presented, future))
        if self._reader is None:
            self._reader = asyncio.get_running_loop().create_task(
                self._drain(), name="tidings-api-keys"
            )
        return await future

    async def _drain(self) -> None:
        """One read at a time; each takes every key id queued meanwhile (up to ``BATCH``)."""
        try:
            while self._queue:
                ids = list(self._queue)[:BATCH]
                await self._read({key_id: self._queue.pop(key_id) for key_id in ids})
        finally:
            self._reader = None

    async def _read(self, wanted: dict[str, Waiting]) -> None:
        try:
            async with self.store.read() as conn:
                rows = await tq.keys_by_id(conn, list(wanted))
        except BaseException as error:  # the store failed (or the loop is closing): all fail
            for entries in wanted.values():
                for _, future in entries:
                    if future.done():
                        continue
                    if isinstance(error, Exception):
                        future.set_exception(error)
                    else:
                        future.cancel()
            if not isinstance(error, Exception):
                raise
            return
        for key_id, entries in wanted.items():
            for presented, future in entries:
                if future.done():
                    continue
                try:
                    future.set_result(tq.check_key(rows.get(key_id), presented))
                except Unauthorized as error:
                    future.set_exception(error)
