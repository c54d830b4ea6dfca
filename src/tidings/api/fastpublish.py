"""The publish routes' request path without FastAPI's per-request machinery (issue 8 item 6).

``POST /v1/notifications`` and ``POST /v1/notifications/batch`` are declared in
:mod:`tidings.api.publish` (the OpenAPI document, and the answer to every request this module
does not take). :class:`FastPublish` is an ASGI middleware inside the request guards (body
limit, NUL in URLs, CORS, proxy headers) that answers the ordinary publish itself, with what
can be built once is built once: the models' validators (:class:`pydantic.TypeAdapter`), the
route table, the response head; the API key is checked through the instance's key cache and
the answer's body is the notification's one encoding.

Invariant: **the answer is the same as the declared route's.** This path answers only a request
it has fully accepted: a JSON body (``Content-Type: application/json``) that decodes and
validates exactly as FastAPI decodes and validates it (the stdlib's ``json.loads``, as
Starlette's ``Request.json``; the route's model by ``validate_python(…,
from_attributes=True)``), a well-formed ``Idempotency-Key``, a valid API key with the
``publish`` scope. Anything else is handed to FastAPI untouched (the body replayed as
received), before anything was charged or stored, so every 4xx is produced by exactly the code
that produced it before. From the rate limit on it is the route's handler itself
(:func:`~tidings.api.publish.answer_one`, :func:`~tidings.api.publish.answer_batch`): a
:class:`~tidings.errors.TidingsError` is answered by :func:`tidings.api.problems.from_error` (as
the app's handler does), anything else is raised to the app's error middleware (a logged 500,
as before).

Under ``tidings serve`` a publish does not even meet the app's layers: the edge protocol
(:class:`tidings.server.AppProtocol`) gives it to :class:`EdgePublish`, which runs
:meth:`FastPublish.answer` inside the app's own error middleware and hands everything the
layers would change to the whole app (:func:`edge_publisher` says for which apps).
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI
from pydantic import TypeAdapter
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from tidings.api import problems
from tidings.api.cors import CORS
from tidings.api.guards import BodyLimit, TextTarget
from tidings.api.publish import BATCH_KEY_MAX, KEY_COLUMN, answer_batch, answer_one
from tidings.api.schemas import BatchIn
from tidings.config import Settings
from tidings.domain.inputs import TEXT_CHECKED, json_text_storable
from tidings.domain.notifications import NewNotification
from tidings.domain.principals import KeyPrincipal
from tidings.errors import TidingsError
from tidings.service import Tidings

_TEXT_CHECKED = {TEXT_CHECKED: True}  # the body's bytes hold no NUL or surrogate: skip the walk
_ONE: TypeAdapter[NewNotification] = TypeAdapter(NewNotification)
_BATCH: TypeAdapter[BatchIn] = TypeAdapter(BatchIn)
_KEY_TEXT = re.compile(rb"[\x21-\x7e]+")
_CONTENT_TYPE = b"content-type"
_AUTHORIZATION = b"authorization"
_IDEMPOTENCY_KEY = b"idempotency-key"
_CONTENT_LENGTH = b"content-length"
_ONE_PATH, _BATCH_PATH = "/v1/notifications", "/v1/notifications/batch"
PATHS = frozenset({_ONE_PATH, _BATCH_PATH})  # the routes FastPublish answers
access_log = logging.getLogger("uvicorn.access")
_JSON_HEAD = b"application/json"

Handler = Callable[[Tidings, KeyPrincipal, Any, str | None], Awaitable[tuple[bytes, bool]]]


class _Declined(Exception):
    """The request is not one this path answers: FastAPI's route will."""


class _Route:
    __slots__ = ("adapter", "handler", "key_max")

    def __init__(self, adapter: TypeAdapter[Any], handler: Handler, key_max: int) -> None:
        self.adapter = adapter
        self.handler = handler
        self.key_max = key_max


class FastPublish:
    """Answers ordinary publishes; hands every other request to ``app`` unchanged."""

    def __init__(self, app: ASGIApp, *, limit: int | None = None) -> None:
        self.app = app
        self.limit = limit  # the body limit, when no BodyLimit guard stands outside this
        self.routes = {
            _ONE_PATH: _Route(_ONE, answer_one, KEY_COLUMN),
            _BATCH_PATH: _Route(_BATCH, answer_batch, BATCH_KEY_MAX),
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = None
        if scope["type"] == "http" and scope["method"] == "POST" and not scope.get("root_path"):
            route = self.routes.get(scope["path"])
        if route is None:
            await self.app(scope, receive, send)
            return
        await self.answer(route, scope, receive, send)

    async def answer(self, route: _Route, scope: Scope, receive: Receive, send: Send) -> bool:
        """Answer a request for ``route``: True if this path answered it, False if it was
        handed to ``app`` (the body replayed)."""
        received: list[Message] = []
        try:
            service, key, body, idempotency_key = await self._accept(
                route, scope, receive, received
            )
        except _Declined:
            await self.app(scope, _replay(received, receive), send)
            return False
        try:
            content, created = await route.handler(service, key, body, idempotency_key)
        except TidingsError as error:
            await problems.from_error(error)(scope, receive, send)
            return True
        await send(
            {
                "type": "http.response.start",
                "status": 201 if created else 200,
                "headers": [
                    (b"content-length", str(len(content)).encode()),
                    (_CONTENT_TYPE, _JSON_HEAD),
                ],
            }
        )
        await send({"type": "http.response.body", "body": content})
        return True

    async def _accept(
        self, route: _Route, scope: Scope, receive: Receive, received: list[Message]
    ) -> tuple[Tidings, KeyPrincipal, Any, str | None]:
        """The request's service, key, validated body and idempotency key; :class:`_Declined`
        when any of them is not plainly acceptable (nothing is charged or stored here)."""
        authorization = content_type = idempotency_key = length = None
        keys = 0
        for name, value in scope["headers"]:
            if name == _AUTHORIZATION:
                authorization = authorization if authorization is not None else value
            elif name == _CONTENT_TYPE:
                content_type = content_type if content_type is not None else value
            elif name == _IDEMPOTENCY_KEY:
                idempotency_key, keys = value, keys + 1
            elif name == _CONTENT_LENGTH:
                length = value  # the last, as BodyLimit reads it
        limit = self.limit
        if limit is not None and (length is None or not length.isdigit() or int(length) > limit):
            raise _Declined  # BodyLimit's to answer (413), or to read as it reads a chunked body
        if content_type is None or content_type.split(b";", 1)[0].strip().lower() != _JSON_HEAD:
            raise _Declined
        if keys > 1 or (
            idempotency_key is not None
            and (len(idempotency_key) > route.key_max or not _KEY_TEXT.fullmatch(idempotency_key))
        ):
            raise _Declined
        if authorization is None or authorization[:7].lower() != b"bearer ":
            raise _Declined
        token = authorization[7:].strip()
        service: Tidings | None = getattr(scope["app"].state, "tidings", None)
        if not token or service is None:
            raise _Declined
        chunks: list[bytes] = []
        while True:
            message = await receive()
            received.append(message)
            if message["type"] != "http.request":
                raise _Declined  # the client left: as the route would see it
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        try:
            key = await service.api_keys.authenticate(token.decode("latin-1"))
        except TidingsError as error:
            raise _Declined from error
        try:
            # Decoded as the route decodes it (Starlette's ``Request.json``: the stdlib), not by
            # orjson, which reads integers beyond 64 bits as floats.
            document = b"".join(chunks)
            decoded = json.loads(document)
            body = route.adapter.validate_python(
                decoded,
                from_attributes=True,
                context=_TEXT_CHECKED if json_text_storable(document) else None,
            )
        except (ValueError, RecursionError) as error:  # ValidationError is a ValueError
            raise _Declined from error
        if "publish" not in key.scopes:
            raise _Declined
        return service, key, body, None if idempotency_key is None else idempotency_key.decode()


class EdgePublish:
    """The publish routes' requests as the edge protocol gives them, below the app
    (:class:`tidings.server.AppProtocol`; ARCHITECTURE.md, "The edge").

    Between uvicorn and :class:`FastPublish` the app's stack has eight layers (FastAPI's
    error, telemetry and body-limit middleware, the proxy headers, CORS, the URL and body
    guards, FastAPI's own call), each an ASGI call per request: ~10 % of a publish's server CPU
    (docs/performance.md, "Session 16"). For a request none of them would change, this path
    calls :meth:`FastPublish.answer` directly, inside the same error middleware the app has
    (Starlette's ``ServerErrorMiddleware`` with the app's ``Exception`` handler: an unexpected
    error is logged and answered 500 as before), with a :class:`FastPublish` whose declines go to
    the whole app, every layer included, the body replayed.

    Invariant: **the answer is the app's**, byte for byte (``tests/core/test_edge_publish.py``).
    It holds because this path is only made for an app whose layers are all known
    (:func:`edge_publisher`), and it answers a request only where each of them passes it on
    untouched: exact path, no query (the URL guard), a declared ``Content-Length`` within
    ``TIDINGS_MAX_BODY_BYTES`` (the body guard, FastAPI's limit is unset), a publish route (CORS
    leaves API-key routes alone), no OpenTelemetry; the proxy headers are applied to the scope
    for uvicorn's access line when it is written.
    """

    __slots__ = ("answered", "app", "call", "fast", "proxy")

    def __init__(self, app: FastAPI, settings: Settings) -> None:
        self.app = app
        self.fast = FastPublish(app, limit=settings.max_body_bytes)
        self.proxy = ProxyHeadersMiddleware(_nothing, trusted_hosts=settings.forwarded_allow_ips)
        handler = app.exception_handlers.get(Exception) or app.exception_handlers.get(500)
        self.call = ServerErrorMiddleware(self._answer, handler=handler, debug=app.debug)
        self.answered = 0  # requests this path answered itself (tests, metrics)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.call(scope, receive, send)

    async def _answer(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self.fast.routes.get(scope["path"])
        if (
            route is None
            or scope["method"] != "POST"
            or scope["query_string"]
            or scope.get("root_path")
        ):
            await self.app(scope, receive, send)
            return
        scope["app"] = self.app  # as Starlette sets it (FastPublish finds the service there)
        if access_log.isEnabledFor(logging.INFO):  # the client and scheme the line shows
            call = self.proxy(scope, receive, send)  # type: ignore[arg-type]
            with contextlib.suppress(StopIteration):
                call.send(None)
        if await self.fast.answer(route, scope, receive, send):
            self.answered += 1


def edge_publisher(app: object) -> EdgePublish | None:
    """The :class:`EdgePublish` of a tidings app, made on first use; ``None`` for any other
    app, and for one with a layer this path does not know (an extension's middleware: the
    demo's cookies), a root path, FastAPI's body limit or OpenTelemetry. Then every publish goes
    through the whole app, as before."""
    state = getattr(app, "state", None)
    if not isinstance(app, FastAPI) or state is None:
        return None
    made: EdgePublish | bool | None = getattr(state, "edge_publish", False)
    if made is not False:
        return made if isinstance(made, EdgePublish) else None
    settings = getattr(state, "settings", None)
    known = all(m.cls in _PASSED for m in app.user_middleware)
    publisher = None
    if (
        isinstance(settings, Settings)
        and known
        and not settings.opentelemetry
        and not app.root_path
        and app.max_body_size is None
    ):
        publisher = EdgePublish(app, settings)
    state.edge_publish = publisher
    return publisher


async def _nothing(*_: Any) -> None:
    return None


# The app's layers that pass an accepted publish on untouched (see EdgePublish).
_PASSED: frozenset[Any] = frozenset(
    {FastPublish, BodyLimit, TextTarget, CORS, ProxyHeadersMiddleware}
)


def _replay(received: list[Message], receive: Receive) -> Receive:
    """``receive`` that first gives back what was read already."""
    pending = list(received)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay
