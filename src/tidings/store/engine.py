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
- On PostgreSQL a pooled connection idle for :data:`PING_IDLE` seconds or more is pinged before
  it is used, and replaced (with every older one in the pool) when the ping finds it dead, as
  ``pool_pre_ping`` does; one in steady use is not (its last transaction showed it alive, and
  the ping is three round trips). A connection whose server went away within that second fails
  its transaction as unavailable (503, retried by the client) and the pool drops every
  connection as old as it (SQLAlchemy's disconnect handling).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, exc, make_url, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from tidings.errors import Unavailable
from tidings.store.onehop import use_one_hop

if TYPE_CHECKING:
    from tidings.store.migrate import Schema

log = logging.getLogger(__name__)
T = TypeVar("T")

_UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    exc.OperationalError,
    exc.InterfaceError,
    exc.DisconnectionError,
    exc.TimeoutError,
    ConnectionError,
    OSError,
)
_STORE_ERRORS: tuple[type[BaseException], ...] = (*_UNAVAILABLE_ERRORS, exc.DBAPIError)
# PostgreSQL: a pooled connection idle at least this long (s) is pinged before it is used.
PING_IDLE = 1.0
_IDLE_SINCE = "tidings_idle_since"  # in a pooled connection's info: when it was checked in
# Commits made on the loop (Store.run_write) between two checkpoints asked of the writer thread:
# a lone publish writes ~6 pages, SQLite's own automatic checkpoint runs at 1,000.
CHECKPOINT_EVERY = 150


class _Busy(Exception):
    """SQLite's write lock is held by another process: the transaction goes to the thread."""


class Store:
    """Owns the engine. Query functions live in the sibling modules and take a connection."""

    def __init__(
        self, url: str, *, echo: bool = False, pool_size: int = 10, ping_idle: float = PING_IDLE
    ) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self.pings = 0  # PostgreSQL: pooled connections pinged before use (idle ones only)
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
            # Last in, first out: the connections in steady use stay the same few (never
            # pinged); the others stay idle, and are pinged when they are needed again.
            kwargs.update(pool_size=pooled, max_overflow=0, pool_use_lifo=True, pool_timeout=10)
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if not self.is_sqlite:
            self._ping_when_idle(ping_idle)
        self._write_lock = asyncio.Lock() if self.is_sqlite else None
        # SQLite in a file: a synchronous engine on the same file for run_write, used on one
        # thread of its own (the writer; made here, connected on first use), and for run_read
        # on another (the reader).
        self._sync: Engine | None = None
        self._writer: ThreadPoolExecutor | None = None
        self._writer_conn: Connection | None = None  # the writer thread's, once it connected
        self._reader: ThreadPoolExecutor | None = None
        self._reader_conn: Connection | None = None  # the reader thread's, once it connected
        self._loop_conn: Connection | None = None  # the loop's (never waits for the lock)
        self._since_checkpoint = 0  # commits on the loop since the last checkpoint asked
        if self.is_sqlite:
            use_one_hop(self.engine)  # a statement is one hand-off to aiosqlite's thread
            _configure_sqlite(self.engine.sync_engine)
            if ":memory:" not in url:
                self._sync = create_engine(
                    make_url(url).set(drivername="sqlite"),
                    echo=echo,
                    connect_args={"timeout": 30, "check_same_thread": False},
                    pool_size=3,  # the writer thread's connection, the loop's, the reader's
                    max_overflow=0,
                )
                _configure_sqlite(self._sync, raw_begin=True)
                self._writer = ThreadPoolExecutor(1, thread_name_prefix="tidings-sqlite-writer")
                self._reader = ThreadPoolExecutor(1, thread_name_prefix="tidings-sqlite-reader")

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def _ping_when_idle(self, idle: float) -> None:
        """``pool_pre_ping`` for the pool's connections idle ``idle`` seconds or more only: the
        same ping, and on a dead connection the same outcome (``InvalidatePoolError``: it and
        every older connection are replaced before anyone uses them)."""
        pool, dialect = self.engine.sync_engine.pool, self.engine.sync_engine.dialect

        @event.listens_for(pool, "checkin")
        def _idle_from(dbapi_connection: Any, record: Any) -> None:
            if dbapi_connection is not None:
                record.info[_IDLE_SINCE] = time.monotonic()

        @event.listens_for(pool, "checkout")
        def _ping(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
            since = record.info.get(_IDLE_SINCE)
            # None: connected since its last check-in (the info goes with the connection)
            if since is None or time.monotonic() - since < idle:
                return
            self.pings += 1
            try:
                dialect.do_ping(dbapi_connection)
            except dialect.loaded_dbapi.Error as error:
                if dialect.is_disconnect(error, dbapi_connection, None):
                    raise exc.InvalidatePoolError() from error
                raise

    async def close(self) -> None:
        conn, self._loop_conn = self._loop_conn, None
        if conn is not None:
            conn.close()
        if self._writer is not None:
            if self._writer_conn is not None:  # the thread connected: it closes its connection
                with contextlib.suppress(RuntimeError):  # already shut down: closed before
                    self._writer.submit(self._close_writer)  # after a transaction under way
            self._writer.shutdown(wait=True)
        if self._reader is not None:
            if self._reader_conn is not None:
                with contextlib.suppress(RuntimeError):
                    self._reader.submit(self._close_reader)
            self._reader.shutdown(wait=True)
        if self._sync is not None:
            self._sync.dispose()
        await self.engine.dispose()

    @property
    def writes_in_thread(self) -> bool:
        """Whether :meth:`run_write` is available (SQLite in a file)."""
        return self._sync is not None

    @property
    def writer_engine(self) -> Engine | None:
        """The synchronous engine :meth:`run_write` uses (for its events; ``None`` without)."""
        return self._sync

    async def run_write(self, work: Callable[[Connection], T]) -> T:
        """``work(conn)`` in one write transaction (``BEGIN IMMEDIATE``) with a synchronous
        connection, where :meth:`write` makes a hand-off to aiosqlite's thread per statement
        and runs SQLAlchemy's async machinery around each (the group committer's transaction,
        ``store/groupcommit.py``). SQLite in a file only (:attr:`writes_in_thread`).

        **On the loop when SQLite's write lock is free** (the common case: this process's
        writers take turns on the in-process write lock held here): the transaction runs right
        here, with no hand-off and no thread to wake. A commit in WAL mode is a ``write`` of
        the new pages to the WAL file, never an ``fsync`` (``synchronous=NORMAL``), so the loop
        waits for the page cache only, as nginx's access log or Redis's append-only file do;
        the loop's connection has a busy timeout of 0 and no automatic checkpoint (the
        checkpoint, which syncs, is asked of the writer thread every ``CHECKPOINT_EVERY``
        commits here). **When another process holds the lock** (``SQLITE_BUSY`` at ``BEGIN``),
        the transaction goes to the writer thread, whose connection waits for the lock up to
        the store's busy timeout. Errors are answered as :meth:`write` answers them."""
        assert self._sync is not None and self._writer is not None
        assert self._write_lock is not None
        loop = asyncio.get_running_loop()
        async with self._write_lock:
            with _outages():
                try:
                    return self._on_loop(work)
                except _Busy:
                    pass
                return await loop.run_in_executor(self._writer, self._in_writer, work)

    def _on_loop(self, work: Callable[[Connection], T]) -> T:
        """``work`` in a transaction of the loop's own connection; :class:`_Busy` (nothing
        done) when another process holds SQLite's write lock."""
        assert self._writer is not None
        # Never wait for the lock on the loop (the thread will), never sync there (run_write).
        conn = self._loop_conn = self._kept(
            self._loop_conn, "PRAGMA busy_timeout=0", "PRAGMA wal_autocheckpoint=0"
        )
        try:
            transaction = conn.begin()
        except exc.OperationalError as error:
            if getattr(error.orig, "sqlite_errorcode", None) == sqlite3.SQLITE_BUSY:
                raise _Busy from error
            raise
        with transaction:
            done = work(conn)
        self._since_checkpoint += 1
        if self._since_checkpoint >= CHECKPOINT_EVERY:
            self._since_checkpoint = 0
            self._writer.submit(self._checkpoint)
        return done

    def _checkpoint(self) -> None:
        """On the writer thread: copy the WAL's pages into the database file without waiting
        for readers (``PASSIVE``), as SQLite's automatic checkpoint would after a commit."""
        conn = self._writer_conn = self._kept(self._writer_conn)
        raw = conn.connection.driver_connection
        assert raw is not None
        try:
            raw.execute("PRAGMA wal_checkpoint(PASSIVE)").close()
        except sqlite3.Error as error:  # the next one, or another connection's, will do it
            log.warning("WAL checkpoint failed: %s", error)

    def _in_writer(self, work: Callable[[Connection], T]) -> T:
        """On the writer thread: ``work`` in a transaction of the thread's own connection."""
        conn = self._writer_conn = self._kept(self._writer_conn)
        with conn.begin():
            return work(conn)

    async def run_read(self, work: Callable[[Connection], T]) -> T:
        """``work(conn)`` in one read transaction (``BEGIN DEFERRED``: a consistent snapshot)
        with a synchronous connection, in ONE hand-off to the reader thread, where
        :meth:`read` makes a hand-off to aiosqlite's thread per statement and runs
        SQLAlchemy's async machinery around each (a reconnect storm's views,
        ``delivery/opening.py``). SQLite in a file only (:attr:`writes_in_thread`); errors are
        answered as :meth:`read` answers them."""
        assert self._reader is not None
        loop = asyncio.get_running_loop()
        with _outages():
            return await loop.run_in_executor(self._reader, self._in_reader, work)

    def _in_reader(self, work: Callable[[Connection], T]) -> T:
        """On the reader thread: ``work`` in a read transaction of the thread's connection."""
        conn = self._reader_conn = self._kept(self._reader_conn, begin="DEFERRED")
        with conn.begin():
            return work(conn)

    def _close_reader(self) -> None:
        """On the reader thread: its connection goes back to the pool (:meth:`close`)."""
        conn, self._reader_conn = self._reader_conn, None
        if conn is not None:
            conn.close()

    def _kept(self, conn: Connection | None, *pragmas: str, begin: str = "IMMEDIATE") -> Connection:
        """``conn`` (a synchronous connection kept between transactions: no pool checkout and
        reset each time), or, when there is none yet or it failed, a new one whose transactions
        begin ``begin`` (``IMMEDIATE``: it writes), with ``pragmas`` run on it."""
        assert self._sync is not None
        if conn is not None and not conn.closed and not conn.invalidated:
            return conn
        if conn is not None:
            conn.close()
        conn = self._sync.connect()
        raw = conn.connection.driver_connection
        assert raw is not None
        for pragma in pragmas:
            raw.execute(pragma).close()
        conn.execution_options(tidings_begin=begin)
        return conn

    def _close_writer(self) -> None:
        """On the writer thread: its connection goes back to the pool (:meth:`close`)."""
        conn, self._writer_conn = self._writer_conn, None
        if conn is not None:
            conn.close()

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
        with _outages():
            async with self.engine.connect() as conn:
                if sqlite_mode is not None:
                    conn = await conn.execution_options(tidings_begin=sqlite_mode)
                async with conn.begin():
                    yield conn

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


@contextlib.contextmanager
def _outages() -> Iterator[None]:
    """A store error that means an outage is raised as :class:`Unavailable` (503, logged);
    any other store error as it is."""
    try:
        yield
    except _STORE_ERRORS as error:
        unavailable = _unavailable(error)
        if unavailable is None:
            raise
        raise unavailable from error


def _unavailable(error: BaseException) -> Unavailable | None:
    """The :class:`Unavailable` (503) a store error means, logged; ``None``: not an outage (a
    programming bug, a constraint…), raised as it is."""
    if isinstance(error, _UNAVAILABLE_ERRORS):
        if isinstance(error, exc.OperationalError) and _is_programming_bug(error):
            return None
        log.warning("store unavailable: %s", error.__class__.__name__)
        return Unavailable("The notification store is unavailable; retry shortly.")
    if isinstance(error, exc.DBAPIError) and _is_disconnect(error):
        log.warning("store unavailable: %s", _sqlstate(error) or "disconnected")
        return Unavailable("The notification store is unavailable; retry shortly.")
    return None


def _configure_sqlite(engine: Engine, *, raw_begin: bool = False) -> None:
    """WAL, busy timeout and foreign keys on each connection; ``BEGIN`` as the execution option
    ``tidings_begin`` asks (default ``DEFERRED``). ``raw_begin`` (a synchronous engine): the
    ``BEGIN`` is run on the DBAPI connection itself, not as a SQLAlchemy statement."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = conn.get_execution_options().get("tidings_begin", "DEFERRED")
        if not raw_begin:
            conn.exec_driver_sql(f"BEGIN {mode}")
            return
        sql = f"BEGIN {mode}"
        try:  # straight on the DBAPI connection, raised as SQLAlchemy raises it
            conn.connection.driver_connection.execute(sql)
        except sqlite3.Error as error:
            raise exc.DBAPIError.instance(sql, (), error, sqlite3.Error) from error
