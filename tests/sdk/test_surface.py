"""The SDK's shape: both clients have the same methods with the same parameters, ``__all__``
is complete and sorted, and importing it loads no server module (checked in a fresh process,
where its import time is measured too)."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import pytest

import tidings
import tidings.client as sdk
from tests.support import make_settings
from tidings.client import AsyncClient, AsyncSubscription, Client, Subscription

SERVER_MODULES = (
    "fastapi",
    "starlette",
    "sqlalchemy",
    "pydantic",
    "pydantic_settings",
    "uvicorn",
    "alembic",
    "jwt",
    "redis",
    "tidings.app",
    "tidings.service",
    "tidings.config",
    "tidings.store",
    "tidings.delivery",
    "tidings.channels",
    "tidings.demo",
    "tidings.api",
)

_PROBE = """
import json, sys, time
started = time.perf_counter()
import tidings.client
elapsed = time.perf_counter() - started
print(json.dumps({"seconds": elapsed, "modules": sorted(sys.modules)}))
"""


def _public(cls: type) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(member)
        for name, member in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_")
    }


def test_sync_and_async_clients_have_one_surface() -> None:
    sync, asyncio_ = _public(Client), _public(AsyncClient)
    assert sync.keys() - {"close"} == asyncio_.keys() - {"aclose"}
    for name, signature in sync.items():
        if name != "close":
            assert asyncio_[name].parameters == signature.parameters, name
            assert inspect.iscoroutinefunction(getattr(AsyncClient, name)) == (
                name != "subscribe"
            ), name
    init = inspect.signature(Client.__init__).parameters
    assert list(init) == list(inspect.signature(AsyncClient.__init__).parameters)
    assert {"__iter__", "__next__", "close", "last_event_id"} <= set(dir(Subscription))
    assert {"__aiter__", "__anext__", "aclose", "last_event_id"} <= set(dir(AsyncSubscription))


def test_all_is_complete_and_sorted() -> None:
    assert sdk.__all__ == sorted(sdk.__all__)
    public = {
        name
        for name, value in vars(sdk).items()
        if not name.startswith("_") and name != "annotations" and not inspect.ismodule(value)
    }
    assert public == set(sdk.__all__)


def test_importing_the_sdk_loads_no_server_module(
    record_property: Callable[[str, object], None],
) -> None:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", _PROBE],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    found = json.loads(done.stdout)
    server = [
        m for m in found["modules"] if any(m == s or m.startswith(s + ".") for s in SERVER_MODULES)
    ]
    assert server == [], f"import tidings.client loaded {server}"
    # -X importtime: the cumulative microseconds of tidings.client (its own line, last column).
    line = next(x for x in done.stderr.splitlines() if x.rstrip().endswith("| tidings.client"))
    micros = int(line.split("|")[1])
    record_property("import_tidings_client_ms", micros / 1000)
    print(f"import tidings.client: {micros / 1000:.0f} ms ({found['seconds'] * 1000:.0f} ms wall)")


def test_the_package_is_lazy_and_has_one_version(tmp_path: Path) -> None:
    probe = "import sys, tidings; print('fastapi' in sys.modules, tidings.__version__)"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    ).stdout.split()
    assert out == ["False", metadata.version("tidings")]
    assert tidings.__version__ == metadata.version("tidings")
    assert tidings.create_app(make_settings(str(tmp_path))).version == tidings.__version__
    assert "__version__" in dir(tidings)
    with pytest.raises(AttributeError):
        _ = tidings.nothing_here
