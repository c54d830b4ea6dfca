"""The one exception tree of tidings. Domain, store and delivery raise these; ``api/problems.py``
turns them into ``application/problem+json`` responses in exactly one place.

::

    TidingsError                       (500 internal)
    ├── BadRequest                     400  invalid_json, invalid_cursor, bad_request
    │   └── ValidationFailed           422  validation_failed, idempotency_key_mismatch
    ├── PayloadTooLarge                413  payload_too_large
    ├── Unauthorized                   401  missing_credentials, invalid_credentials,
    │                                       token_expired, key_revoked
    ├── Forbidden                      403  wrong_tenant, insufficient_scope
    ├── NotFound                       404  not_found, tenant_not_found, notification_not_found
    ├── Conflict                       409  conflict, tenant_exists
    ├── TooManyRequests                429  too_many_streams, rate_limited
    └── Unavailable                    503  store_unavailable, shutting_down

Every error has a stable ``code`` that clients may switch on; titles are for humans.
"""

from __future__ import annotations

from typing import Any, ClassVar


class TidingsError(Exception):
    """Base of every error tidings raises on purpose."""

    status: ClassVar[int] = 500
    default_code: ClassVar[str] = "internal"
    title: ClassVar[str] = "Internal error"

    def __init__(
        self,
        detail: str,
        *,
        code: str | None = None,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code or self.default_code
        self.extra = extra or {}
        self.headers = headers or {}


class BadRequest(TidingsError):
    status = 400
    default_code = "bad_request"
    title = "Bad request"


class ValidationFailed(BadRequest):
    status = 422
    default_code = "validation_failed"
    title = "Validation failed"


class PayloadTooLarge(TidingsError):
    status = 413
    default_code = "payload_too_large"
    title = "Payload too large"


class Unauthorized(TidingsError):
    status = 401
    default_code = "invalid_credentials"
    title = "Unauthorized"


class Forbidden(TidingsError):
    status = 403
    default_code = "forbidden"
    title = "Forbidden"


class NotFound(TidingsError):
    status = 404
    default_code = "not_found"
    title = "Not found"


class Conflict(TidingsError):
    status = 409
    default_code = "conflict"
    title = "Conflict"


class TooManyRequests(TidingsError):
    status = 429
    default_code = "rate_limited"
    title = "Too many requests"

    def __init__(self, detail: str, *, code: str | None = None, retry_after: int = 1) -> None:
        super().__init__(detail, code=code, headers={"Retry-After": str(max(1, retry_after))})
        self.retry_after = retry_after


class Unavailable(TidingsError):
    status = 503
    default_code = "store_unavailable"
    title = "Service unavailable"

    def __init__(self, detail: str, *, code: str | None = None, retry_after: int = 1) -> None:
        super().__init__(detail, code=code, headers={"Retry-After": str(max(1, retry_after))})
