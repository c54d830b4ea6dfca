"""The listen backlog of ``tidings serve`` (``TIDINGS_BACKLOG``, docs/deploy.md).

A reconnect storm is thousands of connects at once; a backlog below it overflows the accept
queue and each dropped SYN is retried by the client's kernel after a whole second. The backlog
is read where the kernel keeps it: ``ss -ltn`` prints a listening socket's backlog as its
Send-Q (capped by ``net.core.somaxconn``).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.cluster.processes import Instance
from tests.support import OPERATOR, SECRET, require_binary
from tidings.config import Settings


def _somaxconn() -> int:
    return int(Path("/proc/sys/net/core/somaxconn").read_text())


def _listen_backlog(port: int) -> int:
    ss = require_binary("ss")
    out = subprocess.run(
        [ss, "-ltnH", f"sport = :{port}"], capture_output=True, text=True, check=True, timeout=10
    ).stdout.split()
    assert out and out[0] == "LISTEN", out
    return int(out[2])  # State Recv-Q Send-Q …: Send-Q is the backlog of a listening socket


def _serve(tmp_path: Path, **env: str) -> Instance:
    return Instance(
        "backlog",
        {
            "TIDINGS_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/tidings.db",
            "TIDINGS_BROKER_URL": "memory://",
            "TIDINGS_SECRET": SECRET,
            "TIDINGS_OPERATOR_KEY": OPERATOR,
            "TIDINGS_LOG_LEVEL": "WARNING",
            **env,
        },
        tmp_path,
    ).start()


def test_the_default_backlog_is_nginx_s_not_uvicorn_s() -> None:
    assert Settings().backlog == 4096  # uvicorn's own default is 2048


@pytest.mark.parametrize("backlog", [None, 1234])
def test_serve_listens_with_the_configured_backlog(tmp_path: Path, backlog: int | None) -> None:
    env = {} if backlog is None else {"TIDINGS_BACKLOG": str(backlog)}
    instance = _serve(tmp_path, **env)
    try:
        want = min(backlog or 4096, _somaxconn())
        assert _listen_backlog(instance.port) == want
    finally:
        instance.stop()
