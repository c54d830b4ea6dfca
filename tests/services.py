"""Real services for tests: PostgreSQL, Redis and nginx, each on a free loopback port.

Each is a plain subprocess in a temp dir, never a system daemon, and can be stopped, killed and
restarted on the same port (the fault tests do that). PostgreSQL runs as the ``postgres`` user
when the tests run as root (CI does), with its socket dir inside its temp dir.

Fixtures (registered by ``tests/conftest.py`` through ``pytest_plugins``):

- ``postgres_server``: one PostgreSQL per session, with a migrated template database;
  :meth:`PostgresServer.fresh_database` clones it in a few tens of milliseconds.
- ``redis_server``: one redis-server per session; :meth:`RedisServer.flush` empties it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import itertools
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.support import free_port, require_binary

PG_BIN = Path("/usr/lib/postgresql/15/bin")
TEMPLATE_DB = "tidings_template"
T = TypeVar("T")
_db_names = itertools.count(1)


def _wait_port(port: int, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening")
        with socket.socket() as s:
            s.settimeout(0.2)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def run_sync(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from sync code, also when an event loop is running in
    this thread (async tests call the sync helpers here): then in a thread of its own."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(make())).result()


def _pg_bin(name: str) -> str:
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True)
    return require_binary(name, str(PG_BIN / name), *(str(c) for c in candidates))


class PostgresServer:
    """A throw-away PostgreSQL cluster (trust auth, fsync off) on ``127.0.0.1:port``.

    ``synchronous_commit`` stays on: an acknowledged commit must survive an ``immediate``
    stop (a crash of the server process), which the fault tests do. ``fsync=off`` only gives
    up durability against a crash of the whole machine.
    """

    def __init__(self, root: Path | None = None, *, port: int | None = None) -> None:
        self.root = root or Path(tempfile.mkdtemp(prefix="tidings-pg-"))
        self.port = port or free_port()
        self.data = self.root / "data"
        self.sockets = self.root / "sock"
        self.log = self.root / "postgres.log"
        self._as_root = os.geteuid() == 0

    # -- lifecycle -------------------------------------------------------------------------

    def _run(self, *args: str, timeout: float = 60) -> None:
        cmd = list(args)
        if self._as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, timeout=timeout, check=False)
        if done.returncode != 0:
            raise RuntimeError(
                f"{' '.join(args)} failed ({done.returncode}): "
                f"{done.stderr.decode(errors='replace')[-2000:]}"
            )

    def init(self) -> PostgresServer:
        initdb = _pg_bin("initdb")
        self.root.mkdir(parents=True, exist_ok=True)
        self.sockets.mkdir(exist_ok=True)
        if self._as_root:
            pg = pwd.getpwnam("postgres")
            for path in (self.root, self.sockets):
                os.chown(path, pg.pw_uid, pg.pw_gid)
        self._run(
            initdb,
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )
        return self

    def start(self) -> PostgresServer:
        options = " ".join(
            [
                f"-p {self.port}",
                f"-k {self.sockets}",
                "-c listen_addresses=127.0.0.1",
                "-c max_connections=400",
                "-c fsync=off",
                "-c full_page_writes=off",
                "-c shared_buffers=64MB",
            ]
        )
        self._run(
            _pg_bin("pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
        )
        _wait_port(self.port, 30)
        return self

    def stop(self, mode: str = "fast") -> None:
        """Stop the server; ``immediate`` is a crash (no checkpoint), ``fast`` a clean stop."""
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            self._run(_pg_bin("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def restart(self, down_for: float = 0.0, mode: str = "immediate") -> None:
        self.stop(mode)
        time.sleep(down_for)
        self.start()

    def cleanup(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    # -- databases -------------------------------------------------------------------------

    def url(self, database: str = "postgres", driver: str = "postgresql+asyncpg") -> str:
        return f"{driver}://postgres@127.0.0.1:{self.port}/{database}"

    def broker_url(self, database: str = "postgres") -> str:
        return self.url(database, driver="postgresql")

    def sql(self, statement: str, database: str = "postgres") -> None:
        """Run one statement with asyncpg (outside any transaction)."""
        import asyncpg

        async def run() -> None:
            conn = await asyncpg.connect(self.broker_url(database), timeout=10)
            try:
                await conn.execute(statement, timeout=30)
            finally:
                await conn.close()

        run_sync(run)

    def create_template(self) -> None:
        """A database with every branch's migrations applied, to clone per test."""
        from tidings.extensions import every_branch
        from tidings.store import Store

        self.sql(f"DROP DATABASE IF EXISTS {TEMPLATE_DB}")
        self.sql(f"CREATE DATABASE {TEMPLATE_DB}")

        async def migrate() -> None:
            store = Store(self.url(TEMPLATE_DB))
            try:
                await store.migrate(every_branch())
            finally:
                await store.close()

        run_sync(migrate)

    def fresh_database(self, prefix: str = "t") -> str:
        """A new migrated database (a clone of the template); returns its name."""
        name = f"{prefix}_{os.getpid()}_{next(_db_names)}"
        self.sql(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE_DB}")
        return name

    def drop_database(self, name: str) -> None:
        with contextlib.suppress(Exception):
            self.sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


class RedisServer:
    """``redis-server`` without persistence on ``127.0.0.1:port``; restartable on that port."""

    def __init__(self, root: Path | None = None, *, port: int | None = None) -> None:
        self.root = root or Path(tempfile.mkdtemp(prefix="tidings-redis-"))
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        binary = require_binary("redis-server")
        self.root.mkdir(parents=True, exist_ok=True)
        log = open(self.root / "redis.log", "ab")  # noqa: SIM115 - owned by the process
        self.proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.root),
                "--protected-mode",
                "no",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        _wait_port(self.port, 10, self.proc)
        return self

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def restart(self, down_for: float = 0.0, sig: int = signal.SIGKILL) -> None:
        """Kill (default) or stop Redis, stay down for ``down_for`` s, start it on the same port."""
        self.stop(sig)
        time.sleep(down_for)
        self.start()

    def flush(self) -> None:
        import redis

        client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)
        try:
            client.flushall()
        finally:
            client.close()

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


# -- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    _pg_bin("initdb")
    # Not under pytest's basetemp: its parents are 0700 root, and the server runs as postgres.
    server = PostgresServer().init().start()
    try:
        server.create_template()
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh migrated database for one test (SQLAlchemy URL)."""
    name = postgres_server.fresh_database()
    try:
        yield postgres_server.url(name)
    finally:
        postgres_server.drop_database(name)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The session's Redis, emptied for this test."""
    if redis_server.proc is None or redis_server.proc.poll() is not None:
        redis_server.start()
    redis_server.flush()
    return redis_server.url
