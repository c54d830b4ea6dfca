"""Operator API (``TIDINGS_OPERATOR_KEY``): tenants, API keys, signing keys, tokens for any
tenant."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from tidings import erasure
from tidings.api.contract import raises
from tidings.api.deps import OperatorDep, ServiceDep
from tidings.api.schemas import (
    KeyIn,
    KeyOut,
    KeysOut,
    NewKeyOut,
    NewSigningKeyOut,
    RemovalOut,
    SigningKeyIn,
    SigningKeyOut,
    SigningKeysOut,
    TenantIn,
    TenantOut,
    TenantsOut,
    TokenIn,
    TokenOut,
    UserRemovalOut,
)
from tidings.errors import Code
from tidings.store import tenants as tq

router = APIRouter(prefix="/v1/admin", tags=["admin"])


@router.post(
    "/tenants",
    status_code=201,
    response_model=TenantOut,
    openapi_extra=raises(Code.TENANT_EXISTS),
)
async def create_tenant(body: TenantIn, _: OperatorDep, service: ServiceDep) -> dict[str, Any]:
    return (await service.create_tenant(body.id, body.name)).public()


@router.get("/tenants", response_model=TenantsOut)
async def list_tenants(_: OperatorDep, service: ServiceDep) -> dict[str, Any]:
    return {"tenants": [t.public() for t in await service.list_tenants()]}


@router.delete(
    "/tenants/{tenant_id}",
    response_model=RemovalOut,
    openapi_extra=raises(Code.TENANT_NOT_FOUND),
)
async def delete_tenant(tenant_id: str, _: OperatorDep, service: ServiceDep) -> dict[str, Any]:
    """Delete the tenant and everything of it in one transaction: notifications, read state,
    API and signing keys, the channels' rows (push subscriptions, preferences, digests,
    reminders, delivery log), the demo's rows. ``removed``: rows per table. This instance's
    open streams of the tenant end (``streams_closed``). Irreversible."""
    return (await erasure.delete_tenant(service, tenant_id)).public()


@router.delete(
    "/tenants/{tenant_id}/users/{user}",
    response_model=UserRemovalOut,
    openapi_extra=raises(Code.TENANT_NOT_FOUND),
)
async def erase_user(
    tenant_id: str, user: str, _: OperatorDep, service: ServiceDep
) -> dict[str, Any]:
    """Erase what tidings holds about a user (GDPR): read state, receipts, notifications
    addressed only to the user (others: the user leaves their audience), preferences, push
    subscriptions, digest state, reminders addressed only to the user. Broadcasts and role
    audiences stay. ``removed``: rows per kind; an unknown user is not an error (all 0)."""
    also = tuple(service.user_erasers)  # the extensions' parts (tidings.hooks)
    return (await erasure.erase_user(service, tenant_id, user, also=also)).public()


@router.post(
    "/tenants/{tenant_id}/keys",
    status_code=201,
    response_model=NewKeyOut,
    openapi_extra=raises(Code.TENANT_NOT_FOUND),
)
async def create_key(
    tenant_id: str, body: KeyIn, _: OperatorDep, service: ServiceDep
) -> dict[str, Any]:
    """The whole key is in ``key`` of this answer and never shown again."""
    created, secret = await service.create_key(tenant_id, body.name, body.scopes)
    return {**created.public(), "key": secret}


@router.get(
    "/tenants/{tenant_id}/keys", response_model=KeysOut, openapi_extra=raises(Code.TENANT_NOT_FOUND)
)
async def list_keys(tenant_id: str, _: OperatorDep, service: ServiceDep) -> dict[str, Any]:
    return {"keys": [k.public() for k in await service.list_keys(tenant_id)]}


@router.delete("/keys/{key_id}", response_model=KeyOut, openapi_extra=raises(Code.KEY_NOT_FOUND))
async def revoke_key(key_id: str, _: OperatorDep, service: ServiceDep) -> dict[str, Any]:
    if not tq.KEY_ID.match(key_id):
        from tidings.errors import Code, NotFound

        raise NotFound(f"No API key {key_id!r}.", code=Code.KEY_NOT_FOUND)
    return (await service.revoke_key(key_id)).public()


@router.post(
    "/tenants/{tenant_id}/signing-keys",
    status_code=201,
    response_model=NewSigningKeyOut,
    openapi_extra=raises(Code.TENANT_NOT_FOUND),
)
async def create_signing_key(
    tenant_id: str, body: SigningKeyIn, _: OperatorDep, service: ServiceDep
) -> dict[str, Any]:
    """A key for a host that signs its own stream tokens: HS256 with ``secret``, header
    ``kid``; accepted only for this tenant. ``secret`` is in this answer and never again."""
    created, secret = await service.create_signing_key(tenant_id, body.name)
    return {**created.public(), "secret": secret}


@router.get(
    "/tenants/{tenant_id}/signing-keys",
    response_model=SigningKeysOut,
    openapi_extra=raises(Code.TENANT_NOT_FOUND),
)
async def list_signing_keys(tenant_id: str, _: OperatorDep, service: ServiceDep) -> dict[str, Any]:
    return {"signing_keys": [k.public() for k in await service.list_signing_keys(tenant_id)]}


@router.delete(
    "/signing-keys/{kid}",
    response_model=SigningKeyOut,
    openapi_extra=raises(Code.SIGNING_KEY_NOT_FOUND),
)
async def revoke_signing_key(kid: str, _: OperatorDep, service: ServiceDep) -> dict[str, Any]:
    """Tokens signed with the key stop verifying: at once on this instance, on the others
    within ``TIDINGS_SIGNING_KEY_CACHE`` seconds."""
    return (await service.revoke_signing_key(kid)).public()


@router.post(
    "/tenants/{tenant_id}/tokens",
    status_code=201,
    response_model=TokenOut,
    openapi_extra=raises(Code.TENANT_NOT_FOUND),
)
async def mint(
    tenant_id: str, body: TokenIn, _: OperatorDep, service: ServiceDep
) -> dict[str, Any]:
    async with service.store.read() as conn:
        await tq.get_tenant(conn, tenant_id)
    token, expires = service.mint_token(
        tenant_id, body.user, body.roles, ttl=body.ttl, email=body.email, locale=body.locale
    )
    return {
        "token": token,
        "expires_at": expires.isoformat().replace("+00:00", "Z"),
        "tenant": tenant_id,
        "user": body.user,
    }
