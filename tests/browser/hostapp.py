"""The host app of docs/embedding.md's quick start, run as written, on a loopback port.

:func:`docs_host_app` extracts the ``# host.py`` block from docs/embedding.md (so the test runs
exactly what the docs say) and imports it with ``TIDINGS_URL``/``TIDINGS_API_KEY`` set;
:class:`HostServer` serves it under uvicorn in a thread (another origin than tidings);
:class:`PortServer` is tidings on a fixed port, to restart it in place.
"""

from __future__ import annotations

import importlib.util
import os
import re
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn

from tests.support import ServerThread, free_port
from tidings.config import Settings
from tidings.server import EdgeProtocol, Server

ROOT = Path(__file__).resolve().parents[2]
EMBEDDING = ROOT / "docs" / "embedding.md"
_BLOCK = re.compile(r"```python\n(# host\.py.*?)```", re.DOTALL)


def host_source() -> str:
    match = _BLOCK.search(EMBEDDING.read_text())
    assert match, "docs/embedding.md has no '# host.py' block"
    return match.group(1)


def docs_host_app(tmp: Path, tidings_url: str, api_key: str) -> Any:
    """Import docs/embedding.md's host.py (written to ``tmp``) with its environment set."""
    path = tmp / "host.py"
    path.write_text(host_source())
    before = {name: os.environ.get(name) for name in ("TIDINGS_URL", "TIDINGS_API_KEY")}
    os.environ["TIDINGS_URL"], os.environ["TIDINGS_API_KEY"] = tidings_url, api_key
    try:
        spec = importlib.util.spec_from_file_location(f"host_{free_port()}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return module


class HostServer:
    """An ASGI app under uvicorn in a thread, on ``port`` (another origin than tidings)."""

    def __init__(self, app: Any, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> HostServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the host app did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        assert not self.thread.is_alive(), "the host app did not stop"


class PortServer(ServerThread):
    """tidings (edge protocol, as ``tidings serve``) on a given port, to restart in place."""

    def __init__(self, settings: Settings, port: int) -> None:
        super().__init__(settings)
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="on",
            timeout_graceful_shutdown=5,
            http=EdgeProtocol,
        )
        self.server = Server(config, self.app)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
