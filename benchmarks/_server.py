"""A ``tidings serve`` subprocess for the load generator, and the tenant, key and tokens it uses.

The spawned server is one process on a free loopback port with its own SQLite file in a temp
dir, the memory broker, stream caps raised above the benchmark's size, the publish rate limit
out of the way and WARNING logs. Its open-files limit is raised in ``preexec_fn``.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from benchmarks._clients import raise_nofile


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def tidings_command() -> list[str]:
    """The ``tidings`` console script of this interpreter's environment."""
    beside = Path(sys.executable).parent / "tidings"
    found = str(beside) if beside.exists() else shutil.which("tidings")
    if found is None:
        raise SystemExit("the `tidings` command is not installed (pip install -e .)")
    return [found]


@dataclass
class SpawnedServer:
    """``tidings serve`` in a subprocess. ``stop()`` ends it and removes its temp dir."""

    streams: int
    profile: str | None = None
    extra_env: dict[str, str] = field(default_factory=dict)  # e.g. TIDINGS_CHANNELS_WORKERS
    port: int = field(default_factory=free_port)
    operator_key: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    proc: subprocess.Popen[bytes] | None = None
    tmp: tempfile.TemporaryDirectory[str] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 30.0) -> SpawnedServer:
        self.tmp = tempfile.TemporaryDirectory(prefix="tidings-bench-")
        return self.spawn(timeout)

    def spawn(self, timeout: float = 30.0) -> SpawnedServer:
        """Start the process on the temp dir and port it has (again, after ``terminate``)."""
        assert self.tmp is not None, "start() first"
        cap = str(self.streams + 1000)
        env = {k: v for k, v in os.environ.items() if not k.startswith("TIDINGS_")}
        env.update(
            TIDINGS_ENV="development",
            TIDINGS_DATABASE_URL=f"sqlite+aiosqlite:///{self.tmp.name}/tidings.db",
            TIDINGS_BROKER_URL="memory://",
            TIDINGS_SECRET=self.secret,
            TIDINGS_OPERATOR_KEY=self.operator_key,
            TIDINGS_MAX_STREAMS_PER_TENANT=cap,
            TIDINGS_MAX_STREAMS_PER_USER=cap,
            TIDINGS_PUBLISH_RATE="1000000/second",
            TIDINGS_LOG_LEVEL="WARNING",
        )
        env.update(self.extra_env)
        cmd = [*tidings_command(), "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        if self.profile:
            sampler = str(Path(__file__).with_name("_sampler.py"))
            cmd = [sys.executable, sampler, self.profile, "--", *cmd]
        self.proc = subprocess.Popen(cmd, env=env, cwd=self.tmp.name, preexec_fn=raise_nofile)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise SystemExit(f"tidings serve exited with {self.proc.returncode}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise SystemExit("tidings serve did not answer /healthz in time")
            time.sleep(0.1)

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM, as an orchestrator stops it; its exit status. The data stays (``spawn``)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            return -signal.SIGKILL

    def stop(self, timeout: float = 30.0) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.tmp is not None:
            self.tmp.cleanup()
            self.tmp = None


async def create_tenant(url: str, operator_key: str, tenant_id: str) -> str:
    """Create ``tenant_id`` (or reuse it) and return a new API key with publish + tokens."""
    op = {"Authorization": f"Bearer {operator_key}"}
    async with httpx.AsyncClient(base_url=url, headers=op, timeout=30) as client:
        r = await client.post("/v1/admin/tenants", json={"id": tenant_id, "name": "benchmark"})
        if r.status_code not in (201, 409):
            raise SystemExit(f"creating tenant failed: {r.status_code} {r.text}")
        r = await client.post(
            f"/v1/admin/tenants/{tenant_id}/keys",
            json={"name": "benchmark", "scopes": ["publish", "tokens"]},
        )
        if r.status_code != 201:
            raise SystemExit(f"creating an API key failed: {r.status_code} {r.text}")
        key: str = r.json()["key"]
        return key


async def mint_tokens(
    url: str, api_key: str, users: list[str], *, ttl: int = 3600, concurrency: int = 32
) -> list[str]:
    """One stream token per user, through ``POST /v1/tokens``, ``concurrency`` at a time."""
    sem = asyncio.Semaphore(concurrency)
    auth = {"Authorization": f"Bearer {api_key}"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, headers=auth, timeout=60, limits=limits) as client:

        async def one(user: str) -> str:
            for attempt in range(5):  # a dropped keep-alive connection is not a failure
                async with sem:
                    try:
                        r = await client.post("/v1/tokens", json={"user": user, "ttl": ttl})
                    except httpx.TransportError:
                        await asyncio.sleep(0.2 * (attempt + 1))
                        continue
                if r.status_code == 201:
                    token: str = r.json()["token"]
                    return token
                if r.status_code not in (429, 503):
                    break
                await asyncio.sleep(0.2 * (attempt + 1))
            raise SystemExit(f"minting a token for {user} failed")

        return list(await asyncio.gather(*(one(u) for u in users)))
