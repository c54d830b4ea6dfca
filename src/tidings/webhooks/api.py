"""Webhook routes, twice: for the tenant's own backend (``/v1/webhooks/…``, an API key with the
``admin`` scope; 403 ``insufficient_scope`` without it) and for the operator
(``/v1/admin/tenants/{tenant_id}/webhooks/…``, ``TIDINGS_OPERATOR_KEY``). The same handlers
serve both; only the dependency that yields the tenant differs, and the tenant is never read
from a body or a query.
"""

# No ``from __future__ import annotations``: the handlers' annotations name the factory's local
# ``Tenant`` dependency, which FastAPI could not resolve from strings.
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request

from tidings.api.contract import raises
from tidings.api.deps import KeyDep, OperatorDep, ServiceDep, require_scope
from tidings.errors import Code
from tidings.store import tenants as tq
from tidings.webhooks.manage import Webhooks
from tidings.webhooks.schemas import (
    EndpointCreated,
    EndpointIn,
    EndpointOut,
    EndpointPatch,
    EndpointsOut,
    EventsOut,
    LogOut,
    RemovedOut,
    ReplayedOut,
    ReplayIn,
)

_ID = r"^[A-Za-z0-9_\-]+$"
EndpointId = Annotated[str, Path(min_length=1, max_length=40, pattern=_ID)]
EventId = Annotated[str, Path(min_length=1, max_length=40, pattern=_ID)]


async def webhooks(request: Request) -> Webhooks:
    found: Webhooks = request.app.state.webhooks
    return found


WebhooksDep = Annotated[Webhooks, Depends(webhooks)]


async def key_tenant(key: KeyDep) -> str:
    """The API key's tenant; the key needs the ``admin`` scope."""
    require_scope(key, "admin")
    return key.tenant


async def operator_tenant(
    _: OperatorDep,
    service: ServiceDep,
    tenant_id: Annotated[str, Path(min_length=1, max_length=64)],
) -> str:
    async with service.store.read() as conn:
        await tq.get_tenant(conn, tenant_id)  # 404 tenant_not_found
    return tenant_id


def build(prefix: str, owner: Callable[..., Awaitable[str]], tags: list[str]) -> APIRouter:
    router = APIRouter(prefix=prefix, tags=list(tags))
    Tenant = Annotated[str, Depends(owner)]
    tenant_codes = (Code.TENANT_NOT_FOUND,) if owner is operator_tenant else ()
    missing = raises(*tenant_codes, Code.WEBHOOK_ENDPOINT_NOT_FOUND)
    bad = (Code.UNKNOWN_EVENT_TYPE, Code.INVALID_WEBHOOK_URL)

    @router.post(
        "/endpoints",
        status_code=201,
        response_model=EndpointCreated,
        openapi_extra=raises(*tenant_codes, *bad, Code.TOO_MANY_WEBHOOKS),
    )
    async def add_endpoint(body: EndpointIn, tenant: Tenant, hooks: WebhooksDep) -> dict[str, Any]:
        """A new endpoint; its `secret` (`whsec_…`) is in this answer only."""
        created, secret = await hooks.add(
            tenant,
            url=body.url,
            event_types=body.event_types,
            description=body.description,
            enabled=body.enabled,
        )
        return {**created.public(), "secret": secret}

    @router.get("/endpoints", response_model=EndpointsOut, openapi_extra=raises(*tenant_codes))
    async def list_endpoints(tenant: Tenant, hooks: WebhooksDep) -> dict[str, Any]:
        return {"endpoints": [e.public() for e in await hooks.endpoints(tenant)]}

    @router.get("/endpoints/{endpoint_id}", response_model=EndpointOut, openapi_extra=missing)
    async def get_endpoint(
        tenant: Tenant, hooks: WebhooksDep, endpoint_id: EndpointId
    ) -> dict[str, Any]:
        return (await hooks.get(tenant, endpoint_id)).public()

    @router.patch(
        "/endpoints/{endpoint_id}",
        response_model=EndpointOut,
        openapi_extra=raises(*tenant_codes, Code.WEBHOOK_ENDPOINT_NOT_FOUND, *bad),
    )
    async def change_endpoint(
        body: EndpointPatch, tenant: Tenant, hooks: WebhooksDep, endpoint_id: EndpointId
    ) -> dict[str, Any]:
        """Change the URL, types or description; `enabled: true` re-enables an endpoint (its
        failure streak starts again and its pending deliveries resume, oldest first)."""
        values = body.model_dump(exclude_unset=True)
        for name in ("url", "event_types", "enabled"):
            if name in values and values[name] is None:
                del values[name]
        return (await hooks.change(tenant, endpoint_id, values)).public()

    @router.delete("/endpoints/{endpoint_id}", response_model=RemovedOut, openapi_extra=missing)
    async def remove_endpoint(
        tenant: Tenant, hooks: WebhooksDep, endpoint_id: EndpointId
    ) -> dict[str, Any]:
        await hooks.remove(tenant, endpoint_id)
        return {"id": endpoint_id, "removed": True}

    @router.get("/log", response_model=LogOut, openapi_extra=raises(*tenant_codes))
    async def delivery_log(
        tenant: Tenant,
        hooks: WebhooksDep,
        endpoint_id: Annotated[str | None, Query(max_length=40)] = None,
        before: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,  # an INTEGER id
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
    ) -> dict[str, Any]:
        """Attempts, give-ups and automatic disabling, newest first; `next_before` pages on."""
        entries = await hooks.log(tenant, endpoint_id=endpoint_id, before=before, limit=limit)
        return {
            "entries": entries,
            "next_before": entries[-1]["id"] if len(entries) == limit else None,
        }

    @router.get("/events", response_model=EventsOut, openapi_extra=raises(*tenant_codes))
    async def past_events(
        tenant: Tenant,
        hooks: WebhooksDep,
        type: Annotated[str | None, Query(max_length=64)] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
    ) -> dict[str, Any]:
        """The latest events (kept `TIDINGS_RETENTION_DAYS`), newest first, with their bodies."""
        return {"events": await hooks.events(tenant, event_type=type, limit=limit)}

    @router.post(
        "/events/{event_id}/replay",
        status_code=202,
        response_model=ReplayedOut,
        openapi_extra=raises(
            *tenant_codes, Code.WEBHOOK_EVENT_NOT_FOUND, Code.WEBHOOK_ENDPOINT_NOT_FOUND
        ),
    )
    async def replay(
        tenant: Tenant,
        hooks: WebhooksDep,
        event_id: EventId,
        body: Annotated[ReplayIn, Body(default_factory=ReplayIn)],
    ) -> dict[str, Any]:
        """Send a past event again, with its `webhook-id`: to `endpoint_id`, else to every
        enabled endpoint subscribed to its type; after what is already queued there."""
        queued = await hooks.replay(tenant, event_id, body.endpoint_id)
        return {"event_id": event_id, "queued": queued}

    return router


tenant_router = build("/v1/webhooks", key_tenant, ["webhooks"])
operator_router = build("/v1/admin/tenants/{tenant_id}/webhooks", operator_tenant, ["admin"])
