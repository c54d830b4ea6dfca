"""What the sync and async clients share: configuration and credential headers."""

from __future__ import annotations

import functools
from importlib import metadata
from typing import Any

import httpx

from tidings.client._calls import Call
from tidings.client._errors import from_response
from tidings.client._retry import RetryPolicy, parse_retry_after
from tidings.client._tokens import TokenCache

DEFAULT_TIMEOUT = 10.0
STREAM_READ_TIMEOUT = 60.0  # > the server's keep-alive (15 s by default): silence means dead


@functools.cache
def user_agent() -> str:
    try:
        version = metadata.version("tidings")
    except metadata.PackageNotFoundError:
        version = "unknown"
    return f"tidings-python/{version}"


class Base:
    """Settings of a client. ``api_key`` (a tenant's ``tdg_…`` key) serves publish, tokens and
    the user-facing calls; ``operator_key`` serves tenants and keys. ``token_ttl`` is the
    lifetime asked for the tokens minted for user-facing calls (``None``: the server's
    default)."""

    def __init__(
        self,
        url: str,
        *,
        api_key: str | None,
        operator_key: str | None,
        retries: int,
        max_wait: float,
        timeout: float,
        token_ttl: int | None,
    ) -> None:
        if retries < 0:
            raise ValueError("retries must be >= 0")
        self.url = url.rstrip("/")
        self.api_key = api_key
        self.operator_key = operator_key
        self.policy = RetryPolicy(retries=retries, max_wait=max_wait)
        self.timeout = timeout
        self.token_ttl = token_ttl
        self.tokens = TokenCache()

    def _credential(self, call: Call[Any]) -> dict[str, str]:
        headers = dict(call.headers)
        if call.auth == "key":
            if not self.api_key:
                raise ValueError(f"{call.method} {call.path} needs the client's api_key")
            headers["Authorization"] = f"Bearer {self.api_key}"
        elif call.auth == "operator":
            if not self.operator_key:
                raise ValueError(f"{call.method} {call.path} needs the client's operator_key")
            headers["Authorization"] = f"Bearer {self.operator_key}"
        return headers


def failure(response: httpx.Response) -> tuple[float | None, Exception]:
    """The ``Retry-After`` (seconds) and the :class:`ApiError` of a non-2xx answer."""
    retry_after = parse_retry_after(response.headers.get("retry-after"))
    return retry_after, from_response(response, retry_after)
