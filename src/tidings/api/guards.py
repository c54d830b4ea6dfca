"""Request guards that run before routing: :class:`BodyLimit` (invariant: no body over
``TIDINGS_MAX_BODY_BYTES`` is ever held or parsed) and :class:`TextTarget` (no NUL in a URL).
Both refuse with a problem (:mod:`tidings.api.problems`), so the answer is the same 4xx
whichever route was asked for.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tidings.api import problems


class BodyLimit:
    """Refuse bodies over ``limit`` bytes with a 413 problem, before anything is parsed.

    A declared ``Content-Length`` over the limit is refused at once. A body without one
    (``Transfer-Encoding: chunked``) is read here first, up to ``limit`` bytes — no more is ever
    held — and then refused, or handed to the app whole. (Raising from inside the app's
    ``receive`` instead would reach the framework's body parser, which answers 400.)
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            if not declared.isdigit() or int(declared) > self.limit:
                await self._refuse(scope, receive, send)
                return
            await self.app(scope, receive, send)  # the server reads no more than declared
            return
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > self.limit:
                await self._refuse(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body, replayed = b"".join(chunks), False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problems.problem(
            413,
            "payload_too_large",
            "Payload too large",
            f"The request body exceeds {self.limit} bytes.",
        )
        await response(scope, receive, send)


class TextTarget:
    """Refuse a request whose path or query holds NUL (``%00``) with a 400 problem.

    Bodies are text-checked by their models (:class:`tidings.domain.inputs.StrictModel`); the
    URL is the other place text comes from (headers and cookies cannot carry NUL), and no store
    can hold NUL, so no route ever needs it.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (
            b"%00" in scope.get("raw_path", b"")
            or b"%00" in scope.get("query_string", b"")
            or "\x00" in scope.get("path", "")
        ):
            response = problems.problem(
                400, "bad_request", "Bad request", "The URL must not contain NUL (%00)."
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
