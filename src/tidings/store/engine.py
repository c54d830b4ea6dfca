"""The :class:`Store`: one async engine, transactions, and the migration entry point.

Invariants:
- Write transactions on SQLite start with ``BEGIN IMMEDIATE`` and are serialized in-process,
  so the per-tenant seq increment never meets ``database is locked`` half-way; other processes
  wait on ``busy_timeout``.
- A store that cannot be reached raises :class:`tidings.errors.Unavailable` (503), never a 500.
- At start, :meth:`Store.wait_reachable` waits for a PostgreSQL server that is down or starting
  up (backoff from 0.5 s, doubling, at most ``max_delay`` between attempts, one log line per
  attempt) instead of failing; errors that waiting cannot cure (a wrong password, a missing
  database) are raised at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from sqlalchemy import event, exc, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from tidings.errors import Unavailable
from tidings.store.onehop import use_one_hop

if TYPE_CHECKING:
    from tidings.store.migrate import Schema

log = logging.getLogger(__name__)

_UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    exc.OperationalError,
    exc.InterfaceError,
    exc.DisconnectionError,
    exc.TimeoutError,
    ConnectionError,
    OSError,
)


class Store:
    """Owns the engine. Query functions live in the sibling modules and take a connection."""

    def __init__(self, url: str, *, echo: bool = False, pool_size: int = 10) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {"echo": echo}
        # Every connection the pool may open is kept once opened (no overflow): a burst of
        # concurrent requests would otherwise open and close a connection per transaction (on
        # SQLite a thread and four PRAGMAs each, on PostgreSQL a server backend).
        pooled = pool_size * 3
        if self.is_sqlite:
            kwargs["connect_args"] = {"timeout": 30}
            if ":memory:" not in url:
                kwargs.update(pool_size=pooled, max_overflow=0)
        else:
            kwargs.update(pool_size=pooled, max_overflow=0, pool_pre_ping=True, pool_timeout=10)
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        self._write_lock = asyncio.Lock() if self.is_sqlite else None
        if self.is_sqlite:
            use_one_hop(self.engine)  # a statement is one hand-off to aiosqlite's thread
            _configure_sqlite(self.engine)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    async def close(self) -> None:
        await self.engine.dispose()

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction: commits on success, rolls back on any exception."""
        if self._write_lock is not None:
            async with self._write_lock, self._transaction("IMMEDIATE") as conn:
                yield conn
        else:
            async with self._transaction(None) as conn:
                yield conn

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A read-only transaction (a consistent snapshot on both SQLite and PostgreSQL)."""
        async with self._transaction("DEFERRED" if self.is_sqlite else None) as conn:
            yield conn

    @asynccontextmanager
    async def _transaction(self, sqlite_mode: str | None) -> AsyncIterator[AsyncConnection]:
        try:
            async with self.engine.connect() as conn:
                if sqlite_mode is not None:
                    conn = await conn.execution_options(tidings_begin=sqlite_mode)
                async with conn.begin():
                    yield conn
        except _UNAVAILABLE_ERRORS as error:
            if isinstance(error, exc.OperationalError) and _is_programming_bug(error):
                raise
            log.warning("store unavailable: %s", error.__class__.__name__)
            raise Unavailable("The notification store is unavailable; retry shortly.") from error
        except exc.DBAPIError as error:
            if not _is_disconnect(error):
                raise
            log.warning("store unavailable: %s", _sqlstate(error) or "disconnected")
            raise Unavailable("The notification store is unavailable; retry shortly.") from error

    async def ping(self) -> None:
        async with self.read() as conn:
            await conn.execute(text("SELECT 1"))

    async def wait_reachable(
        self,
        *,
        max_delay: float = 10.0,
        timeout: float = 0.0,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        """Return once the store answers ``SELECT 1``; retry while it is unreachable.

        ``timeout`` > 0 gives up after that many seconds (:class:`Unavailable`); ``should_stop``
        (an exit signal arrived) ends the wait with :class:`Unavailable` at the next attempt.
        SQLite is local: it is not waited for.
        """
        if self.is_sqlite:
            return
        started = time.monotonic()
        delay, attempt = 0.5, 0
        while True:
            attempt += 1
            try:
                async with self.engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
            except exc.DBAPIError as error:
                state = _sqlstate(error)
                if state.startswith(("28", "3D")) or not (
                    _is_disconnect(error) or isinstance(error, _UNAVAILABLE_ERRORS)
                ):
                    raise  # a wrong password or database name: waiting will not help
                reason = _sqlstate(error) or type(error.orig).__name__
            except _UNAVAILABLE_ERRORS as error:
                reason = type(error).__name__
            else:
                if attempt > 1:
                    log.warning("store reachable after %d attempts", attempt)
                return
            waited = time.monotonic() - started
            if should_stop() or (timeout and waited + delay > timeout):
                raise Unavailable(f"The store did not answer within {waited:.0f}s at start.")
            log.warning(
                "store unreachable at start (attempt %d, %s); retrying in %.1fs",
                attempt,
                reason,
                delay,
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_delay)

    async def migrate(self, schema: Schema | None = None) -> None:
        """Upgrade the core and the branches ``schema`` wants to their heads (the core alone
        without one): :mod:`tidings.store.migrate`."""
        from tidings.store.migrate import Schema, upgrade

        wanted = schema or Schema()
        async with self.engine.connect() as conn:
            if self.dialect == "postgresql":
                # Instances starting together migrate one at a time (released at commit).
                await conn.execute(text("SELECT pg_advisory_xact_lock(7412093)"))
            await conn.run_sync(upgrade, wanted)
            await conn.commit()


# PostgreSQL SQLSTATEs of a server that is going, gone or not yet back (asyncpg reports them
# as plain DBAPIError): connection exceptions (08…), admin/crash shutdown, cannot connect now,
# too many connections.
_UNAVAILABLE_STATES = ("57P01", "57P02", "57P03", "53300")


def _sqlstate(error: exc.DBAPIError) -> str:
    return str(getattr(error.orig, "sqlstate", None) or getattr(error.orig, "pgcode", None) or "")


def _is_disconnect(error: exc.DBAPIError) -> bool:
    state = _sqlstate(error)
    return error.connection_invalidated or state.startswith("08") or state in _UNAVAILABLE_STATES


def _is_programming_bug(error: exc.OperationalError) -> bool:
    message = str(error.orig).lower()
    return "no such table" in message or "no such column" in message or "syntax error" in message


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = conn.get_execution_options().get("tidings_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")
