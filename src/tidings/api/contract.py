"""The OpenAPI contract that clients are generated from (``/openapi.json``, ``docs/openapi.json``).

FastAPI documents the routes' parameters, bodies and response models; this module adds what it
cannot see, derived from the routes themselves so a new route is documented without a list here:

- **security**: which credential a route takes, read from its dependencies
  (``user_principal``, ``stream_principal``, ``key_principal``, ``operator`` in ``api/deps.py``);
- **problems**: every error status a route can answer, as ``application/problem+json`` with the
  :class:`Problem` schema and the exact ``code`` values (an enum) for that route and status —
  the common ones (credentials, URL, body, validation) from the route's dependencies and
  parameters, the route's own from :func:`raises` in its decorator;
- **the event stream**: ``/v1/stream`` as ``text/event-stream`` with its event names
  (``docs/protocol.md``); any other route that takes a stream token as ``?access_token=``
  (``stream_principal``) is an event stream too.

Invariant: a status or code a route answers that is not in its operation here is a bug in the
route or in this contract; ``tests/test_contract.py`` (schemathesis against a live server)
finds both. ``tidings openapi`` writes the document to ``docs/openapi.json``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import models_json_schema

from tidings.api import deps
from tidings.api.schemas import (
    ArchivedEvent,
    EndEvent,
    NotificationOut,
    ReadEvent,
    RestoredEvent,
    SnapshotEvent,
    SnoozedEvent,
    UnsnoozedEvent,
)
from tidings.errors import Code

PROBLEM = "application/problem+json"
EVENT_STREAM = "text/event-stream"
_CODES = "x-problem-codes"
_STREAM = "x-event-stream"


class Problem(BaseModel):
    """An error (RFC 9457). ``code`` is stable: switch on it; ``title`` is for humans. Some
    problems add members (``errors`` on a 422 of the request's shape)."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description="https://tidings.dev/problems/<code>")
    title: str
    status: int
    detail: str
    code: Code


def raises(*codes: Code) -> dict[str, Any]:
    """``openapi_extra`` for a route decorator: the problem codes its handler (or what it calls)
    answers besides the common ones this module derives."""
    return {_CODES: [str(code) for code in codes]}


def event_stream(*codes: Code) -> dict[str, Any]:
    """``openapi_extra`` for an event stream whose credential dependency calls
    ``stream_principal`` itself (not through ``Depends``): documented like one that does."""
    return {**raises(*codes), _STREAM: True}


SECURITY_SCHEMES: dict[str, Any] = {
    "apiKey": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "tdg_<keyid>_<secret>",
        "description": "A tenant's API key (host backends), `Authorization: Bearer <key>`; "
        "its scopes (`publish`, `tokens`, `admin`) are checked per route.",
    },
    "streamToken": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "A user's stream token (`POST /v1/tokens`), `Authorization: Bearer <jwt>`.",
    },
    "streamTokenCookie": {
        "type": "apiKey",
        "in": "cookie",
        "name": deps.COOKIE,
        "description": "The stream token as the `tidings_token` cookie.",
    },
    "streamTokenQuery": {
        "type": "apiKey",
        "in": "query",
        "name": "access_token",
        "description": "The stream token as `?access_token=` (`GET /v1/stream` only: an "
        "EventSource cannot send headers).",
    },
    "operatorKey": {
        "type": "http",
        "scheme": "bearer",
        "description": "The operator key (`TIDINGS_OPERATOR_KEY`, or `tidings operator-key`), "
        "`Authorization: Bearer <key>`.",
    },
}

_STREAM_TOKEN: list[dict[str, list[str]]] = [{"streamToken": []}, {"streamTokenCookie": []}]
_CREDENTIALS: dict[Callable[..., Any], tuple[list[dict[str, list[str]]], tuple[Code, ...]]] = {
    deps.user_principal: (
        _STREAM_TOKEN,
        (Code.MISSING_CREDENTIALS, Code.INVALID_CREDENTIALS, Code.TOKEN_EXPIRED),
    ),
    deps.stream_principal: (
        [*_STREAM_TOKEN, {"streamTokenQuery": []}],
        (Code.MISSING_CREDENTIALS, Code.INVALID_CREDENTIALS, Code.TOKEN_EXPIRED),
    ),
    deps.key_principal: (
        [{"apiKey": []}],
        (
            Code.MISSING_CREDENTIALS,
            Code.INVALID_CREDENTIALS,
            Code.KEY_REVOKED,
            Code.INSUFFICIENT_SCOPE,
            Code.STORE_UNAVAILABLE,
        ),
    ),
    deps.operator: ([{"operatorKey": []}], (Code.MISSING_CREDENTIALS, Code.INVALID_CREDENTIALS)),
}
"""Credential dependency → (security requirement, the codes checking it may answer)."""

_EVENTS: dict[str, Any] = {
    "ready": "Once, first: `{unread, latest_seq, latest, user}`; `id: <latest_seq>` when not"
    " resuming. A notification whose `actor.id` is `user` arrives read.",
    "reset": "Instead of a replay when the resume point cannot be honoured: like `ready`.",
    "notification": "`id: <seq>`, data: a notification (`NotificationOut`), replayed then live.",
    "read": "Ephemeral: `{ids | all, up_to, unread}` when the user read on any device.",
    "archived": "Ephemeral: `{ids, unread}`.",
    "unread": "Ephemeral: `{ids, items, unread}` marked unread again (a snooze on them ended).",
    "unarchived": "Ephemeral: `{ids, items, unread}` back in the inbox.",
    "snoozed": "Ephemeral: `{ids, until, unread}` out of the inbox and the count until `until`.",
    "unsnoozed": "Ephemeral: `{ids, items}` a snooze ended: unread again, add them to the count.",
    "expired": "Last: `{reason: token_expired}`; reconnect with a new token.",
    "bye": "Last: `{reason: overflow | shutdown | gap}`; reconnect after `retry`.",
}


def install(app: FastAPI) -> None:
    """Serve :func:`openapi` as the app's ``/openapi.json`` (built once, on first use)."""

    def cached() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = openapi(app)
        return app.openapi_schema

    app.openapi = cached  # type: ignore[method-assign]


def openapi(app: FastAPI) -> dict[str, Any]:
    """The whole document: FastAPI's, completed as the module docstring says."""
    spec = get_openapi(
        title=app.title,
        version=app.version,
        summary=app.summary,
        description=app.description,
        routes=app.routes,
    )
    components = spec.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    problem = Problem.model_json_schema()
    problem.pop("$defs", None)
    problem["properties"]["code"] = {"$ref": "#/components/schemas/Code"}
    schemas["Problem"] = problem
    schemas["Code"] = {
        "type": "string",
        "enum": [str(code) for code in Code],
        "description": "Every problem code (docs/problems.md).",
    }
    _event_schemas(schemas)
    components["securitySchemes"] = SECURITY_SCHEMES
    for route, method in _operations(app):
        operation = spec["paths"][route.path_format][method.lower()]
        _complete(route, operation)
    return spec


def _operations(app: FastAPI) -> Iterator[tuple[RouteContext, str]]:
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, APIRoute) and context.include_in_schema:
            for method in sorted(context.methods or ()):
                yield context, method


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for sub in dependant.dependencies:
        if sub.call is not None:
            yield sub.call
        yield from _calls(sub)


def _all(dependant: Dependant) -> Iterator[Dependant]:
    yield dependant
    for sub in dependant.dependencies:
        yield from _all(sub)


def _complete(route: RouteContext, operation: dict[str, Any]) -> None:
    codes: list[Code] = [Code.BAD_REQUEST]  # a NUL in the URL, on every route (app.TextTarget)
    calls = list(_calls(route.dependant))
    if operation.pop(_STREAM, False):
        calls.append(deps.stream_principal)
    for call in calls:
        if call in _CREDENTIALS:
            security, checked = _CREDENTIALS[call]
            operation["security"] = security
            codes += checked
        elif call is deps.get_service:  # the route reads or writes the store
            codes.append(Code.STORE_UNAVAILABLE)
    every = list(_all(route.dependant))
    if any(d.body_params for d in every):
        codes += (Code.INVALID_JSON, Code.PAYLOAD_TOO_LARGE, Code.UNSUPPORTED_MEDIA_TYPE)
    if any(d.body_params or d.query_params or d.path_params or d.header_params for d in every):
        codes.append(Code.VALIDATION_FAILED)
    codes += [Code(code) for code in operation.pop(_CODES, [])]
    responses: dict[str, Any] = operation.setdefault("responses", {})
    for answered in [s for s in responses if s.startswith(("4", "5"))]:
        del responses[answered]  # FastAPI's own 422 (HTTPValidationError): not what we send
    for status, of_status in _by_status(codes):
        responses[str(status)] = {
            "description": ", ".join(f"`{code}`" for code in of_status),
            "content": {PROBLEM: {"schema": _problem_schema(of_status)}},
        }
    if route.path_format == "/v1/stream":
        _event_stream(responses)
    elif deps.stream_principal in calls:  # another event stream
        responses["200"] = {
            "description": "Server-sent events.",
            "content": {EVENT_STREAM: {"itemSchema": _ANY_EVENT}},
        }


def _by_status(codes: Iterable[Code]) -> Iterator[tuple[int, list[Code]]]:
    unique = list(dict.fromkeys(codes))
    for status in sorted({code.status for code in unique}):
        yield status, [code for code in unique if code.status == status]


def _problem_schema(codes: list[Code]) -> dict[str, Any]:
    return {
        "allOf": [
            {"$ref": "#/components/schemas/Problem"},
            {
                "type": "object",
                "properties": {
                    "status": {"type": "integer", "enum": [codes[0].status]},
                    "code": {"type": "string", "enum": [str(code) for code in codes]},
                },
            },
        ]
    }


_EVENT_DATA: dict[str, type[BaseModel]] = {
    "ready": SnapshotEvent,
    "reset": SnapshotEvent,
    "notification": NotificationOut,
    "read": ReadEvent,
    "archived": ArchivedEvent,
    "unread": RestoredEvent,
    "unarchived": RestoredEvent,
    "snoozed": SnoozedEvent,
    "unsnoozed": UnsnoozedEvent,
    "expired": EndEvent,
    "bye": EndEvent,
}


def _event_schemas(schemas: dict[str, Any]) -> None:
    """The events' data models as components (``#/components/schemas/…``)."""
    _, defs = models_json_schema(
        [(model, "serialization") for model in set(_EVENT_DATA.values())],
        ref_template="#/components/schemas/{model}",
    )
    for name, schema in defs.get("$defs", {}).items():
        schemas.setdefault(name, schema)


_ANY_EVENT: dict[str, Any] = {
    "type": "object",
    "required": ["data"],
    "properties": {
        "event": {"type": "string"},
        "data": {"type": "string"},
        "id": {"type": "string"},
        "retry": {"type": "integer"},
    },
}


def _event_stream(responses: dict[str, Any]) -> None:
    """One ``itemSchema`` per event (OpenAPI 3.2's way, read by schemathesis): its name, its
    ``id`` (a seq, on ``notification`` and a fresh ``ready``/``reset``), its JSON ``data``."""
    branches = [
        {
            "properties": {
                "event": {"const": name},
                "data": {
                    "contentMediaType": "application/json",
                    "contentSchema": {"$ref": f"#/components/schemas/{model.__name__}"},
                },
            }
        }
        for name, model in _EVENT_DATA.items()
    ]
    responses["200"] = {
        "description": "Server-sent events (docs/protocol.md): `retry:`, then `ready` (or "
        "`reset`), replayed and live `notification` frames with `id: <seq>`, `read` / "
        "`archived`, `: ping` comments; the stream ends with `expired` or `bye`. Every `data:` "
        "is one line of JSON.",
        "content": {
            EVENT_STREAM: {
                "itemSchema": {
                    "type": "object",
                    "required": ["event", "data"],
                    "properties": {
                        "event": {"type": "string", "enum": list(_EVENT_DATA)},
                        "data": {"type": "string"},
                        "id": {"type": "string", "pattern": "^[0-9]+$"},
                        "retry": {"type": "integer"},
                    },
                    "oneOf": branches,
                },
                "x-events": {name: {"description": text} for name, text in _EVENTS.items()},
            }
        },
    }
