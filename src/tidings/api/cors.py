"""Cross-origin access for the browser-facing routes, and for nothing else.

A host app loads the bell from tidings' origin (``<script type="module" src=…/static/…>``: a
module script is a CORS request) and the bell then calls tidings from the host's origin. With
``TIDINGS_CORS_ORIGINS`` set, this middleware answers those requests:

- Only :func:`browser_facing` paths get CORS headers: ``/static/*``, ``/v1/stream``,
  ``/sse/notifications``, ``/v1/feed`` and ``/v1/feed/*``, ``/v1/preferences``,
  ``/v1/push/*`` — what a page does with a stream token. API-key and operator routes (publish,
  tokens, admin, ``/api/sse/broadcast``, …) never do: a page must not call them, so a browser
  blocks it.
- A preflight (``OPTIONS`` with ``Access-Control-Request-Method``) from an allowed origin is
  answered here, ``204`` with the allowed methods and headers (``Authorization``,
  ``Content-Type``, ``Last-Event-ID``…) and ``Access-Control-Max-Age``; from any other origin
  ``403`` ``cors_origin_not_allowed`` (problem+json, no CORS headers: the browser blocks).
- Every other response of a browser-facing path gets ``Vary: Origin``, and, for an allowed
  origin, ``Access-Control-Allow-Origin``. Headers are added to the ASGI response head, so a
  stream whose body the edge protocol writes later (:mod:`tidings.server`) has them too.
- Credentials: off by default (the bell sends its stream token as ``Authorization`` or
  ``?access_token=``, never a cookie). ``TIDINGS_CORS_CREDENTIALS`` turns on
  ``Access-Control-Allow-Credentials``; the settings refuse ``*`` with it.

Why not Starlette's ``CORSMiddleware``: it covers every path (API-key routes too), answers a
preflight ``200`` with a text body and a refused one ``400`` in plain text.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tidings.api import problems
from tidings.errors import Code

EXACT = frozenset({"/v1/stream", "/sse/notifications", "/v1/feed", "/v1/preferences"})
PREFIXES = ("/static/", "/v1/feed/", "/v1/push/")
METHODS = "GET, POST, PUT, DELETE"
ALLOW_HEADERS = "Authorization, Content-Type, Last-Event-ID, Accept, Cache-Control"
EXPOSE_HEADERS = "Retry-After"


def browser_facing(path: str) -> bool:
    """True for the routes a page calls with a stream token (see the module docstring)."""
    return path in EXACT or path.startswith(PREFIXES)


class CORS:
    """ASGI middleware; a no-op when no origin is configured."""

    def __init__(
        self, app: ASGIApp, origins: Sequence[str], *, credentials: bool, max_age: int
    ) -> None:
        self.app = app
        self.any = "*" in origins
        self.origins = frozenset(o for o in origins if o != "*")
        self.credentials = credentials
        self.max_age = max_age

    def allows(self, origin: str) -> bool:
        return self.any or origin in self.origins

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not (self.any or self.origins):
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :]
        if not browser_facing(path):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        allowed = origin is not None and self.allows(origin)
        if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            await self._preflight(origin if allowed else None, scope, receive, send)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.decorate(MutableHeaders(scope=message), origin if allowed else None)
            await send(message)

        await self.app(scope, receive, send_with_cors)

    def decorate(self, out: MutableHeaders, allowed: str | None) -> None:
        """The CORS headers of a browser-facing response: ``Vary: Origin``, and for an allowed
        origin (``allowed``) the ``Access-Control-Allow-*``/``Expose`` headers. Also used by
        the edge opener (``tidings.api.opener``) for the streams it answers itself."""
        out.add_vary_header("Origin")
        if allowed is not None:
            self._allow(out, allowed)
            out["Access-Control-Expose-Headers"] = EXPOSE_HEADERS

    def _allow(self, out: MutableHeaders, origin: str) -> None:
        if self.credentials:
            out["Access-Control-Allow-Origin"] = origin
            out["Access-Control-Allow-Credentials"] = "true"
        else:
            out["Access-Control-Allow-Origin"] = "*" if self.any else origin

    async def _preflight(
        self, origin: str | None, scope: Scope, receive: Receive, send: Send
    ) -> None:
        vary = {"Vary": "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"}
        if origin is None:
            response = problems.of(
                Code.CORS_ORIGIN_NOT_ALLOWED,
                "This origin is not in TIDINGS_CORS_ORIGINS.",
                headers=vary,
            )
            await response(scope, receive, send)
            return
        head = MutableHeaders(vary)
        self._allow(head, origin)
        head["Access-Control-Allow-Methods"] = METHODS
        head["Access-Control-Allow-Headers"] = ALLOW_HEADERS
        head["Access-Control-Max-Age"] = str(self.max_age)
        await send({"type": "http.response.start", "status": 204, "headers": head.raw})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
