"""The one place where errors become HTTP: ``application/problem+json`` (RFC 9457).

Every response carries ``type``, ``title``, ``status``, ``detail`` and a stable ``code``.
Unexpected exceptions are logged and answered 500 without internals.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from tidings.errors import TidingsError

log = logging.getLogger(__name__)

PROBLEM_BASE = "https://tidings.dev/problems/"
MEDIA_TYPE = "application/problem+json"

_HTTP_CODES = {
    400: ("bad_request", "Bad request"),
    401: ("invalid_credentials", "Unauthorized"),
    403: ("forbidden", "Forbidden"),
    404: ("not_found", "Not found"),
    405: ("method_not_allowed", "Method not allowed"),
    406: ("not_acceptable", "Not acceptable"),
    413: ("payload_too_large", "Payload too large"),
    415: ("unsupported_media_type", "Unsupported media type"),
    429: ("rate_limited", "Too many requests"),
}


def problem(
    status: int,
    code: str,
    title: str,
    detail: str,
    *,
    extra: dict[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + code,
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if extra:
        body.update(extra)
    return Response(orjson.dumps(body), status_code=status, media_type=MEDIA_TYPE, headers=headers)


def from_error(error: TidingsError) -> Response:
    return problem(
        error.status,
        error.code,
        error.title,
        error.detail,
        extra=error.extra,
        headers=error.headers,
    )


def _validation(request: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError)
    errors = []
    content_type = request.headers.get("content-type", "")
    body_errors = [e for e in error.errors() if tuple(e.get("loc", ()))[:1] == ("body",)]
    if body_errors and "json" not in content_type.lower():
        return problem(
            415,
            "unsupported_media_type",
            "Unsupported media type",
            "Send the body as JSON with 'Content-Type: application/json'.",
        )
    for item in error.errors():
        if item.get("type") == "json_invalid":
            return problem(
                400, "invalid_json", "Invalid JSON", "The request body is not valid JSON."
            )
        errors.append(
            {
                "loc": [str(part) for part in item.get("loc", ())],
                "msg": str(item.get("msg", "")),
                "type": str(item.get("type", "")),
            }
        )
    first = errors[0] if errors else {"loc": [], "msg": "invalid"}
    where = ".".join(p for p in first["loc"] if p not in ("body",)) or "request"
    return problem(
        422,
        "validation_failed",
        "Validation failed",
        f"{where}: {first['msg']}",
        extra={"errors": errors},
    )


def install(app: FastAPI) -> None:
    async def on_tidings(_: Request, error: Exception) -> Response:
        assert isinstance(error, TidingsError)
        return from_error(error)

    async def on_validation(request: Request, error: Exception) -> Response:
        return _validation(request, error)

    async def on_http(_: Request, error: Exception) -> Response:
        assert isinstance(error, HTTPException)
        code, title = _HTTP_CODES.get(error.status_code, ("error", "Error"))
        detail = error.detail if isinstance(error.detail, str) else title
        return problem(error.status_code, code, title, detail, headers=error.headers)

    async def on_unexpected(request: Request, error: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(500, "internal", "Internal error", "An unexpected error occurred.")

    app.add_exception_handler(TidingsError, on_tidings)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(HTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)
