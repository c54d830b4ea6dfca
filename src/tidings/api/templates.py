"""Per-type notification templates (issue 10 item 5; API key with the ``admin`` scope, or the
operator for any tenant). The tenant is the key's (or the path's, for the operator).

``PUT /v1/templates/{type}`` registers a type's title and body template per locale; a publish
of that type without ``title`` is then rendered from them (docs/i18n.md).
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Path, Response
from pydantic import Field

from tidings.api.contract import raises
from tidings.api.deps import KeyDep, OperatorDep, ServiceDep, require_scope
from tidings.api.schemas import Out, Strict
from tidings.domain.locales import LOCALE_PATTERN
from tidings.domain.templating import MAX_SOURCE
from tidings.errors import Code
from tidings.store import tenants as tq
from tidings.store.templates import TemplateSet

router = APIRouter(tags=["templates"])

TypePath = Path(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_.]*$")
TenantPath = Path(min_length=1, max_length=63, pattern=r"^[a-z0-9][a-z0-9-]*$")


class LocaleTemplate(Strict):
    """One locale's templates: Jinja (sandboxed), rendered as plain text."""

    title: str = Field(min_length=1, max_length=MAX_SOURCE["title"])
    body: str = Field(default="", max_length=MAX_SOURCE["body"])


class TemplateIn(Strict):
    default_locale: str = Field(
        max_length=64,
        pattern=LOCALE_PATTERN,
        description="The locale of the notification's own title/body (readers without one of "
        "none of the locales see it); one of `locales`.",
    )
    locales: dict[str, LocaleTemplate] = Field(
        min_length=1, max_length=100, description="BCP 47 tag → title and body templates."
    )


class TemplateOut(Out):
    type: str
    default_locale: str
    locales: dict[str, dict[str, str]]
    updated_at: str


class TemplatesOut(Out):
    templates: list[TemplateOut]


CODES = raises(Code.INVALID_TEMPLATE, Code.TOO_MANY_TEMPLATES)
MISSING = raises(Code.TEMPLATE_NOT_FOUND)


def _saved(found: TemplateSet, created: bool) -> Response:
    """201 when the type had no templates, 200 when they were replaced."""
    content = orjson.dumps(found.public())
    return Response(content, status_code=201 if created else 200, media_type="application/json")


@router.get("/v1/templates", response_model=TemplatesOut)
async def list_templates(key: KeyDep, service: ServiceDep) -> dict[str, Any]:
    require_scope(key, "admin")
    return {"templates": [t.public() for t in await service.templates.all(key.tenant)]}


@router.get("/v1/templates/{type}", response_model=TemplateOut, openapi_extra=MISSING)
async def get_template(key: KeyDep, service: ServiceDep, type: str = TypePath) -> dict[str, Any]:
    require_scope(key, "admin")
    return (await service.templates.get(key.tenant, type)).public()


@router.put(
    "/v1/templates/{type}",
    response_model=None,
    responses={201: {"model": TemplateOut}, 200: {"model": TemplateOut}},
    openapi_extra=CODES,
)
async def put_template(
    body: TemplateIn, key: KeyDep, service: ServiceDep, type: str = TypePath
) -> Response:
    """Register (201) or replace (200) the type's templates, every locale at once. A template
    that does not compile is refused (422 ``invalid_template``) and nothing changes."""
    require_scope(key, "admin")
    locales = {tag: pair.model_dump() for tag, pair in body.locales.items()}
    found, created = await service.templates.put(key.tenant, type, body.default_locale, locales)
    return _saved(found, created)


@router.delete("/v1/templates/{type}", response_model=TemplateOut, openapi_extra=MISSING)
async def delete_template(key: KeyDep, service: ServiceDep, type: str = TypePath) -> dict[str, Any]:
    """Forget the type's templates (answered with them): publishes of the type need a title
    again; notifications already stored keep their text."""
    require_scope(key, "admin")
    return (await service.templates.remove(key.tenant, type)).public()


@router.put(
    "/v1/admin/tenants/{tenant_id}/templates/{type}",
    response_model=None,
    responses={201: {"model": TemplateOut}, 200: {"model": TemplateOut}},
    openapi_extra=raises(Code.INVALID_TEMPLATE, Code.TOO_MANY_TEMPLATES, Code.TENANT_NOT_FOUND),
)
async def operator_put_template(
    body: TemplateIn,
    _: OperatorDep,
    service: ServiceDep,
    tenant_id: str = TenantPath,
    type: str = TypePath,
) -> Response:
    """The operator registers a type's templates for any tenant (as ``PUT /v1/templates``)."""
    async with service.store.read() as conn:
        await tq.get_tenant(conn, tenant_id)
    locales = {tag: pair.model_dump() for tag, pair in body.locales.items()}
    found, created = await service.templates.put(tenant_id, type, body.default_locale, locales)
    return _saved(found, created)
