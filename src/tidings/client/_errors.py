"""The SDK's one exception: a problem answer from tidings.

Every 4xx/5xx answer becomes an :class:`ApiError` carrying the ``application/problem+json``
fields (RFC 9457) the server sent: ``status``, ``code``, ``title``, ``detail``, ``type``, and
the whole body as ``problem``. An answer that is not a problem (an HTML page from a proxy)
still becomes an :class:`ApiError`, with ``code="unknown"`` and the start of the text as
``detail``. Network failures that outlast the retries are httpx's own ``httpx.TransportError``.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

__all__ = ["ApiError", "from_response"]


class ApiError(Exception):
    """A problem answer: ``status``, ``code``, ``title``, ``detail`` (and ``problem``, the body).

    ``retry_after`` is the answer's ``Retry-After`` in seconds when it sent one.
    """

    def __init__(
        self, status: int, problem: dict[str, Any], *, retry_after: float | None = None
    ) -> None:
        self.status = status
        self.problem = problem
        self.code = str(problem.get("code", "unknown"))
        self.title = str(problem.get("title", ""))
        self.detail = str(problem.get("detail", ""))
        self.type = str(problem.get("type", "about:blank"))
        self.retry_after = retry_after
        super().__init__(f"{status} {self.code}: {self.detail}")


def problem_body(response: httpx.Response) -> dict[str, Any]:
    """The answer's JSON object, or a stand-in problem for anything else."""
    try:
        body = json.loads(response.content)
    except ValueError:
        body = None
    if isinstance(body, dict):
        return body
    return {
        "title": response.reason_phrase,
        "status": response.status_code,
        "detail": response.text[:200],
        "code": "unknown",
    }


def from_response(response: httpx.Response, retry_after: float | None = None) -> ApiError:
    """The :class:`ApiError` for a non-2xx answer (its body must have been read)."""
    return ApiError(response.status_code, problem_body(response), retry_after=retry_after)
