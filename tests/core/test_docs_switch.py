"""``TIDINGS_DOCS`` switches the API docs (/docs, /redoc, /openapi.json) off; by default they
are on, except with ``TIDINGS_ENV=production`` (issue 12, item 6)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import make_settings
from tidings.app import create_app

pytestmark = pytest.mark.anyio
DOCS = ("/docs", "/redoc", "/openapi.json")
PRODUCTION: dict[str, Any] = {"env": "production", "secret": "s" * 40, "operator_key": "o" * 40}


async def _statuses(tmp: Path, **overrides: Any) -> list[int]:
    app = create_app(make_settings(str(tmp), **overrides))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return [(await client.get(path)).status_code for path in DOCS]


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, 200),
        ({"docs": False}, 404),
        (PRODUCTION, 404),
        ({**PRODUCTION, "docs": True}, 200),
    ],
)
async def test_docs_switch(tmp_path: Path, overrides: dict[str, Any], expected: int) -> None:
    assert await _statuses(tmp_path, **overrides) == [expected] * len(DOCS)


@pytest.mark.parametrize(("enabled", "asked"), [(False, False), (True, True)])
async def test_opentelemetry_switch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, enabled: bool, asked: bool
) -> None:
    """FastAPI's native OpenTelemetry looks for a configured tracer provider on every request:
    only with ``TIDINGS_OPENTELEMETRY`` (off by default; tidings' metrics are Prometheus)."""
    from opentelemetry import trace

    looked: list[object] = []
    real = trace.get_tracer_provider

    def counted() -> trace.TracerProvider:
        looked.append(None)
        return real()

    monkeypatch.setattr(trace, "get_tracer_provider", counted)
    app = create_app(make_settings(str(tmp_path), opentelemetry=enabled))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.get("/docs")).status_code == 200
    assert bool(looked) is asked, looked
