"""The one exception tree of tidings and its catalogue of error codes. Domain, store and
delivery raise these; ``api/problems.py`` turns them into ``application/problem+json`` responses
in exactly one place.

::

    TidingsError                       (500 internal)
    ├── BadRequest                     400  bad_request, invalid_json, invalid_cursor,
    │   │                                   invalid_event_id, invalid_unsubscribe_token
    │   └── ValidationFailed           422  validation_failed, idempotency_key_mismatch,
    │                                       invalid_subscription, unknown_move
    ├── PayloadTooLarge                413  payload_too_large, too_many_targets
    ├── Unauthorized                   401  invalid_credentials, missing_credentials,
    │                                       token_expired, key_revoked, sign_in_required
    ├── Forbidden                      403  forbidden, insufficient_scope, wrong_tenant,
    │                                       csrf_failed, owner_only
    ├── NotFound                       404  not_found, tenant_not_found, key_not_found, …
    ├── Conflict                       409  conflict, tenant_exists, too_many_reminders, …
    ├── TooManyRequests                429  rate_limited, too_many_streams, sign_in_throttled
    └── Unavailable                    503  store_unavailable, shutting_down, channels_off,
                                            push_unavailable

Every error has a stable ``code`` that clients may switch on: a member of :class:`Code`, which
carries its HTTP status and title (the catalogue; ``docs/problems.md`` documents each one).
Invariant, kept by ``tests/core/test_error_catalogue.py``: every code raised anywhere is a
:class:`Code` member whose status is the status of the exception class that raises it.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, ClassVar


class Code(StrEnum):
    """The catalogue of problem codes: ``Code.X`` is the string clients see in ``code``, with
    the HTTP ``status`` it is answered with and its human ``problem_title``."""

    status: int
    problem_title: str  # not ``title``: that is str.title()

    def __new__(cls, value: str, status: int = 500, problem_title: str = "") -> Code:
        member = str.__new__(cls, value)
        member._value_ = value
        member.status = status
        member.problem_title = problem_title
        return member

    # 400
    BAD_REQUEST = "bad_request", 400, "Bad request"
    INVALID_JSON = "invalid_json", 400, "Invalid JSON"
    INVALID_CURSOR = "invalid_cursor", 400, "Invalid cursor"
    INVALID_EVENT_ID = "invalid_event_id", 400, "Invalid event id"
    INVALID_UNSUBSCRIBE_TOKEN = "invalid_unsubscribe_token", 400, "Invalid unsubscribe link"
    # 401
    INVALID_CREDENTIALS = "invalid_credentials", 401, "Unauthorized"
    MISSING_CREDENTIALS = "missing_credentials", 401, "Credentials required"
    TOKEN_EXPIRED = "token_expired", 401, "Token expired"
    KEY_REVOKED = "key_revoked", 401, "API key revoked"
    SIGN_IN_REQUIRED = "sign_in_required", 401, "Sign in required"
    # 403
    FORBIDDEN = "forbidden", 403, "Forbidden"
    INSUFFICIENT_SCOPE = "insufficient_scope", 403, "Insufficient scope"
    WRONG_TENANT = "wrong_tenant", 403, "Wrong tenant"
    CSRF_FAILED = "csrf_failed", 403, "CSRF check failed"
    OWNER_ONLY = "owner_only", 403, "Owners only"
    CORS_ORIGIN_NOT_ALLOWED = "cors_origin_not_allowed", 403, "Origin not allowed"
    # 404
    NOT_FOUND = "not_found", 404, "Not found"
    TENANT_NOT_FOUND = "tenant_not_found", 404, "Tenant not found"
    KEY_NOT_FOUND = "key_not_found", 404, "API key not found"
    SIGNING_KEY_NOT_FOUND = "signing_key_not_found", 404, "Signing key not found"
    NOTIFICATION_NOT_FOUND = "notification_not_found", 404, "Notification not found"
    SUBSCRIPTION_NOT_FOUND = "subscription_not_found", 404, "Push subscription not found"
    USER_NOT_FOUND = "user_not_found", 404, "User not found"
    OUTBOX_DISABLED = "outbox_disabled", 404, "Outbox off"
    OUTBOX_ROW_NOT_FOUND = "outbox_row_not_found", 404, "Outbox row not found"
    REMINDER_NOT_FOUND = "reminder_not_found", 404, "Reminder not found"
    BOOKING_NOT_FOUND = "booking_not_found", 404, "Booking not found"
    TEMPLATE_NOT_FOUND = "template_not_found", 404, "Template not found"  # issue 10 (l10n)
    WEBHOOK_ENDPOINT_NOT_FOUND = "webhook_endpoint_not_found", 404, "Webhook endpoint not found"
    WEBHOOK_EVENT_NOT_FOUND = "webhook_event_not_found", 404, "Webhook event not found"
    # 405, 406
    METHOD_NOT_ALLOWED = "method_not_allowed", 405, "Method not allowed"
    NOT_ACCEPTABLE = "not_acceptable", 406, "Not acceptable"
    # 409
    CONFLICT = "conflict", 409, "Conflict"
    TENANT_EXISTS = "tenant_exists", 409, "Tenant exists"
    TOO_MANY_REMINDERS = "too_many_reminders", 409, "Too many pending reminders"
    TOO_MANY_SUBSCRIPTIONS = "too_many_subscriptions", 409, "Too many push subscriptions"
    BOOKING_CANCELLED = "booking_cancelled", 409, "Booking cancelled"
    IMPOSSIBLE_MOVE = "impossible_move", 409, "Impossible move"
    TOO_MANY_TEMPLATES = "too_many_templates", 409, "Too many templates"  # issue 10 (l10n)
    TOO_MANY_WEBHOOKS = "too_many_webhooks", 409, "Too many webhook endpoints"
    # 413
    PAYLOAD_TOO_LARGE = "payload_too_large", 413, "Payload too large"
    TOO_MANY_TARGETS = "too_many_targets", 413, "Too many audience targets"
    # 415
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type", 415, "Unsupported media type"
    # 422
    VALIDATION_FAILED = "validation_failed", 422, "Validation failed"
    IDEMPOTENCY_KEY_MISMATCH = "idempotency_key_mismatch", 422, "Idempotency key reused"
    INVALID_SUBSCRIPTION = "invalid_subscription", 422, "Invalid push subscription"
    UNKNOWN_MOVE = "unknown_move", 422, "Unknown move"
    INVALID_TEMPLATE = "invalid_template", 422, "Invalid template"  # issue 10 (l10n)
    TEMPLATE_FAILED = "template_failed", 422, "Template failed"  # issue 10 (l10n)
    UNKNOWN_EVENT_TYPE = "unknown_event_type", 422, "Unknown event type"
    INVALID_WEBHOOK_URL = "invalid_webhook_url", 422, "Invalid webhook URL"
    # 429
    RATE_LIMITED = "rate_limited", 429, "Too many requests"
    TOO_MANY_STREAMS = "too_many_streams", 429, "Too many streams"
    SIGN_IN_THROTTLED = "sign_in_throttled", 429, "Too many sign-in attempts"
    # 500, 503
    INTERNAL = "internal", 500, "Internal error"
    STORE_UNAVAILABLE = "store_unavailable", 503, "Service unavailable"
    SHUTTING_DOWN = "shutting_down", 503, "Shutting down"
    CHANNELS_OFF = "channels_off", 503, "Channels not running"
    PUSH_UNAVAILABLE = "push_unavailable", 503, "Push unavailable"
    OUTBOX_UNAVAILABLE = "outbox_unavailable", 503, "Outbox database unavailable"

    @classmethod
    def of_status(cls, status: int) -> list[Code]:
        """Every code answered with ``status``, in catalogue order."""
        return [code for code in cls if code.status == status]


class TidingsError(Exception):
    """Base of every error tidings raises on purpose. ``code`` is a :class:`Code` whose status
    is this class's ``status``; the problem's title is the code's."""

    status: ClassVar[int] = 500
    default_code: ClassVar[Code] = Code.INTERNAL

    def __init__(
        self,
        detail: str,
        *,
        code: Code | None = None,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.code: Code = code or self.default_code
        self.extra = extra or {}
        self.headers = headers or {}

    @property
    def title(self) -> str:
        return self.code.problem_title


class BadRequest(TidingsError):
    status = 400
    default_code = Code.BAD_REQUEST


class ValidationFailed(BadRequest):
    status = 422
    default_code = Code.VALIDATION_FAILED


class PayloadTooLarge(TidingsError):
    status = 413
    default_code = Code.PAYLOAD_TOO_LARGE


class Unauthorized(TidingsError):
    status = 401
    default_code = Code.INVALID_CREDENTIALS


class Forbidden(TidingsError):
    status = 403
    default_code = Code.FORBIDDEN


class NotFound(TidingsError):
    status = 404
    default_code = Code.NOT_FOUND


class Conflict(TidingsError):
    status = 409
    default_code = Code.CONFLICT


class TooManyRequests(TidingsError):
    status = 429
    default_code = Code.RATE_LIMITED

    def __init__(self, detail: str, *, code: Code | None = None, retry_after: int = 1) -> None:
        super().__init__(detail, code=code, headers={"Retry-After": str(max(1, retry_after))})
        self.retry_after = retry_after


class Unavailable(TidingsError):
    status = 503
    default_code = Code.STORE_UNAVAILABLE

    def __init__(self, detail: str, *, code: Code | None = None, retry_after: int = 1) -> None:
        super().__init__(detail, code=code, headers={"Retry-After": str(max(1, retry_after))})
