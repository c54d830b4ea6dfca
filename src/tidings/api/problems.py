"""The one place where errors become HTTP: ``application/problem+json`` (RFC 9457).

Every response carries ``type``, ``title``, ``status``, ``detail`` and a stable ``code``.
Unexpected exceptions are logged and answered 500 without internals.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from tidings.errors import Code, TidingsError

log = logging.getLogger(__name__)

PROBLEM_BASE = "https://tidings.dev/problems/"
MEDIA_TYPE = "application/problem+json"

_HTTP_CODES = {
    code.status: code
    for code in (
        Code.BAD_REQUEST,
        Code.INVALID_CREDENTIALS,
        Code.FORBIDDEN,
        Code.NOT_FOUND,
        Code.METHOD_NOT_ALLOWED,
        Code.NOT_ACCEPTABLE,
        Code.PAYLOAD_TOO_LARGE,
        Code.UNSUPPORTED_MEDIA_TYPE,
        Code.RATE_LIMITED,
    )
}
"""Starlette's own HTTP errors (unknown route, wrong method…) by status; others answer
``bad_request`` (4xx) or ``internal`` (5xx) with their own status."""


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
    return Response(_json(body), status_code=status, media_type=MEDIA_TYPE, headers=headers)


def _json(body: dict[str, Any]) -> bytes:
    """The problem as JSON. A detail that echoes the request may hold a lone surrogate (a JSON
    string may escape one, and UTF-8 cannot carry it): such a body is written with every
    non-ASCII character escaped, so the answer is still the problem, never a dropped
    connection."""
    try:
        return orjson.dumps(body)
    except TypeError:
        return json.dumps(body, ensure_ascii=True).encode()


def of(
    code: Code,
    detail: str,
    *,
    extra: dict[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """The problem for ``code``, with its catalogued status and title."""
    return problem(code.status, code, code.problem_title, detail, extra=extra, headers=headers)


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
        return of(
            Code.UNSUPPORTED_MEDIA_TYPE,
            "Send the body as JSON with 'Content-Type: application/json'.",
        )
    for item in error.errors():
        if item.get("type") == "json_invalid":
            return of(Code.INVALID_JSON, "The request body is not valid JSON.")
        errors.append(
            {
                "loc": [str(part) for part in item.get("loc", ())],
                "msg": str(item.get("msg", "")),
                "type": str(item.get("type", "")),
            }
        )
    first = errors[0] if errors else {"loc": [], "msg": "invalid"}
    where = ".".join(p for p in first["loc"] if p not in ("body",)) or "request"
    return of(Code.VALIDATION_FAILED, f"{where}: {first['msg']}", extra={"errors": errors})


def install(app: FastAPI) -> None:
    """The handlers that turn errors into problems, and the contract that documents them
    (:mod:`tidings.api.contract`: ``/openapi.json``)."""
    from tidings.api import contract

    contract.install(app)

    async def on_tidings(_: Request, error: Exception) -> Response:
        assert isinstance(error, TidingsError)
        return from_error(error)

    async def on_validation(request: Request, error: Exception) -> Response:
        return _validation(request, error)

    async def on_http(_: Request, error: Exception) -> Response:
        assert isinstance(error, HTTPException)
        fallback = Code.BAD_REQUEST if error.status_code < 500 else Code.INTERNAL
        code = _HTTP_CODES.get(error.status_code, fallback)
        detail = error.detail if isinstance(error.detail, str) else code.problem_title
        return problem(error.status_code, code, code.problem_title, detail, headers=error.headers)

    async def on_unexpected(request: Request, error: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return of(Code.INTERNAL, "An unexpected error occurred.")

    app.add_exception_handler(TidingsError, on_tidings)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(HTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)
