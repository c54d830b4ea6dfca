"""Shared fixtures: settings in a temp dir, a real uvicorn server, a tenant with a key.

Also two suite-wide rules:
- Time limits that find hangs: pyproject sets a 30 s default per test; directories whose
  tests are slower by nature get their own default here (a few times their slowest normal
  test, from ``make test``'s ``--durations=15``); a test may still set its own
  ``@pytest.mark.timeout``.
- Tests leave the tree clean: in CI the run fails if it created or changed any file of the
  checkout (ignored ones included), e.g. a database, a log or a screenshot.
- The suite's httpx clients share one default TLS context (:func:`_share_default_trust`).
"""

from __future__ import annotations

import ssl
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.services import (  # noqa: F401 - fixtures
    postgres_server,
    postgres_url,
    redis_server,
    redis_url,
)
from tests.support import IN_CI, ServerThread, Tenant, create_tenant, make_settings
from tidings.config import Settings

STORES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
HERE = Path(__file__).resolve().parent
TIMEOUTS = {"browser": 45}
_CACHES = (".pytest_cache", "__pycache__", ".mypy_cache", ".ruff_cache", ".venv/", ".hypothesis/")
_tree_before: set[str] | None = None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("timeout") is not None:
            continue
        try:
            part = item.path.resolve().relative_to(HERE).parts[0]
        except ValueError:
            continue
        if part in TIMEOUTS:
            item.add_marker(pytest.mark.timeout(TIMEOUTS[part]))
    _longest_files_first(items)


def _longest_files_first(items: list[pytest.Item]) -> None:
    """Order the files so the two workers end together: files marked ``long`` (minutes of
    work in few tests) first, then the others by their number of tests, most first; each
    file's own tests keep their order. ``make test`` hands files to the workers in exactly this
    order (``--dist loadfile --no-loadscope-reorder``); xdist's own reordering counts tests
    only, so it sent the longest file (the cluster runs, five tests, ~6 minutes) last."""
    files: dict[Path, list[pytest.Item]] = {}
    for item in items:
        files.setdefault(item.path, []).append(item)

    def weight(tests: list[pytest.Item]) -> tuple[bool, int]:
        return (tests[0].get_closest_marker("long") is None, -len(tests))

    items[:] = [item for tests in sorted(files.values(), key=weight) for item in tests]


def _share_default_trust() -> None:
    """Every httpx client made with the default trust gets one shared ``SSLContext``.

    httpx 0.28 builds a new context per client, parsing the CA bundle each time: 50-100 ms, and
    the suite makes thousands of clients (each ``httpx.post`` of a helper, each ``Stream``, each
    test's client), almost all of them for plain HTTP to loopback. The shared context is the
    very one httpx would build (same function, same arguments), made once and never modified;
    clients with their own ``verify``/``cert`` still get their own. httpx is pinned in the
    lock; if its transport stops calling ``create_ssl_context`` this fails loudly here.
    """
    from httpx._transports import default

    names = vars(default)
    make: Callable[..., ssl.SSLContext] = names["create_ssl_context"]  # KeyError if it moved
    shared = make()

    def create(
        verify: ssl.SSLContext | str | bool = True, cert: Any = None, trust_env: bool = True
    ) -> ssl.SSLContext:
        if verify is True and cert is None and trust_env:
            return shared
        return make(verify=verify, cert=cert, trust_env=trust_env)

    names["create_ssl_context"] = create


def pytest_configure(config: pytest.Config) -> None:
    _share_default_trust()


def _tree() -> set[str] | None:
    try:
        out = subprocess.run(
            ["git", "status", "--porcelain", "--ignored", "--untracked-files=all"],
            cwd=HERE.parent,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None  # not a git checkout: nothing to compare
    return {line for line in out.splitlines() if not any(c in line for c in _CACHES)}


def pytest_sessionstart(session: pytest.Session) -> None:
    global _tree_before
    _tree_before = _tree() if IN_CI else None


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _tree_before is None:
        return
    after = _tree()
    new = sorted((after or set()) - _tree_before)
    if new:
        session.config.get_terminal_writer().line(
            f"\nthe tests left files in the tree: {new[:20]}", red=True
        )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=STORES)
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Every test that uses ``settings`` (or ``server``) runs on SQLite and on PostgreSQL; on
    PostgreSQL it gets a fresh migrated database of its own."""
    if request.param == "postgres":
        return make_settings(str(tmp_path), database_url=request.getfixturevalue("postgres_url"))
    return make_settings(str(tmp_path))


@pytest.fixture
def server(settings: Settings) -> Iterator[ServerThread]:
    srv = ServerThread(settings).start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def tenant(server: ServerThread) -> Tenant:
    return create_tenant(server.url, "jump-joy")


@pytest.fixture
def other_tenant(server: ServerThread) -> Tenant:
    return create_tenant(server.url, "bounce-bros")
