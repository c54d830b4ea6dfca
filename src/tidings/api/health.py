"""Liveness, readiness and metrics."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import PlainTextResponse, Response

from tidings.api.contract import raises
from tidings.api.deps import ServiceDep
from tidings.api.schemas import HealthOut, ReadyOut
from tidings.errors import Code

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=HealthOut)
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", response_model=ReadyOut, openapi_extra=raises(Code.SHUTTING_DOWN))
async def readyz(service: ServiceDep) -> dict[str, object]:
    """200 when the store answers and the instance is not shutting down; 503 otherwise."""
    await service.store.ping()
    if service.hub.closing:
        from tidings.errors import Code, Unavailable

        raise Unavailable("This instance is shutting down.", code=Code.SHUTTING_DOWN)
    return {"status": "ready", "streams": service.hub.stream_count}


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(service: ServiceDep) -> Response:
    return Response(service.metrics.render(), media_type="text/plain; version=0.0.4")
