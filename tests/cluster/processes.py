"""Processes of a test cluster on loopback: tidings instances, nginx, and the cluster of both.

- :class:`Instance`: ``python -m tidings serve`` as a separate process on a free port; killed,
  terminated and restarted on the same port.
- :class:`Nginx`: nginx in front of the instances, with a generated config that includes
  ``deploy/tidings-proxy.conf``, the locations we ship.
- :class:`Cluster`: a fresh PostgreSQL database as the store, a broker, N instances, nginx.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.services import PostgresServer, RedisServer, _wait_port
from tests.support import OPERATOR, SECRET, free_port, require_binary
from tidings import auth

ROOT = Path(__file__).resolve().parents[2]
PROXY_CONF = ROOT / "deploy" / "tidings-proxy.conf"


class Instance:
    """One tidings server process."""

    def __init__(self, name: str, env: dict[str, str], workdir: Path) -> None:
        self.name = name
        self.port = free_port()
        self.env = env
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = workdir / f"{name}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, wait: bool = True) -> Instance:
        env = {**os.environ, **self.env}
        env.pop("TIDINGS_URL", None)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tidings",
                    "serve",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                ],
                env=env,
                cwd=self.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} not ready after {timeout}s: {self.tail()}")

    def signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)

    def wait(self, timeout: float = 30) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def restart(self, down_for: float = 0.0) -> None:
        self.kill()
        time.sleep(down_for)
        self.start()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


class Nginx:
    """nginx on a free port, proxying to the instances with the shipped locations."""

    def __init__(self, upstreams: list[int], workdir: Path) -> None:
        self.port = free_port()
        self.upstreams = upstreams
        self.dir = workdir / "nginx"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def config(self) -> str:
        servers = "\n".join(
            f"        server 127.0.0.1:{p} max_fails=1 fail_timeout=2s;" for p in self.upstreams
        )
        user = "user root;\n" if os.geteuid() == 0 else ""
        d = self.dir
        return f"""{user}worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    upstream tidings {{
        least_conn;
{servers}
        keepalive 32;
    }}
    server {{
        listen 127.0.0.1:{self.port};
        include {PROXY_CONF};
    }}
}}
"""

    def start(self) -> Nginx:
        binary = require_binary("nginx", "/usr/sbin/nginx")
        self.dir.mkdir(parents=True, exist_ok=True)
        conf = self.dir / "nginx.conf"
        conf.write_text(self.config())
        self.proc = subprocess.Popen(
            [binary, "-p", str(self.dir), "-c", str(conf), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=open(self.dir / "stderr.log", "ab"),  # noqa: SIM115
        )
        _wait_port(self.port, 10, self.proc)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@dataclass
class TenantKey:
    id: str
    key: str


class Cluster:
    """PostgreSQL store (a fresh database), a broker, N instances, nginx in front."""

    def __init__(
        self,
        pg: PostgresServer,
        workdir: Path,
        *,
        broker: str,
        redis: RedisServer | None = None,
        instances: int = 3,
        nginx: bool = True,
        env: dict[str, str] | None = None,
    ) -> None:
        self.pg = pg
        self.redis = redis
        self.workdir = workdir
        self.broker = broker
        self.count = instances
        self.use_nginx = nginx
        self.database = pg.fresh_database("cluster")
        if broker == "redis":
            assert redis is not None
            broker_url = redis.url
        elif broker == "postgres":
            broker_url = pg.broker_url(self.database)
        else:
            broker_url = broker
        self.env = {
            "TIDINGS_ENV": "test",
            "TIDINGS_DATABASE_URL": pg.url(self.database),
            "TIDINGS_BROKER_URL": broker_url,
            "TIDINGS_SECRET": SECRET,
            "TIDINGS_OPERATOR_KEY": OPERATOR,
            "TIDINGS_KEEPALIVE": "5",
            "TIDINGS_RETRY_MS": "500",
            "TIDINGS_PUBLISH_RATE": "100000/second",
            "TIDINGS_LOG_LEVEL": "WARNING",
            "TIDINGS_CHANNELS_WORKERS": "false",
            "TIDINGS_MAX_STREAMS_PER_USER": "50",
            **(env or {}),
        }
        self.instances = [Instance(f"i{n}", self.env, workdir) for n in range(instances)]
        self.nginx: Nginx | None = None

    def start(self) -> Cluster:
        # The first migrates (others would wait on the migration lock anyway); then in parallel.
        self.instances[0].start()
        for inst in self.instances[1:]:
            inst.start(wait=False)
        for inst in self.instances[1:]:
            inst.wait_ready()
        if self.use_nginx:
            self.nginx = Nginx([i.port for i in self.instances], self.workdir).start()
        return self

    def stop(self) -> None:
        if self.nginx is not None:
            self.nginx.stop()
        for inst in self.instances:
            with contextlib.suppress(Exception):
                inst.kill()
        self.pg.drop_database(self.database)

    @property
    def front(self) -> str:
        return self.nginx.url if self.nginx is not None else self.instances[0].url

    def tenant(self, tenant_id: str) -> TenantKey:
        return self.tenant_at(self.instances[0].url, tenant_id)

    def tenant_at(self, url: str, tenant_id: str) -> TenantKey:
        op = {"Authorization": f"Bearer {OPERATOR}"}
        r = httpx.post(
            f"{url}/v1/admin/tenants", json={"id": tenant_id, "name": tenant_id}, headers=op
        )
        assert r.status_code in (201, 409), r.text
        r = httpx.post(
            f"{url}/v1/admin/tenants/{tenant_id}/keys",
            json={"name": "load", "scopes": ["publish", "tokens"]},
            headers=op,
        )
        assert r.status_code == 201, r.text
        return TenantKey(tenant_id, r.json()["key"])


def token(tenant: str, user: str, roles: list[str], ttl: int = 3600) -> str:
    jwt, _ = auth.mint(SECRET, tenant=tenant, user=user, roles=roles, ttl=ttl)
    return jwt


@contextlib.contextmanager
def cluster_of(
    pg: PostgresServer,
    workdir: Path,
    **kwargs: Any,
) -> Iterator[Cluster]:
    cluster = Cluster(pg, workdir, **kwargs)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
