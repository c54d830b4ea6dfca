"""``POST /v1/tokens``: a host backend mints a stream token for one of its users."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from tidings.api.deps import KeyDep, ServiceDep, require_scope
from tidings.api.schemas import TokenIn, TokenOut

router = APIRouter(tags=["tokens"])


@router.post("/v1/tokens", status_code=201, response_model=TokenOut)
async def mint(body: TokenIn, key: KeyDep, service: ServiceDep) -> dict[str, Any]:
    require_scope(key, "tokens")
    token, expires = service.mint_token(
        key.tenant, body.user, body.roles, ttl=body.ttl, email=body.email, locale=body.locale
    )
    return {
        "token": token,
        "expires_at": expires.isoformat().replace("+00:00", "Z"),
        "tenant": key.tenant,
        "user": body.user,
    }
