"""One demo server per test module (the tests below each use their own bookings and users)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.demo.helpers import DemoServer, start_demo


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    server = start_demo(tmp_path_factory.mktemp("demo"))
    try:
        yield server
    finally:
        server.stop()
