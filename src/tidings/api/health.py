"""Liveness, readiness and metrics."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from tidings.api.deps import ServiceDep

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(service: ServiceDep) -> dict[str, object]:
    """200 when the store answers and the instance is not shutting down; 503 otherwise."""
    await service.store.ping()
    if service.hub.closing:
        from tidings.errors import Unavailable

        raise Unavailable("This instance is shutting down.", code="shutting_down")
    return {"status": "ready", "streams": service.hub.stream_count}


@router.get("/metrics")
async def metrics(service: ServiceDep) -> Response:
    return Response(service.metrics.render(), media_type="text/plain; version=0.0.4")
