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
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import TypeAdapter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tidings.api import problems
from tidings.api.publish import BATCH_KEY_MAX, KEY_COLUMN, answer_batch, answer_one
from tidings.api.schemas import BatchIn
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

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.routes = {
            "/v1/notifications": _Route(_ONE, answer_one, KEY_COLUMN),
            "/v1/notifications/batch": _Route(_BATCH, answer_batch, BATCH_KEY_MAX),
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = None
        if scope["type"] == "http" and scope["method"] == "POST" and not scope.get("root_path"):
            route = self.routes.get(scope["path"])
        if route is None:
            await self.app(scope, receive, send)
            return
        received: list[Message] = []
        try:
            service, key, body, idempotency_key = await self._accept(
                route, scope, receive, received
            )
        except _Declined:
            await self.app(scope, _replay(received, receive), send)
            return
        try:
            content, created = await route.handler(service, key, body, idempotency_key)
        except TidingsError as error:
            await problems.from_error(error)(scope, receive, send)
            return
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

    async def _accept(
        self, route: _Route, scope: Scope, receive: Receive, received: list[Message]
    ) -> tuple[Tidings, KeyPrincipal, Any, str | None]:
        """The request's service, key, validated body and idempotency key; :class:`_Declined`
        when any of them is not plainly acceptable (nothing is charged or stored here)."""
        authorization = content_type = idempotency_key = None
        keys = 0
        for name, value in scope["headers"]:
            if name == _AUTHORIZATION:
                authorization = authorization if authorization is not None else value
            elif name == _CONTENT_TYPE:
                content_type = content_type if content_type is not None else value
            elif name == _IDEMPOTENCY_KEY:
                idempotency_key, keys = value, keys + 1
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


def _replay(received: list[Message], receive: Receive) -> Receive:
    """``receive`` that first gives back what was read already."""
    pending = list(received)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay
